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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/verify"
)

// Submission timing (docs/protocol.md "Submission to witnesses").
const (
	submitEvery   = time.Second     // at most one submission per chain and witness per second
	backoffFirst  = time.Second     // after a failure
	backoffMax    = 5 * time.Minute // doubling up to this
	submitTick    = 250 * time.Millisecond
	submitTimeout = 15 * time.Second // one request, connection to last byte
	// maxWitnessAnswer bounds a witness's answer body: a few cosignature
	// lines, or a size.
	maxWitnessAnswer = 16 << 10
	// maxConflictRetries bounds the immediate retries after 409s of one
	// submission, so a witness that keeps moving its size cannot hold us.
	maxConflictRetries = 3
)

// SubmitLedger is what the submitter needs of the ledger.
type SubmitLedger interface {
	Signed() <-chan struct{}
	TakeSigned() map[string]uint64
	Heads() map[string]ledger.Head
	Consistency(ctx context.Context, chain string, oldSize, newSize uint64) ([][]byte, []byte, error)
	AddCosignature(ctx context.Context, chain string, size uint64, line string) error
	// Hold refuses writes to chain, saying reason (a witness showed that
	// this data directory is behind it or on another history).
	Hold(chain, reason string)
}

// SubmitterConfig is what a Submitter needs.
type SubmitterConfig struct {
	Ledger SubmitLedger
	Peers  *Peers
	Logger *slog.Logger
	Client *http.Client     // nil: one with submitTimeout that follows no redirect
	Now    func() time.Time // time.Now when nil
}

// Submitter sends each changed chain's newest checkpoint to every witness
// of the peer table (`ihost` role witness, optionally for some chains only)
// and keeps the cosignatures that verify with the witness's pinned key.
type Submitter struct {
	l      SubmitLedger
	peers  *Peers
	log    *slog.Logger
	client *http.Client
	now    func() time.Time
	// state of each witness and chain; only Run touches it.
	state map[submitKey]*submitState
	heads map[string]uint64 // newest signed size of each chain homed here
}

type submitKey struct{ witness, chain string }

type submitState struct {
	held     uint64 // the size the witness last accepted (or told us in a 409)
	cosigned uint64 // the size of our newest checkpoint it cosigned
	next     time.Time
	backoff  time.Duration
}

// NewSubmitter returns the submitter of cfg.
func NewSubmitter(cfg SubmitterConfig) (*Submitter, error) {
	if cfg.Ledger == nil || cfg.Peers == nil {
		return nil, errors.New("new submitter: ledger and peers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       submitTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Submitter{
		l: cfg.Ledger, peers: cfg.Peers, log: cfg.Logger, client: cfg.Client, now: cfg.Now,
		state: map[submitKey]*submitState{}, heads: map[string]uint64{},
	}, nil
}

// Run submits until ctx ends, then returns nil. At start every chain is
// offered once (a witness added while we were down catches up).
func (s *Submitter) Run(ctx context.Context) error {
	for name, h := range s.l.Heads() {
		s.heads[name] = h.Size
	}
	tick := time.NewTicker(submitTick)
	defer tick.Stop()
	for {
		for name, size := range s.l.TakeSigned() {
			s.heads[name] = size
		}
		s.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.l.Signed():
		case <-tick.C:
		}
	}
}

// round submits to every witness each chain it has not cosigned at its
// newest size, where its timing allows.
func (s *Submitter) round(ctx context.Context) {
	peers, err := s.peers.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("submit: read the peer table", "err", err)
		}
		return
	}
	live := map[submitKey]bool{}
	for _, p := range peers {
		if p.Role != RoleWitness {
			continue
		}
		for chain, size := range s.heads {
			if len(p.Chains) > 0 && !slices.Contains(p.Chains, chain) {
				continue
			}
			k := submitKey{p.Peer + "\x00" + p.Name, chain}
			live[k] = true
			st := s.state[k]
			if st == nil {
				st = &submitState{}
				s.state[k] = st
			}
			if st.cosigned >= size || s.now().Before(st.next) || ctx.Err() != nil {
				continue
			}
			s.submit(ctx, p, chain, st)
		}
	}
	for k := range s.state {
		if !live[k] {
			delete(s.state, k)
		}
	}
}

