// Command vbench is vserv's load generator. It drives a real server over
// loopback — one it starts itself (--vserv PATH, so it can read the server's
// CPU time and memory) or a running one (-n/-p) — and reports the numbers of
// DESIGN.md §8.
//
//	vbench [flags] [scenario ...]   scenarios: handshake hello rss files (default: all)
//	vbench --write BENCHMARKS.md    also record the results in that file
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	vservPath string
	host      string
	port      int
	duration  time.Duration
	write     string
	serverKey string
	user      string // account for scenarios that need one, on a running server
	fileSize  int64
	cpuProf   string
}

// scenario is one measurement.
type scenario struct {
	name string
	help string
	run  func(ctx context.Context, env *benchEnv) ([]result, error)
}

func scenarios() []scenario {
	return []scenario{
		{"handshake", "full handshakes (connect, akey, sess) per second with 8 clients, and server CPU per handshake", benchHandshake},
		{"hello", "hello round trips per second over 32 sessions, with p50/p99 latency", benchHello},
		{"rss", "server RSS idle, and with 1,000 idle sessions (needs --vserv)", benchRSS},
		{"files", "upload then download MB/s of one large file (--file-size, 1 GiB) over one encrypted session", benchFiles},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("vbench", flag.ContinueOnError)
	fs.StringVar(&o.vservPath, "vserv", "", "start this vserv binary on a temporary data directory and measure it (recommended)")
	fs.StringVar(&o.host, "n", "127.0.0.1", "host of a running server (without --vserv)")
	fs.IntVar(&o.port, "p", 6666, "port of a running server (without --vserv)")
	fs.StringVar(&o.serverKey, "server-key", "", "pin the running server's key (without --vserv)")
	fs.StringVar(&o.user, "u", "", "account to log in as on a running server (password from $VSERV_PASSWORD; without --vserv)")
	fs.Int64Var(&o.fileSize, "file-size", 1<<30, "bytes of the file the files scenario moves")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write vbench's own CPU profile (the client side) to this file")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each throughput measurement runs")
	fs.StringVar(&o.write, "write", "", "record the results in this Markdown file (e.g. BENCHMARKS.md)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vbench [flags] [scenario ...]\n\nscenarios:\n")
		for _, s := range scenarios() {
			fmt.Fprintf(fs.Output(), "  %-10s %s\n", s.name, s.help)
		}
		fmt.Fprintf(fs.Output(), "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	chosen := scenarios()
	if fs.NArg() > 0 {
		chosen = nil
		for _, name := range fs.Args() {
			i := slices.IndexFunc(scenarios(), func(s scenario) bool { return s.name == name })
			if i < 0 {
				return fmt.Errorf("unknown scenario %q (see vbench -h)", name)
			}
			chosen = append(chosen, scenarios()[i])
		}
	}
	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var all []result
	for _, s := range chosen {
		env, err := newEnv(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "vbench: %s ...\n", s.name)
		res, err := s.run(ctx, env)
		env.close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for _, r := range res {
			fmt.Printf("%-44s %14s %-10s target %s\n", r.what, r.valueText(), r.unit, r.target)
		}
		all = append(all, res...)
	}
	if o.write != "" {
		cmdline := "vbench " + strings.Join(args, " ")
		if err := writeResults(o.write, cmdline, all); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "vbench: results recorded in %s\n", o.write)
	}
	return nil
}
