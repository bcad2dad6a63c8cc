// Package server is the vserv network server: the listener, the per-connection
// state machine of DESIGN.md §2.5 and the command table of §3.
//
// A connection moves through four states — initial, session, user, verified —
// and every command names the lowest state it runs in. Handlers never write to
// the connection themselves (the file streams of §3.3 excepted): they return a
// reply or a *wire.Error, and the loop sends exactly one response per request,
// which is what keeps requests and responses in step (pyvserv handlers that
// answered twice shifted every later reply by one).
//
// The command table is a value (Table) given to New, not a global: NewTable
// holds the core's commands — connection, accounts, second factor, help —
// and other packages add theirs with Table.Handle (ledgercmd, filecmd;
// cmdtable.Default is the full table). Their handlers see the connection
// through a *Session and keep per-connection state as session values.
package server
