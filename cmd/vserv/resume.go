package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/internal/server"
)

func newResumeCmd() *cobra.Command {
	var dataroot string
	var accept bool
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Compare a restored database with the heads file; --accept-rollback makes it the reference",
		Long: `vserv resume checks a stopped server's ledger.db against DATAROOT/heads, the
newest checkpoint the server signed for each chain (docs/operations.md
"Rollback"), and lists every chain the database has lost or rolled back.

Checking a restored database against the checkpoints witnesses hold comes with
replication; until then the decision is the operator's. --accept-rollback
re-anchors the heads file on the database as it is, so that the server signs
again on the shorter history, and records the decision (every chain, both
sizes and roots) in the audit chain. Clients that cached a newer checkpoint
will refuse the server's history from then on, rightly: keep the old heads
file and their reports as the record of what was lost.

Exit status: 0 when the database agrees with the heads file or the rollback
was accepted, 1 when it does not (one line per chain) or on errors, 2 for
usage errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd.Context(), dataroot)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer st.Close()
			changes, err := server.AcceptRollback(cmd.Context(), dataroot, st, accept, time.Now)
			out := cmd.OutOrStdout()
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
		},
	}
	cmd.Flags().StringVarP(&dataroot, "dataroot", "r", "vserv-data", "data directory")
	cmd.Flags().BoolVar(&accept, "accept-rollback", false, "make the database as it is the reference, and record that in audit")
	return cmd
}
