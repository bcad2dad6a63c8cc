// Package server is the vserv network server: the listener, the per-connection
// state machine of DESIGN.md §2.5 and the command table of §3.
//
// A connection moves through four states — initial, session, user, verified —
// and every command names the lowest state it runs in. Handlers never write to
// the connection themselves (the file streams of §3.3 excepted): they return a
// reply or a *wire.Error, and the loop sends exactly one response per request,
// which is what keeps requests and responses in step (pyvserv handlers that
// answered twice shifted every later reply by one).
package server
