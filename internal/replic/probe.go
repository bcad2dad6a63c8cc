package replic

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// Verdict is what one peer's answer says of a chain homed here
// (docs/operations.md "Restores and rollbacks").
type Verdict string

// The verdicts of a probe.
const (
	// Consistent: the peer holds a prefix of our tree (or nothing).
	Consistent Verdict = "consistent"
	// Behind: the peer holds more than this data directory: it was
	// restored from an older copy or its tail was deleted.
	Behind Verdict = "behind"
	// Forked: the peer holds a checkpoint our tree does not extend.
	Forked Verdict = "forked"
	// Unreachable: the peer did not answer with a size (down, refused us,
	// or does not know the chain's origin).
	Unreachable Verdict = "unreachable"
)

// probeTimeout bounds one probe of one peer, connection to answer.
const probeTimeout = 15 * time.Second

// ProbeResult is one peer's verdict on one chain.
type ProbeResult struct {
	Chain   string
	Peer    string // the peer as the peer table names it
	Role    Role   // RoleWitness or RoleMirror
	Verdict Verdict
	Ours    uint64 // the chain's newest signed size here
	Theirs  uint64 // the size the peer holds (when it said)
	Detail  string // why, for forked and unreachable
}

// Reason is the one-line explanation an operator reads in the log, in the
// ERR conflict of a held chain, and in `vserv resume`.
func (r ProbeResult) Reason() string {
	switch r.Verdict {
	case Consistent:
		if r.Detail != "" {
			return fmt.Sprintf("chain %s: %s %s holds nothing of it: %s", r.Chain, r.Role, r.Peer, r.Detail)
		}
		return fmt.Sprintf("chain %s: %s %s holds size %d, consistent with this data directory's %d", r.Chain, r.Role, r.Peer, r.Theirs, r.Ours)
	case Behind:
		return fmt.Sprintf("chain %s: %s %s holds size %d, this data directory only %d: it was restored from an older copy or its tail was deleted; "+
			"restore the newest backup, or fetch the chain from a mirror (see docs/operations.md)", r.Chain, r.Role, r.Peer, r.Theirs, r.Ours)
	case Forked:
		return fmt.Sprintf("chain %s: %s %s holds another history than this data directory (size %d here): %s; "+
			"the peer keeps both checkpoints as evidence of a fork (see docs/operations.md)", r.Chain, r.Role, r.Peer, r.Ours, r.Detail)
	default:
		return fmt.Sprintf("chain %s: %s %s is unreachable: %s", r.Chain, r.Role, r.Peer, r.Detail)
	}
}

// ProberConfig is what a Prober needs.
type ProberConfig struct {
	Ledger   SubmitLedger
	Peers    *Peers
	ServerID string
	Key      ed25519.PrivateKey // the identity key: pauth at mirrors
	Logger   *slog.Logger
	Client   *http.Client // witnesses; nil: as the Submitter's
}

// Prober asks the witnesses and mirrors of the chains homed here what they
// hold of each, and says whether this data directory is consistent with it:
// the check at start (internal/node) and of `vserv resume`.
type Prober struct {
	sub   *Submitter
	peers *Peers
	id    string
	key   ed25519.PrivateKey
}

// NewProber returns the prober of cfg.
func NewProber(cfg ProberConfig) (*Prober, error) {
	if !verify.ValidServerID(cfg.ServerID) || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("new prober: server-id and identity key are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       probeTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	sub, err := NewSubmitter(SubmitterConfig{Ledger: cfg.Ledger, Peers: cfg.Peers, Logger: cfg.Logger, Client: cfg.Client})
	if err != nil {
		return nil, fmt.Errorf("new prober: %w", err)
	}
	return &Prober{sub: sub, peers: cfg.Peers, id: cfg.ServerID, key: cfg.Key}, nil
}

// Targets returns, for every chain homed here with a signed checkpoint, the
// peers that hold some of it: the witnesses of every chain or listing it,
// and the mirrors listing it. Chains without such peers are left out.
func (p *Prober) Targets(ctx context.Context) (map[string][]Peer, error) {
	peers, err := p.peers.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the peer table: %w", err)
	}
	out := map[string][]Peer{}
	for chain := range p.sub.l.Heads() {
		for _, peer := range peers {
			switch {
			case peer.Role == RoleWitness && (len(peer.Chains) == 0 || slices.Contains(peer.Chains, chain)),
				peer.Role == RoleMirror && slices.Contains(peer.Chains, chain):
				out[chain] = append(out[chain], peer)
			}
		}
	}
	return out, nil
}

