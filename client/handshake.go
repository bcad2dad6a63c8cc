package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Handshake runs akey + sess (DESIGN.md §2.3). The first one switches the
// connection to encryption; one inside a session refreshes the keys and keeps
// the login state.
func (c *Client) Handshake(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	akeyReq, _ := wire.EncodeRequest("akey")
	var akeyResp []byte
	vals, err := c.roundTrip(ctx, akeyReq, func(raw []byte, _ *wire.Response) { akeyResp = raw })
	if err != nil {
		return fmt.Errorf("akey: %w", err)
	}
	if len(vals) != 1 {
		return fmt.Errorf("akey: reply has %d values, want 1", len(vals))
	}
	ki, err := secure.ParseKeyInfo(vals[0])
	if err != nil {
		return fmt.Errorf("akey: the server's session key is not validly signed: %w", err)
	}
	if err := ki.CheckFresh(time.Now()); err != nil {
		return fmt.Errorf("akey: %w", err)
	}
	record, err := c.trust(ctx, ki.ID)
	if err != nil {
		return err
	}
	var prologue []byte
	if c.session == nil {
		prologue = c.transcript.Prologue()
	} else {
		t := secure.NewSessionTranscript(c.session.HandshakeHash())
		t.Add(akeyReq)
		t.Add(akeyResp)
		prologue = t.Prologue()
	}
	hs, err := secure.ClientHandshake(ki, prologue)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	sessReq, err := wire.EncodeRequest("sess", ki.KID, hs.CT, hs.Msg1)
	if err != nil {
		return fmt.Errorf("encode sess: %w", err)
	}
	var newSession *secure.Session
	var finishErr error
	_, err = c.roundTrip(ctx, sessReq, func(_ []byte, r *wire.Response) {
		if r.Err != nil {
			return
		}
		var msg2 []byte
		if len(r.Vals) != 1 || wire.Unmarshal(r.Vals[0], &msg2) != nil {
			finishErr = fmt.Errorf("sess: malformed reply")
			return
		}
		newSession, finishErr = hs.Finish(msg2)
		if finishErr == nil {
			c.wc.SetCipher(newSession)
		}
	})
	if err != nil {
		return fmt.Errorf("sess: %w", err)
	}
	if finishErr != nil {
		c.nc.Close()
		c.closed = true
		return fmt.Errorf("sess: %w", finishErr)
	}
	c.session = newSession
	c.identity = ki.ID
	c.transcript = nil
	if record != nil {
		return record()
	}
	return nil
}

// trust decides whether id may be this server's identity key. It may return a
// func that records a first-contact key once the handshake has succeeded.
func (c *Client) trust(ctx context.Context, id ed25519.PublicKey) (record func() error, err error) {
	if c.identity != nil {
		if !bytes.Equal(c.identity, id) {
			return nil, fmt.Errorf("%s: %w", c.addr, ErrHostKeyChanged)
		}
		return nil, nil
	}
	if c.opts.ServerKey != "" {
		if secure.IsFingerprint(c.opts.ServerKey) {
			if secure.Fingerprint(id) != c.opts.ServerKey {
				return nil, fmt.Errorf("%s: the server's key %s does not match the pinned fingerprint %s: %w", c.addr, secure.Fingerprint(id), c.opts.ServerKey, ErrHostKeyChanged)
			}
			return nil, nil
		}
		pinned, err := secure.ParsePublicKey(c.opts.ServerKey)
		if err != nil {
			return nil, fmt.Errorf("--server-key: %w", err)
		}
		if !bytes.Equal(pinned, id) {
			return nil, fmt.Errorf("%s: the server's key %s does not match the pinned key: %w", c.addr, secure.Fingerprint(id), ErrHostKeyChanged)
		}
		return nil, nil
	}
	if c.opts.NoKnownHosts {
		return nil, nil
	}
	path := c.opts.KnownHosts
	if path == "" {
		if path, err = secure.DefaultKnownHostsPath(); err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	kh, err := secure.OpenKnownHosts(path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	known, found := kh.Lookup(c.addr)
	if found && bytes.Equal(known, id) {
		return nil, nil
	}
	if found {
		if err := c.followRotation(ctx, known, id); err != nil {
			return nil, fmt.Errorf("%s: recorded key %s, server now presents %s (%v). If the operator rotated the key, check the new fingerprint with them and pass it with --server-key, or remove the line for %s from %s: %w",
				c.addr, secure.Fingerprint(known), secure.Fingerprint(id), err, c.addr, path, ErrHostKeyChanged)
		}
		return func() error {
			c.notice(fmt.Sprintf("%s rotated its identity key to %s (verified through its rotation receipts); known_hosts updated", c.addr, secure.Fingerprint(id)))
			return kh.Set(c.addr, id)
		}, nil
	}
	return func() error {
		c.notice(fmt.Sprintf("first contact with %s: trusting its key %s and recording it in %s", c.addr, secure.Fingerprint(id), path))
		return kh.Set(c.addr, id)
	}, nil
}

func (c *Client) notice(msg string) {
	if c.opts.Notice != nil {
		c.opts.Notice(msg)
	}
}

// followRotation accepts newKey only through rotation receipts that lead from
// old to it (DESIGN.md §2.4), each verified with the key it replaces. It asks
// `id` in clear, between akey and sess: that exchange joins the transcript
// both sides hash into the handshake, so a tampered answer fails the
// handshake even if it verified. Called with c.mu held (from Handshake).
func (c *Client) followRotation(ctx context.Context, old, newKey ed25519.PublicKey) error {
	req, err := wire.EncodeRequest("id")
	if err != nil {
		return err
	}
	vals, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		return fmt.Errorf("id: %w", err)
	}
	if len(vals) < 4 {
		return fmt.Errorf("id: reply has %d values, want at least 4", len(vals))
	}
	var receipts [][]byte
	for _, v := range vals[4:] {
		var r string
		if err := wire.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("id: rotation receipt: %w", err)
		}
		receipts = append(receipts, []byte(r))
	}
	if len(receipts) == 0 {
		return errors.New("the server shows no rotation receipts")
	}
	got, err := verify.FollowRotations(old, c.serverID, receipts)
	if err != nil {
		return fmt.Errorf("its rotation receipts do not lead from the recorded key: %w", err)
	}
	if !got.Equal(newKey) {
		return fmt.Errorf("its rotation receipts lead to %s, not to the key it presents", secure.Fingerprint(got))
	}
	return nil
}

// Rekey ratchets both session keys forward (DESIGN.md §2.3 step 4).
func (c *Client) Rekey(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return fmt.Errorf("rekey: no session")
	}
	msg, _ := wire.EncodeRequest("rekey")
	_, err := c.roundTrip(ctx, msg, func(_ []byte, r *wire.Response) {
		if r.Err == nil {
			c.session.Rekey()
		}
	})
	return err
}
