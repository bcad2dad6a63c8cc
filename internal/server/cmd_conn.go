package server

import (
	"context"
	"errors"
	"time"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/wire"
)

// ProtocolVersion is the protocol number `ver` reports.
const ProtocolVersion = 1

// Idle timeout bounds for `tout` (DESIGN.md §2.2).
const (
	minTimeout = 5
	maxTimeout = 3600
)

func cmdHello(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	return ok("hello", c.srv.id.ServerID, c.id)
}

func cmdVer(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	return ok(c.srv.cfg.Version, uint64(ProtocolVersion))
}

func cmdID(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	pub := c.srv.id.Public()
	vals := []any{c.srv.id.ServerID, c.srv.cfg.Site, secure.Fingerprint(pub), secure.PublicKeyText(pub)}
	for _, r := range c.srv.rotationReceipts() {
		vals = append(vals, r)
	}
	return ok(vals...)
}

func cmdHelp(_ context.Context, c *conn, req *wire.Request) (*reply, error) {
	if req.NArgs() == 0 {
		return ok(c.srv.cmds.Names())
	}
	name, err := req.Text(0, "command name")
	if err != nil {
		return nil, err
	}
	cmd, found := c.srv.cmds.Lookup(name)
	if !found {
		return nil, wire.Errorf(wire.CodeNotFound, "no command %q", truncate(name, 64))
	}
	return ok(cmd.Usage + " (needs state " + cmd.Min.String() + ")")
}

func cmdDmode(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	if c.srv.cfg.Production {
		return ok(uint64(0))
	}
	return ok(uint64(1))
}

func cmdAkey(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	pk := c.srv.pool.Pick()
	if pk == nil {
		// Every key is past its use and no refresh has replaced them: a
		// server fault, logged, not a crash of every connection.
		return nil, errors.New("the session key pool has no live key (is the pool directory writable?)")
	}
	kid := pk.KID()
	return &reply{
		vals: []any{wire.RawMessage(pk.Info())},
		after: func() {
			c.akey = &pendingAkey{kid: kid, req: c.lastReq, resp: c.lastResp}
		},
	}, nil
}

func cmdSess(_ context.Context, c *conn, req *wire.Request) (*reply, error) {
	kid, err := req.Text(0, "kid")
	if err != nil {
		return nil, err
	}
	ct, err := req.Bytes(1, "ct")
	if err != nil {
		return nil, err
	}
	msg1, err := req.Bytes(2, "msg1")
	if err != nil {
		return nil, err
	}
	if c.akey == nil || c.akey.kid != kid {
		return nil, wire.Errorf(wire.CodeState, "sess must follow an akey answered on this connection, with its kid")
	}
	if c.srv.throttle.Load() && !c.srv.limits.allowHandshake(c.addr) {
		return nil, wire.Errorf(wire.CodeLimit, "too many handshakes from your address; slow down")
	}
	var prologue []byte
	if c.session == nil {
		prologue = c.transcript.Prologue()
	} else {
		t := secure.NewSessionTranscript(c.session.HandshakeHash())
		t.Add(c.akey.req)
		t.Add(c.akey.resp)
		prologue = t.Prologue()
	}
	msg2, sess, err := c.srv.pool.Accept(kid, ct, msg1, prologue)
	if err != nil {
		c.log.Info("handshake failed", "err", err)
		return &reply{close: true}, wire.Errorf(wire.CodeInvalid, "handshake failed")
	}
	return &reply{
		vals: []any{msg2},
		after: func() {
			c.wc.SetCipher(sess)
			c.session = sess
			c.akey = nil
			c.transcript = nil
			if c.state == stateInitial {
				c.state = stateSession
			}
		},
	}, nil
}

func cmdRekey(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	return &reply{after: func() { c.session.Rekey() }}, nil
}

func cmdTout(_ context.Context, c *conn, req *wire.Request) (*reply, error) {
	if req.NArgs() == 1 {
		secs, err := req.Uint(0, "seconds")
		if err != nil {
			return nil, err
		}
		if secs < minTimeout || secs > maxTimeout {
			return nil, wire.Errorf(wire.CodeInvalid, "timeout must be within [%d, %d] seconds", minTimeout, maxTimeout)
		}
		c.timeout = time.Duration(secs) * time.Second
	}
	return ok(uint64(c.timeout / time.Second))
}

func cmdQuit(_ context.Context, c *conn, _ *wire.Request) (*reply, error) {
	return &reply{vals: []any{"bye", c.id}, close: true}, nil
}
