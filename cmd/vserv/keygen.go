package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/store/bolt"
)

func newKeygenCmd() *cobra.Command {
	var dataroot string
	var identity, yes bool
	var add int
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Rotate the session-key pool (or add keys to it), or rotate the identity key",
		Long: `vserv keygen replaces every session key of the pool with fresh ones.
With --add N it adds N keys instead. With --identity it replaces the server's
Ed25519 identity key; the server-id does not change.

Run it while the server is stopped.

The old key signs a key.rotate record naming the new one, appended to the
public keys chain; clients that recorded the old key follow the rotation
through its receipt (vcli id shows it). Clients that pinned the old key with
--server-key refuse the new key until they are given it: publish the new
fingerprint this command prints. A data directory whose server never started
gets its ledger first, so that the rotation is recorded. If the ledger cannot
record the rotation, the old key is put back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Holding the database proves no server runs on this directory:
			// a running one would keep using the keys it has loaded.
			db, err := bolt.OpenDB(datadir.New(dataroot).DBPath(), time.Second)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer db.Close()
			out := cmd.OutOrStdout()
			if identity {
				if !yes {
					return &exitError{code: 2, err: fmt.Errorf("rotating the identity makes clients that pinned the old key refuse this server until they are given the new one; run again with --yes to do it")}
				}
				// The store owns db from here; its Close is db's.
				st, err := bolt.Open(cmd.Context(), db, bolt.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				r, err := server.RotateIdentity(cmd.Context(), dataroot, st, time.Now)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				pool, err := secure.OpenPool(dataroot, r.New, 8, 24*time.Hour, time.Now)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if err := pool.RotateAll(); err != nil {
					return &exitError{code: 1, err: err}
				}
				fmt.Fprintf(out, "WARNING: the identity key of server %s was replaced.\n", r.New.ServerID)
				fmt.Fprintf(out, "  old: %s\n  new: %s\n", secure.Fingerprint(r.Old.Public()), secure.Fingerprint(r.New.Public()))
				fmt.Fprintf(out, "  new public key: %s\n", secure.PublicKeyText(r.New.Public()))
				fmt.Fprintf(out, "The old key signed the rotation: entry %d of the keys chain. Clients that know the old key\n", r.Seq)
				fmt.Fprintln(out, "follow it through the receipt `id` shows; others need the new fingerprint (vcli --server-key).")
				if r.Warning != "" {
					fmt.Fprintf(out, "WARNING: %s (the server repairs this when it starts)\n", r.Warning)
				}
				return nil
			}
			id, _, err := secure.LoadOrCreateIdentity(dataroot)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			pool, err := secure.OpenPool(dataroot, id, 8, 24*time.Hour, time.Now)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if add > 0 {
				err = pool.AddKeys(add)
			} else {
				err = pool.RotateAll()
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(out, "session key pool of %s now has %d keys: %v\n", id.ServerID, pool.Len(), pool.KIDs())
			return nil
		},
	}
	cmd.Flags().StringVarP(&dataroot, "dataroot", "r", "vserv-data", "data directory")
	cmd.Flags().BoolVar(&identity, "identity", false, "rotate the identity key instead of the session keys")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm an identity rotation")
	cmd.Flags().IntVar(&add, "add", 0, "add this many session keys instead of replacing the pool")
	return cmd
}
