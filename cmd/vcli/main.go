// Command vcli is the vserv command-line client.
//
//	vcli [global options] COMMAND [args]
//
// Exit status: 0 when the server answered OK, 1 when it answered ERR (with
// --json the document carries the code) or the peer sent no vserv sign-on,
// 2 for usage errors and when the server could not be reached or trusted.
// Run `vcli --help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/wire"
)

// Exit statuses of DESIGN.md §7.2.
const (
	exitOK    = 0
	exitERR   = 1
	exitUsage = 2
)

// usageError marks an error as the caller's mistake (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes vcli with args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := app.rootCmd()
	// --json is known before cobra parses the flags (after rootCmd, which
	// sets the flag's default), so that a flag error is a JSON document too.
	for _, arg := range args {
		if arg == "--" {
			break
		}
		if arg == "--json" {
			app.opts.json = true
		}
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	return app.exitStatus(err)
}

func (a *app) exitStatus(err error) int {
	if err == nil {
		return exitOK
	}
	var we *wire.Error
	var ue *usageError
	var qe *quietERR
	var se *client.SignOnError
	switch {
	case errors.As(err, &qe):
		return exitERR
	case errors.Is(err, client.ErrRollback):
		// Refused by this client, not the server: the message carries both
		// signed checkpoints.
		a.reportFailure(err)
		return exitERR
	case errors.As(err, &we):
		text := we.Text
		if text == "" {
			text = we.Code.Meaning()
		}
		if a.opts.json {
			a.printJSON(map[string]any{"ok": false, "code": string(we.Code), "error": text})
		} else {
			fmt.Fprintf(a.stderr, "vcli: ERR %s: %s\n", we.Code, text)
		}
		return exitERR
	case errors.As(err, &se):
		// Something answered, but not vserv: not a usage error, and a
		// retry with other options will not help.
		a.reportFailure(err)
		return exitERR
	case errors.As(err, &ue):
		a.reportFailure(err)
		return exitUsage
	default:
		a.reportFailure(err)
		return exitUsage
	}
}

func (a *app) reportFailure(err error) {
	if a.opts.json {
		a.printJSON(map[string]any{"ok": false, "error": err.Error()})
		return
	}
	fmt.Fprintln(a.stderr, "vcli:", err)
}
