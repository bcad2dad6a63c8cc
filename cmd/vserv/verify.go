package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/verify"
)

func newVerifyCmd() *cobra.Command {
	var dataroot, serverKey string
	var expect []string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a data directory's ledger offline: every link, hash, PoW, signature, root and checkpoint",
		Long: `vserv verify reads DATAROOT/ledger.db and checks every chain: each entry's
encoding and record, the prev links and seq numbering, leaf hashes and the id
index, proofs of work, record signatures, the stored Merkle tree, and every
stored checkpoint's signature and root.

A database can pass all of that and still be a rollback: an older copy, or one
whose tail or whole chains were deleted. So it is also checked against
checkpoints held elsewhere: DATAROOT/heads (the newest checkpoint the server
signed for each chain, when the file is there) and each --expect FILE (a
signed checkpoint note, a receipt, or a file of a client's checkpoint cache).
Each chain must still be at least that long, with that root at that size.

It needs the database to itself: stop the server, or verify a copy of the data
directory. It never writes: a database written by an older release (an older
layout, which the server migrates at its next start) is copied to a temporary
directory, and the migrated copy is verified. The checkpoint key is the public half of DATAROOT/identity.key,
or --server-key (the padded base64 key "vcli id" prints) for a copy that has
only ledger.db.

A --server-key that is neither the server's first identity key nor one its
keys chain rotates to is refused with one line saying it does not match the
server-id.

Exit status: 0 when everything verifies, 1 with one line per fault
("chain CHAIN seq N: WHAT"; for a rollback, N is the expected size and WHAT
names both sizes and roots), when the database cannot be read or the key
does not match, 2 for usage errors (a data directory that does not exist
included).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked first, so that a mistyped -r gets one plain line; and
			// nothing below may create the directory.
			if st, err := os.Stat(dataroot); err != nil || !st.IsDir() {
				return &exitError{code: 2, err: fmt.Errorf("data directory %s does not exist (give -r DIR, the server's data directory or a copy of it)", dataroot)}
			}
			pub, err := verifyKey(dataroot, serverKey)
			if err != nil {
				return err
			}
			// bbolt would create a missing file: a verifier must not.
			if _, err := os.Stat(datadir.New(dataroot).DBPath()); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("no ledger to verify: %w", err)}
			}
			exps, err := expectations(dataroot, expect)
			if err != nil {
				return err
			}
			// Read-only: a verifier never writes, not even to migrate.
			st, release, note, err := openStoreReadOnly(cmd.Context(), dataroot)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer release()
			if note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "vserv verify: "+note)
			}
			if serverKey != "" {
				if err := checkServerKey(cmd.Context(), st, pub); err != nil {
					return err
				}
			}
			chains, entries, err := ledgerSize(cmd.Context(), st)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			var prog *progressLine
			if !quiet {
				prog = newProgressLine(cmd.ErrOrStderr(), entries)
			}
			start := time.Now()
			faults, err := ledger.VerifyDB(cmd.Context(), st, pub, prog.update)
			prog.finish()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			rolled, err := ledger.VerifyExpected(cmd.Context(), st, pub, exps)
			faults = append(faults, rolled...)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			if len(faults) > 0 {
				for _, f := range faults {
					fmt.Fprintf(out, "chain %s seq %d: %s\n", f.Chain, f.Seq, f.What)
				}
				return &exitError{code: 1, err: fmt.Errorf("verify: %d faults in %s", len(faults), datadir.New(dataroot).DBPath())}
			}
			fmt.Fprintf(out, "ok: %d chains, %d entries verified in %s\n", chains, entries, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVarP(&dataroot, "dataroot", "r", "vserv-data", "data directory")
	cmd.Flags().StringVar(&serverKey, "server-key", "", "the server's public key (default: derived from DATAROOT/identity.key)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress line on stderr")
	cmd.Flags().StringArrayVar(&expect, "expect", nil, "a checkpoint held elsewhere (note, receipt or client cache file) the database must still contain; repeatable")
	return cmd
}

// expectations reads the heads file (if any) and the --expect files. A
// file that holds no checkpoint is a usage error: the check would be empty.
func expectations(dataroot string, files []string) ([]ledger.Expected, error) {
	heads, _, err := ledger.ReadHeads(datadir.New(dataroot).HeadsPath())
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	var exps []ledger.Expected
	for chain, h := range heads {
		exps = append(exps, ledger.Expected{Source: "heads file", Chain: chain, Head: h})
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("--expect: %w", err)}
		}
		note := verify.CheckpointNote(b)
		if !strings.HasPrefix(string(note), "vserv/") {
			return nil, &exitError{code: 2, err: fmt.Errorf("--expect %s: not a checkpoint note or receipt of a vserv chain", f)}
		}
		exps = append(exps, ledger.Expected{Source: f, Note: note})
	}
	slices.SortStableFunc(exps, func(a, b ledger.Expected) int { return strings.Compare(a.Chain, b.Chain) })
	return exps, nil
}

// verifyKey returns the key checkpoints must be signed with. It reads
// identity.key without secure.LoadOrCreateIdentity, which would create a key
// (and a data directory) where there is none: a verifier must never write.
func verifyKey(dataroot, serverKey string) (ed25519.PublicKey, error) {
	if serverKey != "" {
		pub, err := secure.ParsePublicKey(serverKey)
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("--server-key: %w (want the padded base64 key `vcli id` prints)", err)}
		}
		return pub, nil
	}
	path := datadir.New(dataroot).IdentityPath()
	seed, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &exitError{code: 1, err: fmt.Errorf("%s is missing: give --server-key with the server's public key", path)}
	case err != nil:
		return nil, &exitError{code: 1, err: fmt.Errorf("read identity key: %w", err)}
	case len(seed) != ed25519.SeedSize:
		return nil, &exitError{code: 1, err: fmt.Errorf("%s: %d bytes, want a %d-byte Ed25519 seed", path, len(seed), ed25519.SeedSize)}
	}
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// ledgerSize counts the chains and entries to verify, for the progress line
// and the summary. A chain whose size cannot be read counts as empty here;
// VerifyDB reports what is wrong with it.
func ledgerSize(ctx context.Context, st store.Store) (chains int, entries uint64, err error) {
	err = st.View(ctx, func(tx store.ReadTx) error {
		id, err := tx.ServerID()
		if err != nil {
			return err
		}
		metas, err := tx.Chains()
		if err != nil {
			return err
		}
		for _, m := range metas {
			if m.Origin != id {
				continue // VerifyDB checks the chains homed here
			}
			chains++
			if n, err := tx.Size(m.Key()); err == nil {
				entries += n
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read the list of chains: %w", err)
	}
	return chains, entries, nil
}

// progressLine redraws one line on stderr at most a few times a second:
// entries verified of the total, and the chain being verified.
type progressLine struct {
	w     io.Writer
	total uint64

	mu       sync.Mutex
	base     uint64 // entries of the chains already finished
	chain    string
	done     uint64 // of the current chain
	last     time.Time
	drawn    bool
	chainLen uint64
}

func newProgressLine(w io.Writer, total uint64) *progressLine {
	return &progressLine{w: w, total: total, last: time.Now()}
}

// update is VerifyDB's progress callback; a nil *progressLine ignores it.
func (p *progressLine) update(chain string, done, total uint64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if chain != p.chain {
		p.base += p.chainLen
		p.chain = chain
	}
	p.done, p.chainLen = done, total
	if time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.drawn = true
	all := p.base + p.done
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(all) / float64(p.total)
	}
	fmt.Fprintf(p.w, "\rverifying: %d/%d entries (%.0f%%), chain %s   ", all, p.total, pct, chain)
}

// finish ends the progress line so that what follows starts on its own line.
func (p *progressLine) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
