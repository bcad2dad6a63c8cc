// Command vbench is vserv's load generator. It drives a real server over
// loopback — one it starts itself (--vserv PATH, so it can read the server's
// CPU time and memory) or a running one (-n/-p) — and reports the numbers of
// DESIGN.md §8.
//
//	vbench [flags] [scenario ...]   scenarios: handshake hello hello-login rss files rput rget rproof election replicate verify (default: all)
//	vbench --records N rget         load N records first (fill mode), then measure
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
	records   int // entries the rget, rproof and verify scenarios load first
	voters    int // voters (and casts) of the election scenario
	catchUp   int // entries a new mirror catches up in the replicate scenario
}

// scenario is one measurement.
type scenario struct {
	name string
	help string
	run  func(ctx context.Context, env *benchEnv) ([]result, error)
	// filled scenarios share one server whose chain is loaded with
	// --records entries first; they run after the others, verify last
	// (it stops the server).
	filled bool
}

func scenarios() []scenario {
	return []scenario{
		{"handshake", "full handshakes (connect, akey, sess) per second with 8 clients, and server CPU per handshake", benchHandshake, false},
		{"hello", "hello round trips per second over 32 sessions, with p50/p99 latency", benchHello, false},
		{"hello-login", "hello round trips per second over 32 logged-in sessions (each command re-checks the account)", benchHelloLogin, false},
		{"rss", "server RSS idle, and with 1,000 idle sessions (needs --vserv)", benchRSS, false},
		{"files", "upload then download MB/s of one large file (--file-size, 1 GiB) over one encrypted session", benchFiles, false},
		{"rput", "rput records/s: 32 sessions × 1 record per request, and 8 sessions × batches of 100", benchRput, false},
		{"rget", "rget by id p50/p99 at --records entries (1 session), and per second with 32", benchRget, true},
		{"rproof", "rproof p50/p99 at --records entries (1 session), and per second with 32", benchRproof, true},
		{"election", "election day: a vote chain, --voters registered, one vote.cast each from 32 sessions × 1 (vs free-form rput), view tally p99, recount time", benchElection, false},
		{"replicate", "replication (needs --vserv): home rput 32 × 1 alone and with 2 mirrors that also witness it, mirror lag p50/p99 at 5,000 records/s, catch-up of a mirror --catch-up entries behind", benchReplicate, false},
		{"verify", "vserv verify time and data directory size per record at --records entries (needs --vserv)", benchVerify, true},
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

func report(rs []result) {
	for _, r := range rs {
		fmt.Printf("%-44s %14s %-10s target %s\n", r.what, r.valueText(), r.unit, r.target)
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
	fs.IntVar(&o.records, "records", 1_000_000, "entries to load before the rget, rproof and verify scenarios (fill mode)")
	fs.IntVar(&o.voters, "voters", 100_000, "voters of the election scenario (each casts once; 500000 gives a chain of 1,000,001 entries)")
	fs.IntVar(&o.catchUp, "catch-up", 100_000, "entries a new mirror catches up in the replicate scenario")
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
	if o.voters < 1 {
		return fmt.Errorf("--voters %d: want at least 1", o.voters)
	}
	if o.records < 1 {
		return fmt.Errorf("--records %d: want at least 1", o.records)
	}
	// Filled scenarios go last, verify last of all: they share one loaded
	// server, and verify stops it.
	slices.SortStableFunc(chosen, func(a, b scenario) int {
		rank := func(s scenario) int {
			switch {
			case s.name == "verify":
				return 2
			case s.filled:
				return 1
			}
			return 0
		}
		return rank(a) - rank(b)
	})
	var all []result
	var filled *benchEnv
	defer func() {
		if filled != nil {
			filled.close()
		}
	}()
	for _, s := range chosen {
		env := filled
		if env == nil {
			var err error
			if env, err = newEnv(ctx, o); err != nil {
				return err
			}
		}
		if s.filled && filled == nil {
			filled = env
			fmt.Fprintf(os.Stderr, "vbench: fill %d records ...\n", o.records)
			f, res, err := fill(ctx, env, o.records)
			if err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			env.filled = f
			report(res)
			all = append(all, res...)
		}
		fmt.Fprintf(os.Stderr, "vbench: %s ...\n", s.name)
		res, err := s.run(ctx, env)
		if !s.filled {
			env.close()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		report(res)
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
