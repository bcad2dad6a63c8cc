// Package e2e holds the end-to-end tests that drive the real binaries
// through whole user journeys: the README's vcli tours, vcli's commands for
// accounts, records, files and second factors, a server killed mid-write,
// a ledger tampered with behind a stopped server's back, and identity
// rotation followed through receipts. Each test starts real vserv processes
// through internal/testenv and runs vcli and `vserv verify` against them.
// Tests of one server behaviour live with the server, in internal/server.
package e2e
