// Package client is the Go client library for vserv: it dials a server, checks
// the server's identity (a pinned key or known_hosts), runs the encrypted
// handshake of docs/protocol.md and offers typed calls for the commands.
//
// Every error a server sends arrives as a *wire.Error (aliased here as Error)
// whose Code callers can test with errors.Is(err, client.ErrNotFound) and the
// other sentinels.
package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/wire"
)

// Error is an ERR reply from the server.
type Error = wire.Error

// Code is an ERR code.
type Code = wire.Code

// Sentinels for errors.Is.
var (
	ErrProto    = wire.ErrProto
	ErrState    = wire.ErrState
	ErrAuth     = wire.ErrAuth
	ErrPerm     = wire.ErrPerm
	ErrNotFound = wire.ErrNotFound
	ErrExists   = wire.ErrExists
	ErrConflict = wire.ErrConflict
	ErrInvalid  = wire.ErrInvalid
	ErrLimit    = wire.ErrLimit
	ErrInternal = wire.ErrInternal
)

// ErrHostKeyChanged means the server presented an identity key other than the
// one recorded or pinned for it, with no rotation receipts leading to it.
var ErrHostKeyChanged = errors.New("the server's identity key has CHANGED: someone may be intercepting the connection, or the key was replaced without a rotation record")

// Options controls how a client connects and whom it trusts.
type Options struct {
	// ServerKey pins the server identity: a padded base64 public key or a
	// "SHA256:..." fingerprint. When set, known_hosts is neither read nor written.
	ServerKey string
	// KnownHosts is the known_hosts path; "" means the default
	// (~/.config/vserv/known_hosts).
	KnownHosts string
	// NoKnownHosts trusts any key on first contact and records nothing: for
	// tests and benchmarks only.
	NoKnownHosts bool
	// HomeKeys are the identity keys of homes whose chains this client
	// reads at a mirror (by full origin vserv/<home server-id>/<name>): the
	// key whose server-id is a chain's origin verifies its checkpoints.
	// Keys recorded in known_hosts are used too.
	HomeKeys []ed25519.PublicKey
	// Notice receives messages a person should see (first contact, rotation).
	Notice func(msg string)
	// NoSession leaves the connection in clear text after the sign-on.
	NoSession bool
	// Timeout bounds each call when ctx has no deadline (default 60 s).
	Timeout time.Duration
	// ConnectTimeout bounds connecting and waiting for the sign-on: a peer
	// that accepts and says nothing is not a vserv server, and a person
	// should not wait a minute to learn it. 0 means ctx's deadline when it
	// has one (a caller waiting for a server to start), else
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Dialer dials the TCP connection (nil = a net.Dialer).
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConnectTimeout is Options.ConnectTimeout's default.
const DefaultConnectTimeout = 10 * time.Second

// SignOnError means the peer accepted the connection but sent no vserv
// sign-on (DESIGN.md §2.2) in time: nothing, garbage, or something that is
// not a greeting. Err says what was read.
type SignOnError struct {
	Addr string
	Err  error
}

func (e *SignOnError) Error() string {
	return fmt.Sprintf("no vserv sign-on from %s (is this a vserv server?): %v", e.Addr, e.Err)
}

func (e *SignOnError) Unwrap() error { return e.Err }

// DialError means the TCP connection to Addr could not be made. Its text
// names the address once: "connect to 127.0.0.1:6667: connection refused",
// not the net package's "dial tcp 127.0.0.1:6667: connect: ..." after it.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string {
	reason := e.Err
	var op *net.OpError
	if errors.As(reason, &op) && op.Err != nil {
		reason = op.Err
	}
	var sys *os.SyscallError
	if errors.As(reason, &sys) && sys.Err != nil {
		reason = sys.Err
	}
	return fmt.Sprintf("connect to %s: %v", e.Addr, reason)
}

func (e *DialError) Unwrap() error { return e.Err }

// Client is one connection to a server. Calls are serialised.
type Client struct {
	opts Options
	addr string
	nc   net.Conn
	wc   *wire.Conn

	mu         sync.Mutex
	serverID   string
	signOn     string
	identity   ed25519.PublicKey // the identity key this connection trusts
	session    *secure.Session
	transcript *secure.Transcript
	closed     bool
	chunk      int // upload chunk size set by SetChunk (0 = MaxChunk)
}

