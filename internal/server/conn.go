package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// conn is one client connection and everything the protocol remembers about it.
// Only the connection's own goroutine touches the fields below mu's block.
type conn struct {
	srv  *Server
	nc   net.Conn
	wc   *wire.Conn
	addr netip.Addr
	id   string // connection-id of `hello` and `quit`
	log  *slog.Logger
	logh connLogHandler // log's handler

	mu     sync.Mutex
	busy   bool   // a command is running
	user   string // lowercase home name once logged in (state user or verified)
	killed atomic.Bool

	state       state
	timeout     time.Duration
	transcript  *secure.Transcript // clear-text messages, until the first session
	session     *secure.Session
	akey        *pendingAkey // the akey answered since the last sess
	pendingUser string       // name given by `user`, waiting for `pass`
	account     string       // canonical account name once logged in
	peer        bool         // the account is a replication peer (pauth instead of twofa; replication only)
	gen         uint64       // the account's generation at login (checkGeneration)
	refused     string       // why requireAdmin refused this command, for the audit
	refusals    int          // refused administrative commands so far (auditRefusal)
	enrolling   string       // account whose unconfirmed `qr` enrollment this connection began

	lastReq, lastResp []byte // the request being answered and its answer, for akey

	pending []byte // a request a data stream read that the loop must answer next (Session.Unread)

	api    Session     // what handlers outside the core see of this connection
	values map[any]any // session values of other packages (Session.Value)
}

// pendingAkey remembers an answered akey for the sess that must follow it.
type pendingAkey struct {
	kid       string
	req, resp []byte
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	addr := remoteAddr(nc)
	wc := wire.NewConn(nc, s.cfg.MaxMsg)
	defer func() {
		nc.Close()
		wc.Release() // only this goroutine reads, and it is done
	}()
	release, reason := s.limits.admit(addr, s.throttle.Load())
	if reason != "" {
		msg := wire.EncodeError(wire.Errorf(wire.CodeLimit, "%s", reason))
		_ = wc.WriteMessage(msg, time.Now().Add(5*time.Second))
		s.log.Debug("connection refused", "remote", addr, "reason", reason)
		return
	}
	defer release()
	if s.isClosing() {
		return
	}
	c := &conn{
		srv: s, nc: nc, wc: wc, addr: addr, id: newID(8),
		state: stateInitial, timeout: s.cfg.IdleTimeout,
		transcript: secure.NewTranscript(),
	}
	c.logh = connLogHandler{base: s.log.Handler(), conn: c.id, remote: addr}
	c.log = slog.New(&c.logh)
	s.register(c)
	defer s.unregister(c)
	// Also when the server stops, which has cancelled ctx: the enrollment
	// must not outlive its connection.
	defer c.cancelEnrollment(context.WithoutCancel(ctx))
	c.serve(ctx)
}

// connLogHandler adds a connection's attributes ("conn" and "remote") to
// what it logs, as Logger.With would, but formats them only when the first
// record is logged rather than for every connection: most connections log
// nothing at the default level, and With costs about 1% of the server's CPU
// in a handshake benchmark.
type connLogHandler struct {
	base   slog.Handler
	conn   string
	remote netip.Addr

	once sync.Once
	with slog.Handler // base with the connection's attributes
}

func (h *connLogHandler) handler() slog.Handler {
	h.once.Do(func() {
		h.with = h.base.WithAttrs([]slog.Attr{slog.String("conn", h.conn), slog.Any("remote", h.remote)})
	})
	return h.with
}

func (h *connLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Enabled(ctx, l)
}

func (h *connLogHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.handler().Handle(ctx, r)
}

func (h *connLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.handler().WithAttrs(attrs)
}

func (h *connLogHandler) WithGroup(name string) slog.Handler {
	return h.handler().WithGroup(name)
}

