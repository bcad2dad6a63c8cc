package replic

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

// MaxAddCheckpointBody bounds an add-checkpoint request body, read before
// anything is allocated for it. The largest honest body is far smaller: the
// old size line, at most 63 proof lines of 45 bytes, and a checkpoint note
// with a few signature lines (about 4 KiB in all).
const MaxAddCheckpointBody = 64 << 10

// maxProofLines is the spec's limit on consistency proof lines: enough for
// a tree of 2^63 entries.
const maxProofLines = 63

// ContentTypeSize is the Content-Type of a 409 answer's body, the size the
// witness holds (C2SP tlog-witness).
const ContentTypeSize = "text/x.tlog.size"

const contentTypeText = "text/plain; charset=utf-8"

// WitnessConfig is what a Witness needs.
type WitnessConfig struct {
	Store    store.Store
	Logs     Logs
	ServerID string             // the witness's name is vserv/<ServerID>
	Key      ed25519.PrivateKey // the server's identity key signs cosignatures
	Logger   *slog.Logger
	Now      func() time.Time // cosignature times; time.Now when nil
}

// Witness serves POST add-checkpoint of C2SP tlog-witness v1.0.0
// (docs/protocol.md "Witness endpoint") as an http.Handler.
type Witness struct {
	st     store.Store
	logs   Logs
	signer note.Signer
	log    *slog.Logger
	now    func() time.Time
}

// NewWitness returns the witness of cfg.
func NewWitness(cfg WitnessConfig) (*Witness, error) {
	if cfg.Store == nil || cfg.Logs == nil || cfg.ServerID == "" || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("new witness: store, logs, server-id and key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Witness{
		st: cfg.Store, logs: cfg.Logs, log: cfg.Logger, now: cfg.Now,
		signer: verify.CosignatureSigner(cfg.ServerID, cfg.Key, cfg.Now),
	}, nil
}

// Name is the witness's cosignature key name, vserv/<server-id>.
func (w *Witness) Name() string { return w.signer.Name() }

// answer is one HTTP answer: status, Content-Type and body.
type answer struct {
	status int
	ctype  string
	body   string
}

func textAnswer(status int, format string, args ...any) answer {
	return answer{status: status, ctype: contentTypeText, body: fmt.Sprintf(format, args...) + "\n"}
}

func conflict(held uint64) answer {
	return answer{status: http.StatusConflict, ctype: ContentTypeSize, body: strconv.FormatUint(held, 10) + "\n"}
}

// ServeHTTP answers one add-checkpoint request.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	a := w.serve(rw, r)
	h := rw.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	rw.WriteHeader(a.status)
	io.WriteString(rw, a.body)
}

func (w *Witness) serve(rw http.ResponseWriter, r *http.Request) answer {
	if r.Method != http.MethodPost {
		return textAnswer(http.StatusMethodNotAllowed, "add-checkpoint takes POST")
	}
	tooLarge := textAnswer(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", MaxAddCheckpointBody)
	if r.ContentLength > MaxAddCheckpointBody {
		return tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxAddCheckpointBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge
		}
		return textAnswer(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return w.addCheckpoint(r.Context(), body)
}

// submission is a parsed add-checkpoint body.
type submission struct {
	old   uint64
	proof [][]byte
	note  []byte
}

// parseSubmission parses "old <size>\n", up to 63 base64 hash lines, an
// empty line and the signed checkpoint note, all or nothing.
func parseSubmission(body []byte) (*submission, error) {
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, errors.New("the body must start with a line \"old <size>\"")
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return nil, errors.New("the first line must be \"old <size>\"")
	}
	old, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil || strconv.FormatUint(old, 10) != string(num) {
		return nil, fmt.Errorf("old size %q is not a decimal without leading zeros", num)
	}
	s := &submission{old: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, errors.New("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(s.proof) == maxProofLines {
			return nil, fmt.Errorf("more than %d consistency proof lines", maxProofLines)
		}
		h, err := base64.StdEncoding.DecodeString(string(line))
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("proof line %d is not a 32-byte hash in base64", len(s.proof)+1)
		}
		s.proof = append(s.proof, h)
	}
	if len(rest) == 0 {
		return nil, errors.New("no checkpoint after the empty line")
	}
	if old == 0 && len(s.proof) != 0 {
		return nil, errors.New("the consistency proof must be empty when the old size is 0")
	}
	s.note = rest
	return s, nil
}

