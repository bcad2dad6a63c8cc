// Command vserv is the vserv server and its offline tools.
//
//	vserv [serve] [flags]        serve (the default)
//	vserv keygen [--identity]    add or rotate session keys, or rotate the identity
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
		Long: `vserv serves the vserv protocol: an encrypted session (Noise with a hybrid
ML-KEM post-quantum key exchange), accounts, and — as they are built — files and
a ledger whose every record can be proven.

With no arguments it serves on 127.0.0.1:6666 with its data in ./vserv-data,
creating keys on first start. The first line on stderr is "listening on HOST:PORT".`,
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
