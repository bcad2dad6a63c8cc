package replic

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// Logs says which logs this server witnesses (DESIGN §3.5 role `log`) and
// by which keys their checkpoints are signed. Verifiers returns ok false for
// an origin that is not witnessed here (the witness answers 404); an origin
// it knows gets the verifiers of every key the log may sign with now (more
// than one across a key rotation).
type Logs interface {
	Verifiers(ctx context.Context, origin string) (v note.Verifiers, ok bool, err error)
}

// StaticLogs is a fixed set of witnessed logs: origin → verifiers, from
// the interim `--witness-log` flags.
type StaticLogs map[string][]note.Verifier

// Verifiers implements Logs.
func (s StaticLogs) Verifiers(_ context.Context, origin string) (note.Verifiers, bool, error) {
	vs, ok := s[origin]
	if !ok || len(vs) == 0 {
		return nil, false, nil
	}
	return note.VerifierList(vs...), true, nil
}

// Verifiers implements Logs from the peer table: the `ihost` entries of
// role `log` whose peer is origin, each pinning the key the log signs
// with (key name origin, as a vserv chain's checkpoints are signed).
func (p *Peers) Verifiers(ctx context.Context, origin string) (note.Verifiers, bool, error) {
	peers, err := p.List(ctx)
	if err != nil {
		return nil, false, err
	}
	var vs []note.Verifier
	for _, peer := range peers {
		if peer.Role == RoleLog && peer.Peer == origin {
			vs = append(vs, verify.NewNoteVerifier(origin, peer.Key))
		}
	}
	if len(vs) == 0 {
		return nil, false, nil
	}
	return note.VerifierList(vs...), true, nil
}

// Following returns the peer table's logs with, for a vserv origin
// vserv/<server-id>/<chain>, the keys the home rotated to from a pinned key
// as its keys chain mirrored in l records them (FollowRotations), so that a
// witness keeps cosigning a home across a key rotation.
func (p *Peers) Following(l *ledger.Ledger) Logs { return followingLogs{p, l} }

type followingLogs struct {
	p *Peers
	l *ledger.Ledger
}

func (f followingLogs) Verifiers(ctx context.Context, origin string) (note.Verifiers, bool, error) {
	peers, err := f.p.List(ctx)
	if err != nil {
		return nil, false, err
	}
	var keys []ed25519.PublicKey
	for _, peer := range peers {
		if peer.Role == RoleLog && peer.Peer == origin {
			keys = append(keys, peer.Key)
		}
	}
	if len(keys) == 0 {
		return nil, false, nil
	}
	if id, _, ok := strings.Cut(strings.TrimPrefix(origin, "vserv/"), "/"); ok && strings.HasPrefix(origin, "vserv/") {
		if keys, err = FollowRotations(ctx, f.l, id, keys); err != nil {
			return nil, false, err
		}
	}
	vs := make([]note.Verifier, len(keys))
	for i, k := range keys {
		vs[i] = verify.NewNoteVerifier(origin, k)
	}
	return note.VerifierList(vs...), true, nil
}

// AnyLogs witnesses the logs any of its members knows, asked in order.
type AnyLogs []Logs

// Verifiers implements Logs: the first member that knows origin answers.
func (a AnyLogs) Verifiers(ctx context.Context, origin string) (note.Verifiers, bool, error) {
	for _, l := range a {
		vs, ok, err := l.Verifiers(ctx, origin)
		if err != nil || ok {
			return vs, ok, err
		}
	}
	return nil, false, nil
}

// Add parses one `--witness-log ORIGIN=KEY` value and adds it. KEY is either
// an Ed25519 public key in the text form of docs/protocol.md §2.4 (the log
// signs with key name ORIGIN, as vserv's chains do) or a C2SP signed-note
// verifier key "<name>+<hash>+<base64>" (what other logs publish).
func (s StaticLogs) Add(spec string) error {
	origin, key, ok := strings.Cut(spec, "=")
	if !ok || origin == "" || key == "" {
		return fmt.Errorf("witness log %q: want ORIGIN=KEY", spec)
	}
	if strings.ContainsAny(origin, "\n\x00") {
		return fmt.Errorf("witness log %q: the origin is one line", spec)
	}
	var v note.Verifier
	if pub, err := secure.ParsePublicKey(key); err == nil {
		v = verify.NewNoteVerifier(origin, pub)
	} else if v, err = note.NewVerifier(key); err != nil {
		return fmt.Errorf("witness log %q: KEY is neither a public key (base64 of 32 bytes) nor a signed-note verifier key: %v", spec, err)
	}
	s[origin] = append(s[origin], v)
	return nil
}
