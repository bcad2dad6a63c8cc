// Package verify checks vserv ledger data offline: records (docs/formats.md
// §2), entries (§3), checkpoints (§6, C2SP tlog-checkpoint signed notes),
// witness cosignatures (§7, C2SP tlog-cosignature), receipts (§8, C2SP
// tlog-proof) and identity rotations (§10: key.rotate records, the anchored
// key history, and following rotations through their receipts).
//
// It is the one place that defines these formats: the server builds entries
// and checkpoints with it, and clients, witnesses and the WebAssembly verifier
// on the public web page check them with it. It therefore depends on nothing
// inside the server (it builds with GOOS=js GOARCH=wasm), and every parser is
// strict: an input is accepted only if re-encoding it gives the same bytes, so
// two parties that accept an item hash exactly the same bytes.
//
// docs/formats.md describes every byte; formats_example_test.go recomputes the
// worked example printed there.
package verify