// Dial connects to addr (host:port), reads the sign-on and, unless
// opts.NoSession, completes the encrypted handshake.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	dial := opts.Dialer
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	connectCtx := ctx
	if _, has := ctx.Deadline(); opts.ConnectTimeout > 0 || !has {
		limit := opts.ConnectTimeout
		if limit <= 0 {
			limit = DefaultConnectTimeout
		}
		var cancel context.CancelFunc
		connectCtx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	nc, err := dial(connectCtx, "tcp", addr)
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	c := &Client{opts: opts, addr: addr, nc: nc, wc: wire.NewConn(nc, 0), transcript: secure.NewTranscript()}
	if err := c.readSignOn(connectCtx); err != nil {
		nc.Close()
		return nil, err
	}
	if !opts.NoSession {
		if err := c.Handshake(ctx); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *Client) readSignOn(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	msg, err := c.wc.ReadMessage(c.deadline(ctx))
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return &SignOnError{Addr: c.addr, Err: err}
	}
	resp, err := wire.DecodeResponse(msg)
	if err != nil {
		return &SignOnError{Addr: c.addr, Err: err}
	}
	if resp.Err != nil {
		return resp.Err
	}
	if len(resp.Vals) < 2 || wire.Unmarshal(resp.Vals[0], &c.signOn) != nil || wire.Unmarshal(resp.Vals[1], &c.serverID) != nil {
		return &SignOnError{Addr: c.addr, Err: errors.New("the first message is not a greeting")}
	}
	c.transcript.Add(msg)
	return nil
}

// ServerID returns the server-id from the sign-on.
func (c *Client) ServerID() string { return c.serverID }

// SignOn returns the sign-on text ("vserv <version> ready").
func (c *Client) SignOn() string { return c.signOn }

// Identity returns the identity key verified by the handshake, or nil.
func (c *Client) Identity() ed25519.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identity
}

// Encrypted reports whether the session is established.
func (c *Client) Encrypted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil
}

// Close closes the connection without saying goodbye.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.nc.Close()
}

func (c *Client) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(c.opts.Timeout)
}

// Call sends [cmd, args...] and returns the values after "OK", or the server's
// *Error. Any other error means the connection is unusable.
func (c *Client) Call(ctx context.Context, cmd string, args ...any) ([]wire.RawMessage, error) {
	msg, err := wire.EncodeRequest(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", cmd, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roundTrip(ctx, msg, nil)
}

// CallRaw sends an already encoded message (tests use it for malformed ones).
func (c *Client) CallRaw(ctx context.Context, msg []byte) ([]wire.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roundTrip(ctx, msg, nil)
}

// roundTrip writes msg and reads one response; after, if set, sees the
// response and its bytes before the return (key switches, transcripts).
// Called with mu held.
func (c *Client) roundTrip(ctx context.Context, msg []byte, after func(raw []byte, r *wire.Response)) ([]wire.RawMessage, error) {
	if c.closed {
		return nil, net.ErrClosed
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	dl := c.deadline(ctx)
	// A failed write or read (a decryption failure included) leaves the
	// stream unusable: close it, as DESIGN.md §2.3 asks of both sides.
	if err := c.wc.WriteMessage(msg, dl); err != nil {
		c.closed = true
		c.nc.Close()
		return nil, c.ioError(ctx, err)
	}
	in, err := c.wc.ReadMessage(dl)
	if err != nil {
		c.closed = true
		c.nc.Close()
		return nil, c.ioError(ctx, err)
	}
	if c.session == nil {
		c.transcript.Add(msg)
		c.transcript.Add(in)
	}
	resp, err := wire.DecodeResponse(in)
	if err != nil {
		return nil, err
	}
	if after != nil {
		after(in, resp)
	}
	if resp.Err != nil {
		return nil, resp.Err
	}
	return resp.Vals, nil
}

func (c *Client) ioError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", c.addr, ctx.Err())
	}
	return fmt.Errorf("connection to %s: %w", c.addr, err)
}

// Conn exposes the framed connection for tests that send broken frames.
func (c *Client) Conn() *wire.Conn { return c.wc }