func remoteAddr(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func (c *conn) serve(ctx context.Context) {
	c.log.Debug("connected")
	signon, _ := wire.EncodeOK("vserv "+c.srv.cfg.Version+" ready", c.srv.id.ServerID)
	if err := c.write(signon); err != nil {
		return
	}
	c.transcript.Add(signon)
	defer c.endValues()
	for {
		if c.srv.isClosing() || c.killed.Load() {
			return
		}
		msg := c.pending
		c.pending = nil
		if msg == nil {
			var err error
			c.wc.SetReadLimit(c.readLimit())
			if msg, err = c.wc.ReadMessage(time.Now().Add(c.timeout)); err != nil {
				c.refuseOverLimit(err)
				c.logReadError(err)
				return
			}
		}
		if !c.setBusy(true) {
			return
		}
		closeAfter := c.dispatch(ctx, msg)
		c.setBusy(false)
		if closeAfter {
			return
		}
	}
}

// refuseOverLimit tells a client whose request was refused for its size,
// or for the spent read budget, why its connection closes: ERR limit. The
// rest of that request is never read.
func (c *conn) refuseOverLimit(err error) {
	var fe *wire.FramingError
	if errors.As(err, &fe) && fe.Limit {
		msg := wire.EncodeError(wire.Errorf(wire.CodeLimit, "request refused: %s; the connection closes", fe.Reason))
		_ = c.wc.WriteMessage(msg, time.Now().Add(5*time.Second))
	}
}

func (c *conn) logReadError(err error) {
	var fe *wire.FramingError
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		c.log.Debug("disconnected")
	case errors.As(err, &fe) && fe.Limit:
		c.log.Info("closing connection: request refused by a limit", "reason", fe.Reason)
	case errors.As(err, &fe):
		c.log.Info("closing connection: bad framing", "reason", fe.Reason)
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Debug("closing idle connection")
	default:
		c.log.Debug("connection ended", "err", err)
	}
}

// dispatch runs one request and sends its one response. It reports whether
// the connection must close afterwards.
func (c *conn) dispatch(ctx context.Context, msg []byte) (closeAfter bool) {
	clear := c.session == nil
	req, err := wire.DecodeRequest(msg)
	var r *reply
	if err == nil {
		r, err = c.run(ctx, req)
	}
	var out []byte
	if err != nil {
		out = wire.EncodeError(c.wireError(req, err))
		if r == nil {
			r = &reply{}
		}
	} else if out, err = wire.EncodeOK(r.vals...); err != nil {
		out = wire.EncodeError(c.wireError(req, err))
	} else if r.release == nil {
		// Handlers of big batched reads size and reserve their replies
		// before building them; this is the net under every other one.
		if held, err := c.holdReply(req.Cmd, len(out)); err != nil {
			out = wire.EncodeError(err.(*wire.Error))
		} else {
			r.release = held
		}
	}
	if r.release != nil {
		defer r.release()
	}
	if r.stream != nil {
		// The handler streams its own messages (fput, fget) and writes every
		// reply itself. A request it read but does not own is left in
		// c.pending for the loop.
		_, err := c.guard(req.Cmd, func() (*reply, error) { return nil, r.stream(ctx) })
		return err != nil || r.close
	}
	if werr := c.write(out); werr != nil {
		return true
	}
	c.lastReq, c.lastResp = msg, out
	if clear && c.transcript != nil {
		c.transcript.Add(msg)
		c.transcript.Add(out)
	}
	if r.after != nil {
		r.after()
	}
	// Only an akey's `after` needs them: an idle connection must not keep
	// its last (up to 16 MiB) request and answer alive.
	c.lastReq, c.lastResp = nil, nil
	return r.close
}

// wireError turns any handler error into the *wire.Error to send. Errors that
// are not already wire errors are server faults: they are logged with a
// correlation id that the reply repeats, and their text is not shown.
func (c *conn) wireError(req *wire.Request, err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	corr := newID(6)
	cmd := ""
	if req != nil {
		cmd = req.Cmd
	}
	c.log.Error("internal error", "cmd", cmd, "correlation", corr, "err", err)
	return wire.Errorf(wire.CodeInternal, "internal error (correlation id %s)", corr)
}

func (c *conn) write(msg []byte) error {
	return c.wc.WriteMessage(msg, time.Now().Add(30*time.Second))
}

