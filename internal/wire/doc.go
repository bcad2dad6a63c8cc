// Package wire is the vserv wire format: length-prefixed frames, fragmented
// messages, strict CBOR messages and the ERR codes of DESIGN.md §2.1.
//
// Everything that crosses a connection is defined here once, so the server and
// the client library speak from the same definitions. The package knows nothing
// about encryption: a [Conn] carries plaintext frame bodies until a [Cipher] is
// installed, and encrypted ones after.
package wire