// Probe asks peer (a witness or mirror) what it holds of chain.
func (p *Prober) Probe(ctx context.Context, peer Peer, chain string) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	r := ProbeResult{Chain: chain, Peer: peer.Peer, Role: peer.Role, Ours: p.sub.l.Heads()[chain].Size}
	if peer.Role == RoleMirror {
		return p.probeMirror(ctx, peer, r)
	}
	return p.probeWitness(ctx, peer, r)
}

// probeWitness submits our newest checkpoint with old 0: a witness that
// holds nothing cosigns it (the cosignature is kept); one that holds size
// N answers 409 N. N larger than ours is Behind; else we submit again from
// N with the consistency proof, which the witness accepts (Consistent) or
// refuses and keeps as a fork (Forked).
func (p *Prober) probeWitness(ctx context.Context, peer Peer, r ProbeResult) ProbeResult {
	old := uint64(0)
	for range maxConflictRetries + 1 {
		size, err := p.sub.submitOnce(ctx, peer, r.Chain, old)
		var conflict *sizeConflict
		switch {
		case err == nil:
			r.Verdict, r.Theirs = Consistent, size
			return r
		case errors.As(err, &conflict) && conflict.held > r.Ours:
			r.Verdict, r.Theirs = Behind, conflict.held
			return r
		case errors.As(err, &conflict) && conflict.held == old && old > 0:
			r.Verdict, r.Theirs = Forked, conflict.held
			r.Detail = fmt.Sprintf("the witness holds another checkpoint of size %d", conflict.held)
			return r
		case errors.As(err, &conflict):
			old, r.Theirs = conflict.held, conflict.held
			continue
		case isStatus(err, http.StatusNotFound):
			// (decision) A witness that does not witness this chain's
			// origin holds nothing of it that we could contradict.
			r.Verdict, r.Detail = Consistent, "the witness does not witness this chain's origin (404)"
			return r
		case isStatus(err, http.StatusUnprocessableEntity):
			r.Verdict = Forked
			r.Detail = fmt.Sprintf("the witness refused the consistency proof from its size %d to ours", old)
			return r
		}
		r.Verdict, r.Detail = Unreachable, err.Error()
		return r
	}
	r.Verdict, r.Detail = Unreachable, "the witness kept answering 409 with another size"
	return r
}

// probeMirror logs in at the mirror as our peer account (pinned key, the
// peer table's credentials, pauth with the identity key) and calls ihave
// with our size: a mirror holding more is Behind; one holding less or as
// much must hold a checkpoint our tree extends.
func (p *Prober) probeMirror(ctx context.Context, peer Peer, r ProbeResult) ProbeResult {
	unreachable := func(format string, args ...any) ProbeResult {
		r.Verdict, r.Detail = Unreachable, fmt.Sprintf(format, args...)
		return r
	}
	user, pass, err := p.peers.Credentials(ctx, peer.Peer, RoleMirror)
	if err != nil {
		return unreachable("credentials: %v", err)
	}
	c, err := client.Dial(ctx, peer.Peer, client.Options{ServerKey: secure.PublicKeyText(peer.Key), Timeout: probeTimeout})
	if err != nil {
		return unreachable("%v", err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, user, pass); err != nil {
		return unreachable("login as %s: %v", user, err)
	}
	if err := c.PeerAuth(ctx, p.key); err != nil {
		return unreachable("pauth: %v", err)
	}
	size, cp, _, err := c.IHave(ctx, p.id, r.Chain, r.Ours)
	if errors.Is(err, wire.ErrNotFound) {
		r.Verdict = Consistent // it holds nothing of the chain yet
		return r
	}
	if err != nil {
		return unreachable("ihave: %v", err)
	}
	r.Theirs = size
	if size > r.Ours {
		r.Verdict = Behind
		return r
	}
	if size == 0 {
		r.Verdict = Consistent
		return r
	}
	text, _, _ := strings.Cut(cp, "\n\n")
	theirs, err := verify.ParseLogCheckpoint(text + "\n")
	if err != nil || theirs.Size != size || theirs.Origin != verify.OriginLine(p.id, r.Chain) {
		return unreachable("ihave answered size %d with a checkpoint that is not of it", size)
	}
	proof, note, err := p.sub.l.Consistency(ctx, r.Chain, size, 0)
	if err != nil {
		return unreachable("our consistency proof from %d: %v", size, err)
	}
	ourText, _, _ := bytes.Cut(note, []byte("\n\n"))
	ours, err := verify.ParseLogCheckpoint(string(ourText) + "\n")
	if err != nil {
		return unreachable("our checkpoint: %v", err)
	}
	if err := verify.VerifyConsistency(theirs, ours, proof); err != nil {
		r.Verdict = Forked
		r.Detail = fmt.Sprintf("its checkpoint of size %d is not a prefix of our tree: %v", size, err)
		return r
	}
	r.Verdict = Consistent
	return r
}
