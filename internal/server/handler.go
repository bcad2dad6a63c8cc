package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// Session is what a command handler outside the core sees of its
// connection: who is logged in and in which state, the checks every
// command repeats (admin role, the principal of the access policy), the audit chain, the reply budget,
// the server's parts, per-connection values, and for the file streams the
// raw message stream. A handler gets it for one request and must not keep
// it: only the connection's own goroutine may use it.
type Session struct{ c *conn }

// apiSession returns the Session of c.
func (c *conn) apiSession() *Session {
	c.api.c = c
	return &c.api
}

// Account is the canonical name of the logged-in account ("" before a
// login). In state user the password was right but a second factor is
// owed: such a connection is anonymous for everything but the factor
// commands.
func (s *Session) Account() string { return s.c.account }

// State is the connection's state (DESIGN.md §2.5).
func (s *Session) State() cmdspec.State { return s.c.state }

// Log is the connection's logger (it adds the connection's id and address).
// Never give it a command's secret arguments.
func (s *Session) Log() *slog.Logger { return s.c.log }

// RequireAdmin checks the admin role from the store, on every call: a
// demotion or a disable takes effect at once. It answers ERR perm
// otherwise, and the refusal is written to the audit chain after the
// command (docs/protocol.md §8).
func (s *Session) RequireAdmin(ctx context.Context) (*auth.Account, error) {
	return s.c.requireAdmin(ctx)
}

// Principal is who this connection is for the access policy
// (auth.Store.Access): its account, and whether it is in state verified.
func (s *Session) Principal() auth.Principal {
	return auth.Principal{Account: s.c.account, Verified: s.c.state == stateVerified, State: s.c.state.String()}
}

// Audit appends an administrative action of this connection's account to
// the audit chain (DESIGN.md §4.1). A failure to record it is logged, not
// returned: the action has happened.
func (s *Session) Audit(ctx context.Context, action, target, outcome string) {
	s.c.srv.audit(ctx, s.c, action, target, outcome)
}

// ReserveReply returns the reserve function a batched read passes to the
// ledger (docs/protocol.md, "Limits before login"): it refuses with ERR
// limit entries that would take the reply of n items over what this
// connection may receive, or that the server-wide reply budget cannot hold
// now; otherwise it takes them from the budget and sets *release to give
// them back. Pass *release to HeldReply, and call it yourself if the
// handler fails after all.
func (s *Session) ReserveReply(cmd string, n int, release *func()) func(total int) error {
	return s.c.reserveReply(cmd, n, release)
}

// ServerID is the server-id (DESIGN.md §2.4).
func (s *Session) ServerID() string { return s.c.srv.id.ServerID }

// Accounts is the server's account store.
func (s *Session) Accounts() *auth.Store { return s.c.srv.accounts }

// Ledger is the server's ledger.
func (s *Session) Ledger() *ledger.Ledger { return s.c.srv.ledger }

// Peers is the server's peer table (nil in a server built without it).
func (s *Session) Peers() *replic.Peers { return s.c.srv.peers }

// Replication is the replication workers, nil in a server without them.
func (s *Session) Replication() Replication { return s.c.srv.repl }

// Identity is the server's identity (its key signs a mirror's
// cosignatures).
func (s *Session) Identity() *secure.Identity { return s.c.srv.id }

// Files is the server's file service.
func (s *Session) Files() *files.Service { return s.c.srv.files }

// Value returns the session value stored under key, or nil. Keys are
// compared like context keys: use an unexported type of your package.
func (s *Session) Value(key any) any { return s.c.values[key] }

// SetValue stores a per-connection value under key (nil removes it). A
// value that implements Releaser is told when the login ends and when the
// connection ends.
func (s *Session) SetValue(key, v any) {
	if v == nil {
		delete(s.c.values, key)
		return
	}
	if s.c.values == nil {
		s.c.values = map[any]any{}
	}
	s.c.values[key] = v
}

// Releaser is implemented by session values that hold something for the
// login they were made under (an open upload, working directories).
// Release is called each time the login ends — logout, a refused second
// factor, a login as another account — and once more when the connection
// ends, whatever the reason; it must give back what the value holds for the
// login and may be called again. The value itself stays until the
// connection ends, so a setting of the connection survives a new login.
type Releaser interface{ Release() }

// releaseValues tells every session value that the login ended.
func (c *conn) releaseValues() {
	for _, v := range c.values {
		if r, is := v.(Releaser); is {
			r.Release()
		}
	}
}

// endValues releases the session values and drops them: the connection
// ends.
func (c *conn) endValues() {
	c.releaseValues()
	c.values = nil
}

// The raw stream, for the handlers of a StreamReply (fput, fget), which
// write every message of their response themselves.

// ReadMessage reads the next request of the connection, waiting at most the
// idle timeout. A read error is logged as the connection loop logs it; the
// stream must then end with that error.
func (s *Session) ReadMessage() ([]byte, error) {
	msg, err := s.c.wc.ReadMessage(time.Now().Add(s.c.timeout))
	if err != nil {
		s.c.logReadError(err)
	}
	return msg, err
}

// Unread hands a request the stream read but does not own back to the
// connection loop, which answers it next.
func (s *Session) Unread(msg []byte) { s.c.pending = msg }

// WriteMessage writes one encoded message.
func (s *Session) WriteMessage(msg []byte) error { return s.c.write(msg) }

// WriteError writes err as the ERR message a handler's error would be (a
// server fault logged and answered ERR internal) for the command cmd.
func (s *Session) WriteError(cmd string, err error) error {
	return s.c.write(wire.EncodeError(s.c.wireError(&wire.Request{Cmd: cmd}, err)))
}

// OK is the reply OK vals....
func OK(vals ...any) (*Reply, error) { return ok(vals...) }

// HeldReply is OK vals... whose reply budget (Session.ReserveReply) release
// gives back once the reply is sent or abandoned.
func HeldReply(release func(), vals ...any) *Reply {
	return &Reply{vals: vals, release: release}
}

// StreamReply is a reply that stream writes itself, every message of it
// (Session.WriteMessage); it may read the data messages that follow
// (Session.ReadMessage). It returns an error only when the connection is
// broken, which then closes.
func StreamReply(stream func(ctx context.Context) error) *Reply {
	return &Reply{stream: stream}
}

// Truncate shortens client input quoted in an error text to n bytes and an
// ellipsis.
func Truncate(s string, n int) string { return truncate(s, n) }
