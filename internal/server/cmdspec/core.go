package cmdspec

// Core returns the commands of the server's core, by name: the connection
// commands, accounts and the second factor (docs/protocol.md §6, §7). Their
// handlers live in internal/server; CoreAliases names the other spellings.
//
// Every command whose arguments carry a credential is declared here, with
// Secret, so that clients, which must not import the server, see them all.
//
// Our reading of §2.5 for state user: the states are cumulative — "session
// adds …", "user adds only …" — so a connection in state user may run what
// an anonymous session runs (hello, rekey, tout, reads of public chains …)
// plus exactly the UserState commands. `user`, `pass` and `uini` are
// refused there by their own rule, and everything with minimum Verified by
// its minimum. Handlers of session commands must therefore treat a
// connection in state user as anonymous: the password alone grants nothing
// the account's rights would add. The production-mode sentence "only qr +
// twofa (to enroll) and logout run" names the account commands; it does
// not take hello or quit away.
func Core() map[string]Spec {
	s, u, v := Session, User, Verified
	secret, userState := Secret, UserState
	return map[string]Spec{
		// Connection (docs/protocol.md §6).
		"hello": {Min: Initial, Usage: "hello — answers hello, the server-id and this connection's id"},
		"ver":   {Min: Initial, Usage: "ver — the server version and protocol version"},
		"id":    {Min: Initial, Usage: "id — server-id, site name, key fingerprint, public key and rotation receipts"},
		"help":  {Min: Initial, MaxArgs: 1, Usage: "help [command] — the command names, or one command's usage"},
		"dmode": {Min: Initial, Usage: "dmode — 1 in developer mode, 0 in production mode"},
		"akey":  {Min: Initial, Usage: "akey — a signed session key from the pool (start of the handshake)"},
		"sess":  {Min: Initial, MinArgs: 3, MaxArgs: 3, Usage: "sess kid ct msg1 — complete the Noise handshake with the key from akey"},
		"rekey": {Min: s, Usage: "rekey — ratchet both session keys forward"},
		"tout":  {Min: s, MaxArgs: 1, Usage: "tout [seconds] — get or set the idle timeout (5 to 3600)"},
		"quit":  {Min: Initial, Usage: "quit — say goodbye and close the connection"},

		// Accounts (§7).
		"uini":   {Min: s, MinArgs: 3, MaxArgs: 3, Usage: "uini name password setup-token — create the first admin (loopback only, while no account exists)", Flags: secret},
		"user":   {Min: s, MinArgs: 1, MaxArgs: 1, Usage: "user name — first step of login"},
		"pass":   {Min: s, MinArgs: 1, MaxArgs: 1, Usage: "pass password — second step of login", Flags: secret},
		"logout": {Min: u, Usage: "logout — back to an anonymous session", Flags: userState},
		"chpass": {Min: v, MinArgs: 2, MaxArgs: 3, Usage: "chpass old new | chpass name null new (admin) — change a password", Flags: secret},
		"uadd":   {Min: v, MinArgs: 2, MaxArgs: 2, Usage: "uadd name password — add a user (admin)", Flags: secret},
		"aadd":   {Min: v, MinArgs: 2, MaxArgs: 2, Usage: "aadd name password — add an admin (admin)", Flags: secret},
		"udel":   {Min: v, MinArgs: 1, MaxArgs: 1, Usage: "udel name — delete an account (admin)"},
		"uena":   {Min: v, MinArgs: 2, MaxArgs: 2, Usage: "uena name enable|disable — enable or disable an account (admin)"},
		"ulist":  {Min: v, MaxArgs: 1, Usage: "ulist [user|admin|disabled|all] — list accounts (admin)"},
		"throt":  {Min: v, MaxArgs: 1, Usage: "throt [on|off] — show or switch per-IP throttling (admin to switch)"},

		// Second factor (§7, Second factor).
		"twofa": {Min: u, MinArgs: 1, MaxArgs: 1, Usage: "twofa code — the second factor: a 6-digit TOTP code or a recovery code", Flags: secret | userState},
		"qr":    {Min: u, MaxArgs: 1, Usage: "qr [enrollment-code] — enroll an authenticator app: otpauth URI, PNG QR code and 10 recovery codes; the first twofa confirms", Flags: secret | userState},
		"u2fa":  {Min: v, MinArgs: 2, MaxArgs: 2, Usage: "u2fa name reset — remove an account's second factor and end its sessions (admin)", Flags: secret},

		// Peer accounts (§11): the peer's key instead of a second factor.
		"pauth": {Min: u, MinArgs: 1, MaxArgs: 1, Usage: "pauth sig — a peer account's sign-in: Ed25519 by its pinned key over vserv-peer-v1 and the session's handshake hash", Flags: userState},
	}
}

// Replication returns the replication commands, declared here rather than
// beside their handlers (internal/server/replcmd) because clients must see
// them: ihost's arguments carry a credential, and vcli replicates with
// ihave, rentries and rpush (docs/protocol.md §11).
func Replication() map[string]Spec {
	return map[string]Spec{
		"ihost": {Min: Verified, MinArgs: 1, MaxArgs: 3, Usage: "ihost add peer {role, key, name, chains, account, user, pass} | ihost del peer [role] | ihost list | ihost forks | ihost sync [peer] — this server's peers, their fork evidence, a replication round now (admin)", Flags: Secret},
		// Mirroring (§11, "Mirroring"): what a mirror asks (ihave, rentries)
		// and what a home sends (rpush).
		"ihave":    {Min: Verified, MinArgs: 3, MaxArgs: 3, Usage: "ihave origin chain size — how much of a chain this server holds: size, checkpoint, {hops, public, pow_bits, schema, authority} (replicate right)", Flags: Replicate},
		"rentries": {Min: Session, MinArgs: 3, MaxArgs: 3, Usage: "rentries chain from to — entries [from, to) as stored, at most 1,000 or 8 MiB (read or replicate right)"},
		"rpush":    {Min: Verified, MinArgs: 6, MaxArgs: 8, Usage: "rpush origin chain from [entries] checkpoint [proof] [hops] [{public, pow_bits, schema, authority}] — store a batch of a home's chain: size, cosignature (peer accounts with replicate)", Flags: Replicate},
	}
}

// CoreAliases returns the other spellings of core commands: alias → name.
func CoreAliases() map[string]string {
	return map[string]string{"vers": "ver", "exit": "quit"}
}