// addCheckpoint checks a submission in the order of the spec and, when it
// passes, records the checkpoint and cosigns it. The check of the old size
// and the update are one store transaction, durable before the answer.
func (w *Witness) addCheckpoint(ctx context.Context, body []byte) answer {
	sub, err := parseSubmission(body)
	if err != nil {
		return textAnswer(http.StatusBadRequest, "malformed request: %v", err)
	}
	origin := verify.CheckpointOrigin(sub.note)
	verifiers, ok, err := w.logs.Verifiers(ctx, origin)
	if err != nil {
		w.log.Error("witness: read the witnessed logs", "origin", origin, "err", err)
		return textAnswer(http.StatusInternalServerError, "internal error")
	}
	if !ok {
		return textAnswer(http.StatusNotFound, "unknown log origin")
	}
	n, err := note.Open(sub.note, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return textAnswer(http.StatusForbidden, "no valid signature by a key of this log")
		}
		return textAnswer(http.StatusBadRequest, "malformed checkpoint: %v", err)
	}
	c, err := verify.ParseLogCheckpoint(n.Text)
	if err != nil {
		return textAnswer(http.StatusBadRequest, "malformed checkpoint: %v", err)
	}
	if sub.old > c.Size {
		return textAnswer(http.StatusBadRequest, "old size %d is larger than the checkpoint's size %d", sub.old, c.Size)
	}

	var res answer
	var fork *store.WitnessFork
	err = w.st.Update(ctx, func(tx store.WriteTx) error {
		res, fork = answer{}, nil
		held, ok, err := tx.WitnessState(origin)
		if err != nil {
			return err
		}
		if !ok {
			held = store.WitnessState{Root: verify.EmptyRoot}
		}
		if sub.old != held.Size {
			res = conflict(held.Size)
			return nil
		}
		switch {
		case c.Size == held.Size && c.Root != held.Root:
			fork = w.fork(origin, "same size, other root", held.Note, sub.note)
			res = conflict(held.Size)
		case c.Size == held.Size && len(sub.proof) != 0:
			res = textAnswer(http.StatusUnprocessableEntity, "consistency proof does not verify")
		case c.Size > held.Size && held.Size > 0:
			prev := &verify.Checkpoint{Origin: origin, Size: held.Size, Root: held.Root}
			if err := verify.VerifyConsistency(prev, c, sub.proof); err != nil {
				fork = w.fork(origin, "consistency proof does not verify", held.Note, sub.note)
				res = textAnswer(http.StatusUnprocessableEntity, "consistency proof does not verify")
			}
		}
		if fork != nil {
			return keepWitnessFork(tx, *fork)
		}
		if res.status != 0 {
			return nil
		}
		return tx.PutWitnessState(origin, store.WitnessState{Size: c.Size, Root: c.Root, Note: sub.note})
	})
	if err != nil {
		w.log.Error("witness: storing the checkpoint failed", "origin", origin, "size", c.Size, "err", err)
		return textAnswer(http.StatusInternalServerError, "internal error")
	}
	if fork != nil {
		w.log.Error("witness: FORK: the log signed a checkpoint inconsistent with the one held; both kept as evidence",
			"origin", origin, "reason", fork.Reason, "held_size", sub.old, "offered_size", c.Size)
	}
	if res.status != 0 {
		return res
	}
	line, err := verify.CosignLine(n.Text, w.signer)
	if err != nil {
		w.log.Error("witness: cosigning failed", "origin", origin, "err", err)
		return textAnswer(http.StatusInternalServerError, "internal error")
	}
	w.log.Debug("witness: cosigned", "origin", origin, "size", c.Size, "old", sub.old)
	return answer{status: http.StatusOK, ctype: contentTypeText, body: line + "\n"}
}

func (w *Witness) fork(origin, reason string, held, offered []byte) *store.WitnessFork {
	return &store.WitnessFork{
		Origin: origin, Ms: uint64(w.now().UnixMilli()), Reason: reason,
		Held: bytes.Clone(held), Offered: bytes.Clone(offered),
	}
}

// MaxWitnessForks bounds the fork evidence kept per log origin. A fork
// needs a checkpoint the log signed, but a bad proof beside a genuine
// checkpoint is enough for a 422, so anyone could replay one: the same
// offered note is kept once, and at most this many per origin.
const MaxWitnessForks = 32

func keepWitnessFork(tx store.WriteTx, f store.WitnessFork) error {
	n := 0
	err := tx.WitnessForks(func(old store.WitnessFork) error {
		if old.Origin != f.Origin {
			return nil
		}
		if n++; bytes.Equal(old.Offered, f.Offered) {
			n = MaxWitnessForks // kept already
		}
		return nil
	})
	if err != nil || n >= MaxWitnessForks {
		return err
	}
	return tx.AddWitnessFork(f)
}
