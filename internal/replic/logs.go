package replic

import (
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// Logs says which logs this server witnesses (DESIGN §3.5 role `log`) and
// by which keys their checkpoints are signed. Verifiers returns ok false for
// an origin that is not witnessed here (the witness answers 404); an origin
// it knows gets the verifiers of every key the log may sign with now (more
// than one across a key rotation).
type Logs interface {
	Verifiers(origin string) (v note.Verifiers, ok bool)
}

// StaticLogs is a fixed set of witnessed logs: origin → verifiers. The peer
// table will provide its own Logs from `ihost` entries of role `log`.
type StaticLogs map[string][]note.Verifier

// Verifiers implements Logs.
func (s StaticLogs) Verifiers(origin string) (note.Verifiers, bool) {
	vs, ok := s[origin]
	if !ok || len(vs) == 0 {
		return nil, false
	}
	return note.VerifierList(vs...), true
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
