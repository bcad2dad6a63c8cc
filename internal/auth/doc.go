// Package auth keeps vserv's accounts: names, argon2id password hashes, roles,
// per-chain rights, the TOTP second factor (RFC 6238) with its recovery codes
// and production-mode enrollment codes, and the in-memory login backoff. It is
// the one place that decides whether a name, password or code is acceptable;
// the server maps the *wire.Error values it returns to replies (DESIGN.md §3.2).
//
// Everything persistent lives in the server's one bbolt file, in buckets whose
// names start with "auth." (other packages share the file). TOTP secrets are
// sealed with AES-256-GCM under the data directory's secret.key, so a leaked
// copy of the database alone does not reveal them.
//
// Ending sessions: every account carries a generation number (Generation,
// Account.Generation). It changes whenever the account's live sessions must
// end — password change, disable, 2FA reset, peer key change — and never
// repeats for a name, because it is drawn from one sequence for the whole
// bucket: an account deleted and created again gets a higher number. The
// server records the generation at login and, before every command, ends the
// session when Generation returns another number or an error (deleted).
//
// All login failures, whatever their cause, are
// wire.Errorf(wire.CodeAuth, wire.AuthFailedText), so that a client cannot
// tell an unknown name from a wrong password or a disabled account.
package auth