// submit offers chain's newest checkpoint to witness p, retrying at once
// with the right proof when the witness answers 409 with another size.
func (s *Submitter) submit(ctx context.Context, p Peer, chain string, st *submitState) {
	now := s.now()
	st.next = now.Add(submitEvery)
	for range maxConflictRetries + 1 {
		size, err := s.submitOnce(ctx, p, chain, st.held)
		var conflict *sizeConflict
		switch {
		case err == nil:
			st.held, st.cosigned, st.backoff = size, size, 0
			return
		case errors.As(err, &conflict) && conflict.held > s.ours(chain):
			s.hold(ProbeResult{Chain: chain, Peer: p.Peer, Role: RoleWitness, Verdict: Behind, Ours: s.ours(chain), Theirs: conflict.held})
			st.held = conflict.held
		case errors.As(err, &conflict) && conflict.held != st.held:
			s.log.Debug("submit: witness holds another size", "witness", p.Peer, "chain", chain, "held", conflict.held)
			st.held = conflict.held
			continue
		case errors.As(err, &conflict):
			// Our old size was the witness's: it holds another root at it.
			s.hold(ProbeResult{Chain: chain, Peer: p.Peer, Role: RoleWitness, Verdict: Forked, Ours: s.heads[chain], Theirs: conflict.held,
				Detail: "the witness holds another checkpoint of the same size"})
		case isStatus(err, http.StatusUnprocessableEntity):
			s.hold(ProbeResult{Chain: chain, Peer: p.Peer, Role: RoleWitness, Verdict: Forked, Ours: s.heads[chain], Theirs: st.held,
				Detail: "the witness refused the consistency proof from the size it holds"})
		case ctx.Err() != nil:
			return
		}
		st.backoff = min(max(2*st.backoff, backoffFirst), backoffMax)
		st.next = now.Add(st.backoff)
		s.log.Warn("submit: witness refused or unreachable", "witness", p.Peer, "chain", chain, "retry_in", st.backoff, "err", err)
		return
	}
	st.backoff = min(max(2*st.backoff, backoffFirst), backoffMax)
	st.next = now.Add(st.backoff)
	s.log.Warn("submit: witness keeps answering 409", "witness", p.Peer, "chain", chain, "retry_in", st.backoff)
}

// hold holds r's chain for r's reason and logs it as an ERROR: a witness
// showed at runtime that this data directory is behind it or on another
// history (docs/operations.md "Restores and rollbacks").
func (s *Submitter) hold(r ProbeResult) {
	s.l.Hold(r.Chain, r.Reason())
	s.log.Error("chain held: "+r.Reason(), "chain", r.Chain, "witness", r.Peer, "verdict", string(r.Verdict), "ours", r.Ours, "theirs", r.Theirs)
}

// ours is chain's newest signed size: the ledger's, which may be ahead of
// what Run has taken from TakeSigned yet.
func (s *Submitter) ours(chain string) uint64 {
	return max(s.heads[chain], s.l.Heads()[chain].Size)
}

func isStatus(err error, status int) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == status
}

// sizeConflict is a 409 answer: the witness holds another size.
type sizeConflict struct{ held uint64 }

func (c *sizeConflict) Error() string { return fmt.Sprintf("witness holds size %d", c.held) }

// statusError is an answer other than 200 and 409 with a size.
type statusError struct {
	status int
	text   string
}

func (e *statusError) Error() string { return e.text }

// submitOnce POSTs one add-checkpoint from old and keeps the cosignature
// lines of the answer that verify with the witness's pinned key. It returns
// the size submitted.
func (s *Submitter) submitOnce(ctx context.Context, p Peer, chain string, old uint64) (uint64, error) {
	proof, note, err := s.l.Consistency(ctx, chain, old, 0)
	if err != nil {
		return 0, fmt.Errorf("consistency proof from %d: %w", old, err)
	}
	text, _, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok {
		return 0, errors.New("checkpoint note without signatures")
	}
	c, err := verify.ParseLogCheckpoint(string(text) + "\n")
	if err != nil {
		return 0, fmt.Errorf("our checkpoint: %w", err)
	}
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range proof {
		body.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	body.WriteString("\n")
	body.Write(note)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.Peer, "/")+"/add-checkpoint", &body)
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", contentTypeText)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("add-checkpoint: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessAnswer+1))
	if err != nil {
		return 0, fmt.Errorf("add-checkpoint answer: %w", err)
	}
	if len(answer) > maxWitnessAnswer {
		return 0, fmt.Errorf("add-checkpoint answer larger than %d bytes", maxWitnessAnswer)
	}
	switch {
	case resp.StatusCode == http.StatusConflict && resp.Header.Get("Content-Type") == ContentTypeSize:
		held, err := strconv.ParseUint(strings.TrimSuffix(string(answer), "\n"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("409 with a size body %q: %w", clip(string(answer)), err)
		}
		return 0, &sizeConflict{held: held}
	case resp.StatusCode != http.StatusOK:
		return 0, &statusError{status: resp.StatusCode, text: fmt.Sprintf("add-checkpoint: %s: %q", resp.Status, clip(string(answer)))}
	}
	kept := 0
	for line := range strings.Lines(string(answer)) {
		line = strings.TrimSuffix(line, "\n")
		if _, err := verify.VerifyCosignatureLine(string(text)+"\n", line, p.Name, ed25519.PublicKey(p.Key)); err != nil {
			s.log.Warn("submit: cosignature line does not verify with the pinned key; not kept",
				"witness", p.Peer, "chain", chain, "size", c.Size, "err", err)
			continue
		}
		if err := s.l.AddCosignature(ctx, chain, c.Size, line); err != nil {
			return 0, fmt.Errorf("keep the cosignature of size %d: %w", c.Size, err)
		}
		kept++
	}
	if kept == 0 {
		return 0, errors.New("no cosignature line of the answer verifies with the pinned key")
	}
	s.log.Debug("submit: cosigned", "witness", p.Peer, "chain", chain, "size", c.Size, "old", old)
	return c.Size, nil
}
