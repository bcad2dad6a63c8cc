// Package auth keeps vserv's accounts: names, argon2id password hashes, roles,
// per-chain rights, the TOTP second factor (RFC 6238) with its recovery codes
// and production-mode enrollment codes, and the in-memory login backoff. It is
// the one place that decides whether a name, password or code is acceptable;
// the server maps the *wire.Error values it returns to replies (DESIGN.md §3.2).
//
// Everything persistent goes through the storage layer (internal/store): the
// account tables of a store.Store (accounts, rights, second factors), keyed
// by HomeName, with values in this package's CBOR encoding; each method is
// one View or Update transaction. The package knows no backend (store/bolt,
// later PostgreSQL). TOTP secrets are sealed with AES-256-GCM under the data
// directory's secret.key, so a leaked copy of the database alone does not
// reveal them.
//
// Ending sessions: every account carries a generation number (Generation,
// Account.Generation). It changes whenever the account's live sessions must
// end — password change, disable, 2FA reset, peer key change, a write grant
// that makes it owe a second factor — and never repeats for a name, because
// it is drawn from one sequence for the whole store
// (store.AccountWriter.NextGeneration): an account deleted and created again
// gets a higher number. The server records the generation at login and,
// before every command, ends the session when Generation returns another
// number or an error (deleted). That check is what ends sessions, wherever
// the change was made; closing connections at once is only the server's
// courtesy to its own. A change to its own account (SetPassword, Reset2FA)
// returns the generation it wrote, for the session that made it to adopt.
//
// Generation answers from an in-memory cache (gencache.go) that each
// committed account write clears through store.WriteTx.OnCommit. It is
// exact while this Store is the only writer of the store's accounts, as
// with store/bolt (one process holds the file). A backend that several
// processes share must not rely on it: such a deployment needs the cache
// off or cleared by the backend's change notifications, decided with that
// backend.
//
// All login failures, whatever their cause, are
// wire.Errorf(wire.CodeAuth, wire.AuthFailedText), so that a client cannot
// tell an unknown name from a wrong password or a disabled account.
package auth
