package auth

import (
	"log/slog"
	"time"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
// Existing hashes keep the parameters written in their PHC string.
type Argon2Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultArgon2 is the cost DESIGN.md §3.2 requires: t=3, m=64 MiB, p=2.
// Treat it as a constant.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// TestArgon2 is a cost low enough for tests. The server must accept it only
// in developer mode; New logs a warning when costs below DefaultArgon2 meet
// Production. Treat it as a constant.
var TestArgon2 = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// weaker reports whether p costs less than q in any dimension.
func (p Argon2Params) weaker(q Argon2Params) bool {
	return p.Time < q.Time || p.MemoryKiB < q.MemoryKiB || p.Threads < q.Threads
}

// Options configure a Store.
type Options struct {
	// Argon is the cost of new hashes; the zero value means DefaultArgon2.
	Argon Argon2Params
	// Production applies the production-mode password rules.
	Production bool
	// SecretKey is the 32-byte AES-256-GCM key that seals TOTP secrets
	// (LoadOrCreateSecretKey).
	SecretKey []byte
	// ServerID names this server in otpauth account names
	// ("vserv:<name>@<server-id>"), so one authenticator can hold the same
	// name on several servers.
	ServerID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings (weak passwords in developer mode, 2FA
	// locks); nil discards them. Passwords and codes are never logged.
	Logger *slog.Logger
}
