package replic

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"

	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

// HomeKeys returns the keys pinned here for the home origin (a server-id):
// the key of every `home` entry whose key's server-id
// (verify.ServerIDFromKey) is origin, and of every `log` entry whose origin
// line is vserv/<origin>/<chain>. A mirror accepts the home's checkpoints
// signed by these and by the keys FollowRotations adds (docs/protocol.md
// §11, "Mirroring"). No entry: none, no error.
func (p *Peers) HomeKeys(ctx context.Context, origin string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	add := func(k []byte) {
		if len(k) == ed25519.PublicKeySize && !slices.ContainsFunc(out, func(h ed25519.PublicKey) bool { return bytes.Equal(h, k) }) {
			out = append(out, append(ed25519.PublicKey(nil), k...))
		}
	}
	err := p.st.View(ctx, func(tx store.ReadTx) error {
		all, err := load(tx)
		if err != nil {
			return err
		}
		for _, r := range all {
			switch r.Role {
			case RoleHome:
				if verify.ServerIDFromKey(r.Key) == origin {
					add(r.Key)
				}
			case RoleLog:
				if strings.HasPrefix(r.Peer, "vserv/"+origin+"/") {
					add(r.Key)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("home keys of %s: %w", origin, err)
	}
	return out, nil
}

// maxKeysEntries bounds how much of a mirrored keys chain FollowRotations
// reads: rotations are rare, and a chain beyond this is not walked (its
// first entries still are).
const maxKeysEntries = 10000

// FollowRotations adds to pinned the keys that the home origin's verified
// key.rotate records lead to from a pinned key, when this server mirrors
// the home's keys chain (vserv/<origin>/keys): that chain was checked
// entry by entry against the home's signed checkpoints when it was stored,
// and verify.KeyHistory checks that each rotation is signed by the key it
// retires. A key reached only from an unpinned key is not added. Without
// that mirrored chain (l nil, or not held) it returns pinned.
func FollowRotations(ctx context.Context, l *ledger.Ledger, origin string, pinned []ed25519.PublicKey) ([]ed25519.PublicKey, error) {
	if l == nil || len(pinned) == 0 {
		return pinned, nil
	}
	ref := verify.OriginLine(origin, verify.KeysChain)
	info, err := l.Chain(ref)
	if err != nil {
		return pinned, nil // not mirrored here
	}
	n := min(info.Size, maxKeysEntries)
	var entries [][]byte
	for from := uint64(0); from < n; from += ledger.MaxMirrorEntries {
		seqs := make([]int64, 0, ledger.MaxMirrorEntries)
		for s := from; s < min(n, from+ledger.MaxMirrorEntries); s++ {
			seqs = append(seqs, int64(s))
		}
		got, err := l.AbsMany(ctx, ref, seqs, nil)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ref, err)
		}
		entries = append(entries, got...)
	}
	history, err := verify.KeyHistory(origin, entries)
	if err != nil {
		// A broken history gives no key beyond the pinned ones.
		return pinned, nil
	}
	out := slices.Clone(pinned)
	for i, k := range history {
		if !slices.ContainsFunc(pinned, func(p ed25519.PublicKey) bool { return bytes.Equal(p, k) }) {
			continue
		}
		for _, next := range history[i+1:] {
			if !slices.ContainsFunc(out, func(o ed25519.PublicKey) bool { return bytes.Equal(o, next) }) {
				out = append(out, next)
			}
		}
		break
	}
	return out, nil
}
