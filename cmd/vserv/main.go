// Command vserv is the vserv server and its offline tools.
//
//	vserv [serve] [flags]        serve (the default)
//	vserv keygen [--identity]    renew or add session keys, or rotate the identity
//	vserv verify -r DIR          check a data directory's ledger offline
//	vserv service                print a hardened systemd unit
//
// Run `vserv --help` for every flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "vserv:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(2)
}

func newRootCmd() *cobra.Command {
	opts := defaultServeOptions()
	root := &cobra.Command{
		Use:   "vserv",
		Short: "vserv: encrypted TCP server with a tamper-evident, publicly verifiable ledger",
		Long: `vserv serves the vserv protocol over TCP: an encrypted session (Noise with
a hybrid ML-KEM-768 post-quantum key exchange, the server proven by its pinned
Ed25519 key), accounts with two-factor authentication, a private file home per
account, and chains of records every one of which can be proven included
under a checkpoint the server signed (docs/protocol.md, docs/formats.md).

With no arguments it serves on 127.0.0.1:6666 with its data in ./vserv-data,
creating the directory and its keys on first start. It opens the data
directory (keys, database) before it says anything: the first line on stderr
is "listening on HOST:PORT", written only once the server will serve, and log
records follow it (they also go to DATAROOT/log/vserv.log). A data directory
another vserv is using, or a key file group or others may read, makes it exit
with status 1 and a one-line reason instead. SIGINT or SIGTERM stop it: running
commands get 10 s to finish.

--http (default 127.0.0.1:6680, off to disable) serves the C2SP witness
endpoint POST /witness/add-checkpoint for the logs of the peer table (role
log) and --witness-log ORIGIN=KEY, and /metrics; the default address, when
busy, is skipped with a warning. The server replicates its chains to the
mirrors of its peer table and pulls the chains of its homes (vcli host;
docs/operations.md "Walkthrough"); -N keeps those workers from running. The
web panel is not part of this version.

Exit status: 0 after a clean stop, 1 when the server cannot start or fails,
2 for usage errors.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, opts)
		},
	}
	opts.register(root)
	root.AddCommand(newServeCmd(), newKeygenCmd(), newVerifyCmd(), newResumeCmd(), newServiceCmd())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, err: fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	return root
}

func newServeCmd() *cobra.Command {
	opts := defaultServeOptions()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve (the default when no subcommand is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, opts)
		},
	}
	opts.register(cmd)
	return cmd
}
