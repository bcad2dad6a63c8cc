package replic

import (
	"bytes"
	"context"

	"github.com/vserv/vserv/internal/store"
)

// WitnessForks returns the fork evidence the witness endpoint recorded
// (docs/protocol.md §12), oldest first: for `ihost forks`.
func (p *Peers) WitnessForks(ctx context.Context) ([]store.WitnessFork, error) {
	var out []store.WitnessFork
	err := p.st.View(ctx, func(tx store.ReadTx) error {
		return tx.WitnessForks(func(f store.WitnessFork) error {
			f.Held, f.Offered = bytes.Clone(f.Held), bytes.Clone(f.Offered)
			out = append(out, f)
			return nil
		})
	})
	return out, err
}
