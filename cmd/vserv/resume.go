package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/internal/node"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/server"
)

func newResumeCmd() *cobra.Command {
	var dataroot string
	var accept bool
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "After a restore: check a stopped server's data directory against its heads file, witnesses and mirrors",
		Long: `vserv resume checks a stopped server's data directory (after a restore, a
crash, or a disk you do not trust) in two steps, and says per chain what it found
(docs/operations.md "Restores and rollbacks"):

1. Heads file: ledger.db against DATAROOT/heads, the newest checkpoint the
   server signed for each chain. It lists every chain the database has lost or
   rolled back. --accept-rollback re-anchors the heads file on the database as
   it is and records the decision (every chain, both sizes and roots) in the
   audit chain. Clients that cached a newer checkpoint will refuse the shorter
   history from then on, rightly.

2. Peers: every witness and mirror of each chain (ihost) is asked what it holds,
   as the server itself does at every start. Per chain and peer it prints one of
     consistent   the peer holds a prefix of this chain (or nothing of it)
     behind       the peer holds MORE than this data directory: it was restored
                  from an older copy, or its tail was deleted
     forked       the peer holds another history; it keeps both checkpoints as
                  evidence of a fork
     unreachable  no answer (the server's own start waits --peer-check-timeout
                  for it, then takes writes)
   A restore that copied both ledger.db and the heads file passes step 1 and is
   caught here. The server refuses writes on a behind or forked chain at every
   start, whatever this command says: restore the newest backup, or fetch the
   chain from a mirror. No new checkpoint is signed; cosignatures gathered are
   kept.

Exit status: 0 when the database agrees with the heads file (or the rollback was
accepted) and every chain is consistent with every peer that answered; 1 when
not (see the lines above the summary) or on errors; 2 for usage errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd.Context(), dataroot)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			headsErr := resumeHeads(out, dataroot, func() ([]server.HeadChange, error) {
				return server.AcceptRollback(cmd.Context(), dataroot, st, accept, time.Now)
			}, accept)
			var bad []error
			if headsErr != nil {
				if ee, ok := headsErr.(*exitError); ok && ee.code != 1 {
					return headsErr
				}
				bad = append(bad, headsErr)
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			results, err := node.CheckPeers(cmd.Context(), dataroot, st, logger)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("checking with the peers: %w", err)}
			}
			if held := printPeerResults(out, results); len(held) > 0 {
				bad = append(bad, fmt.Errorf("behind or forked from what their peers hold: %s; the server refuses writes on them: restore the newest backup, or fetch the chain from a mirror (docs/operations.md \"Restores and rollbacks\")", strings.Join(held, ", ")))
			}
			switch len(bad) {
			case 0:
				return nil
			case 1:
				return &exitError{code: 1, err: unwrapExit(bad[0])}
			}
			return &exitError{code: 1, err: fmt.Errorf("%v; and %v", unwrapExit(bad[0]), unwrapExit(bad[1]))}
		},
	}
	cmd.Flags().StringVarP(&dataroot, "dataroot", "r", "vserv-data", "data directory of the stopped server")
	cmd.Flags().BoolVar(&accept, "accept-rollback", false, "make the database as it is the reference for the heads file, and record that in audit")
	return cmd
}

func unwrapExit(err error) error {
	if ee, ok := err.(*exitError); ok {
		return ee.err
	}
	return err
}

// resumeHeads is step 1 of vserv resume: it prints the heads file's
// verdict and returns the error to exit with, if any.
func resumeHeads(out io.Writer, dataroot string, run func() ([]server.HeadChange, error), accept bool) error {
	changes, err := run()
	kept := 0
	for _, c := range changes {
		fmt.Fprintln(out, c)
		if c.Kept != "" {
			kept++
		}
	}
	switch {
	case err != nil:
		return &exitError{code: 1, err: err}
	case kept > 0:
		return &exitError{code: 1, err: fmt.Errorf("%d chains are read-only for faults of their own and were not re-anchored; `vserv verify -r %s` lists them", kept, dataroot)}
	case len(changes) == 0:
		fmt.Fprintln(out, "ok: the database agrees with the heads file")
	case accept:
		fmt.Fprintf(out, "accepted: the heads file now follows the database (%d chains changed; recorded in audit)\n", len(changes))
	default:
		return &exitError{code: 1, err: fmt.Errorf("the database is behind the heads file on %d chains; restore the newer ledger.db, or run again with --accept-rollback to keep this one", len(changes))}
	}
	return nil
}

// printPeerResults prints step 2, one line per chain and peer, and returns
// the chains behind or forked.
func printPeerResults(out io.Writer, results map[string][]replic.ProbeResult) []string {
	chains := make([]string, 0, len(results))
	for c := range results {
		chains = append(chains, c)
	}
	slices.Sort(chains)
	var bad []string
	checked, unreachable := 0, 0
	for _, chain := range chains {
		rs := results[chain]
		if len(rs) == 0 {
			continue
		}
		checked++
		worst := false
		for _, r := range rs {
			fmt.Fprintf(out, "%-11s  %s\n", r.Verdict, r.Reason())
			switch r.Verdict {
			case replic.Behind, replic.Forked:
				worst = true
			case replic.Unreachable:
				unreachable++
			}
		}
		if worst {
			bad = append(bad, "chain "+chain)
		}
	}
	switch {
	case checked == 0:
		fmt.Fprintln(out, "peers: no chain has a witness or mirror to check against")
	case len(bad) == 0 && unreachable == 0:
		fmt.Fprintf(out, "peers: ok: %d chains are consistent with every witness and mirror\n", checked)
	case len(bad) == 0:
		fmt.Fprintf(out, "peers: %d chains are consistent with every peer that answered; %d peers did not answer (check them before trusting this directory)\n", checked, unreachable)
	}
	return bad
}