// Reply is what a handler returns on success: OK, HeldReply or StreamReply
// make one.
type Reply struct {
	vals    []any
	after   func()                          // runs right after the reply is written (key switches)
	close   bool                            // close the connection after the reply
	stream  func(ctx context.Context) error // the handler writes the response(s) itself
	release func()                          // runs once the reply is sent or abandoned: gives back its reply budget
}

// reply is the name the core's handlers use for Reply.
type reply = Reply

func ok(vals ...any) (*reply, error) { return &reply{vals: vals}, nil }

func (c *conn) run(ctx context.Context, req *wire.Request) (*reply, error) {
	if err := c.checkGeneration(ctx, req.Cmd); err != nil {
		return nil, err
	}
	cmd, found := c.srv.cmds.cmds[req.Cmd]
	if !found {
		return nil, wire.Errorf(wire.CodeProto, "unknown command %q; `help` lists them", truncate(req.Cmd, 64))
	}
	if c.state < cmd.Min {
		return nil, wire.Errorf(wire.CodeState, "%s needs state %s (this connection is in state %s)", req.Cmd, cmd.Min, c.state)
	}
	// State user runs the session's commands plus only those flagged
	// UserState (§2.5; our reading is at cmdspec.Core).
	if c.state == stateUser && cmd.Min == stateUser && cmd.Flags&cmdspec.UserState == 0 {
		return nil, wire.Errorf(wire.CodeState, "%s needs state verified: send twofa first", req.Cmd)
	}
	if cmd.allowed != nil && !cmd.allowed(c) {
		return nil, wire.Errorf(wire.CodeState, "%s is not allowed in state %s", req.Cmd, c.state)
	}
	// A peer account replicates and does nothing else an account could
	// (docs/protocol.md §11, "Peer accounts"): beyond what an anonymous
	// session runs, only logout and the commands flagged Replicate.
	if c.peer && c.state == stateVerified && cmd.Min >= stateUser && cmd.Flags&cmdspec.Replicate == 0 && req.Cmd != "logout" {
		return nil, wire.Errorf(wire.CodePerm, "%s is not for peer accounts: %s only replicates", req.Cmd, c.account)
	}
	if err := req.Arity(cmd.MinArgs, cmd.MaxArgs); err != nil {
		return nil, err
	}
	c.refused = ""
	r, err := c.guard(req.Cmd, func() (*reply, error) {
		if cmd.run != nil {
			return cmd.run(ctx, c, req)
		}
		return cmd.Run(ctx, c.apiSession(), req)
	})
	c.auditRefusal(ctx, req)
	return r, err
}

// guard runs one handler (or stream) and turns a panic into ERR internal for
// this connection alone, which then closes, since its state may be half
// changed: one bad handler must not take down every other connection.
func (c *conn) guard(cmd string, fn func() (*reply, error)) (r *reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			corr := newID(6)
			c.log.Error("handler panic", "cmd", cmd, "correlation", corr, "panic", p, "stack", string(debug.Stack()))
			r, err = &reply{close: true}, wire.Errorf(wire.CodeInternal, "internal error (correlation id %s)", corr)
		}
	}()
	return fn()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (c *conn) setBusy(b bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b && c.killed.Load() {
		return false
	}
	c.busy = b
	return true
}

// wakeIfIdle makes a connection that waits for a request give up now; one
// running a command finishes it first.
func (c *conn) wakeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.busy {
		c.nc.SetReadDeadline(time.Now())
	}
}

func (c *conn) kill() {
	c.killed.Store(true)
	c.nc.Close()
}

func (c *conn) loggedInAs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

func (c *conn) setLoggedIn(account string, st state) {
	if account != c.account {
		// Session values belong to the login that made them (an upload
		// begun by one account must not finish under the next one's login).
		c.releaseValues()
	}
	c.mu.Lock()
	if account == "" {
		c.user = ""
	} else {
		c.user = auth.HomeName(account)
	}
	c.mu.Unlock()
	if account != c.account || account == "" {
		c.peer = false // pass sets it for the login it makes
	}
	c.account = account
	c.state = st
}
