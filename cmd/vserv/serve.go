package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/node"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/version"
	"github.com/vserv/vserv/internal/wire"
)

type serveOptions struct {
	host        string
	port        int
	dataroot    string
	production  bool
	loglevel    string
	norepl      bool
	verbose     bool
	quiet       bool
	showVersion bool
	http        string
	witnessLogs []string
	quorum      int
	maxConns    int
	maxConnsIP  int
	rateIP      float64
	site        string
	maxMsg      int
	idle        int
	testKDF     bool
	quotaBytes  int64
	quotaFiles  int64
	quotaTotal  int64
	cpuProfile  string
	readBudget  int64
	replyBudget int64
	peerCheck   time.Duration
}

// defaultHTTP is --http's default (DESIGN §7.3).
const defaultHTTP = "127.0.0.1:6680"

// listenHTTP binds --http: nothing for "off" (or "-" or ""). An address the
// operator gave must bind, or the server does not start; the default one is
// given up with a warning (busy is its error) when taken, so that a second
// vserv on one machine (a test, a second data directory) still starts.
func listenHTTP(addr string, given bool) (ln net.Listener, busy error, err error) {
	switch addr {
	case "off", "-", "":
		return nil, nil, nil
	}
	ln, err = net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil, nil
	case given:
		return nil, nil, fmt.Errorf("listen --http %s: %w", addr, err)
	default:
		return nil, err, nil
	}
}

func defaultServeOptions() *serveOptions {
	return &serveOptions{}
}

func (o *serveOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.host, "host", "n", "127.0.0.1", "address to listen on (-n 0.0.0.0 serves the network)")
	f.IntVarP(&o.port, "port", "p", 6666, "TCP port (0 picks a free one)")
	f.StringVarP(&o.dataroot, "dataroot", "r", "vserv-data", "data directory (created 0700 on first start)")
	f.BoolVarP(&o.production, "pmode", "P", false, "production mode: writers and admins must use a second factor; weak passwords refused")
	f.StringVarP(&o.loglevel, "loglevel", "l", "info", "log level: debug, info, warn or error")
	f.BoolVarP(&o.norepl, "norepl", "N", false, "do not run the replication workers: no pushes to mirrors, no pulls from homes (pushes from peers are still stored)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "verbose: log at debug level (overrides -l)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "quiet: log warnings and errors only (overrides -l)")
	f.BoolVarP(&o.showVersion, "version", "V", false, "print the version and exit")
	f.StringVar(&o.http, "http", defaultHTTP, "HTTP address (the witness endpoint; later the web panel and metrics), or off")
	f.StringArrayVar(&o.witnessLogs, "witness-log", nil, "witness this log: ORIGIN=KEY, KEY its public key or signed-note vkey (repeatable; beside the logs of ihost role log)")
	f.IntVar(&o.quorum, "witness-quorum", 0, "rproof without a tree size proves against the newest checkpoint holding at least K witness cosignatures (0: the newest checkpoint)")
	f.DurationVar(&o.peerCheck, "peer-check-timeout", node.DefaultPeerCheckTimeout, "at start, how long a chain with witnesses or mirrors waits for an unreachable one before it takes writes again (0 = wait for every peer)")
	f.IntVar(&o.maxConns, "max-conns", 4096, "most connections in total")
	f.IntVar(&o.maxConnsIP, "max-conns-ip", 64, "most connections from one IP address (IPv6: one /64)")
	f.Float64Var(&o.rateIP, "rate-ip", 20, "new connections plus handshakes per second allowed from one IP")
	f.StringVar(&o.site, "site", "", "site name the id command shows (default: the host name)")
	f.IntVar(&o.maxMsg, "max-msg", wire.DefaultMaxMsg, "largest message in bytes (at most 16 MiB)")
	f.Int64Var(&o.readBudget, "read-budget", server.DefaultReadBudget, "most bytes all connections together may hold in partly received requests (a quarter for connections without a login; at least --max-msg)")
	f.Int64Var(&o.replyBudget, "reply-budget", server.DefaultReplyBudget, "most bytes all connections together may hold in big replies being sent (a quarter for connections without a login; at least 64 MiB)")
	f.IntVar(&o.idle, "idle-timeout", 60, "seconds before an idle connection is closed (5 to 3600)")
	f.Int64Var(&o.quotaBytes, "quota-bytes", 1<<30, "most bytes of files one account may store (0 = no limit)")
	f.Int64Var(&o.quotaFiles, "quota-files", 100000, "most files one account may store (0 = no limit)")
	f.Int64Var(&o.quotaTotal, "quota-total", 0, "most bytes of files all accounts together may store (0 = no limit)")
	f.BoolVar(&o.testKDF, "test-kdf", false, "use very cheap password hashing (developer mode, tests only)")
	_ = f.MarkHidden("test-kdf")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the server stops (for diagnosis)")
	_ = f.MarkHidden("cpuprofile")
}

func (o *serveOptions) level() (slog.Level, error) {
	switch {
	case o.verbose:
		return slog.LevelDebug, nil
	case o.quiet:
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.loglevel)); err != nil {
		return 0, fmt.Errorf("--loglevel %q: want debug, info, warn or error", o.loglevel)
	}
	return l, nil
}

// runServe serves until the context ends. Usage errors exit 2; a server
// that cannot start or fails exits 1.
func runServe(cmd *cobra.Command, o *serveOptions) error {
	err := serve(cmd, o)
	var ee *exitError
	if err != nil && !errors.As(err, &ee) {
		return &exitError{code: 1, err: err}
	}
	return err
}

func serve(cmd *cobra.Command, o *serveOptions) error {
	if o.showVersion {
		fmt.Fprintln(cmd.OutOrStdout(), "vserv", version.String())
		return nil
	}
	usage := func(format string, args ...any) error {
		return &exitError{code: 2, err: fmt.Errorf(format, args...)}
	}
	level, err := o.level()
	if err != nil {
		return usage("%v", err)
	}
	if o.port < 0 || o.port > 65535 {
		return usage("--port %d: want 0 to 65535", o.port)
	}
	if o.idle < 5 || o.idle > 3600 {
		return usage("--idle-timeout %d: want 5 to 3600 seconds", o.idle)
	}
	if o.maxMsg < 1024 || o.maxMsg > wire.DefaultMaxMsg {
		return usage("--max-msg %d: want 1024 to %d", o.maxMsg, wire.DefaultMaxMsg)
	}
	if o.readBudget < int64(o.maxMsg) {
		return usage("--read-budget %d: want at least --max-msg (%d)", o.readBudget, o.maxMsg)
	}
	if o.replyBudget < 64<<20 {
		return usage("--reply-budget %d: want at least %d (64 MiB)", o.replyBudget, 64<<20)
	}
	if o.maxConns < 1 || o.maxConnsIP < 1 || o.rateIP <= 0 {
		return usage("--max-conns, --max-conns-ip and --rate-ip must be positive")
	}
	if o.quotaBytes < 0 || o.quotaFiles < 0 || o.quotaTotal < 0 {
		return usage("quotas cannot be negative")
	}
	if o.quorum < 0 || o.quorum > ledger.MaxCosignatures {
		return usage("--witness-quorum %d: want 0 to %d", o.quorum, ledger.MaxCosignatures)
	}
	if o.testKDF && o.production {
		return usage("--test-kdf is refused in production mode")
	}
	logs := replic.StaticLogs{}
	for _, spec := range o.witnessLogs {
		if err := logs.Add(spec); err != nil {
			return usage("--witness-log: %v", err)
		}
	}
	// The port first: a busy one fails before the data directory is touched.
	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	httpLn, httpBusy, err := listenHTTP(o.http, cmd.Flags().Changed("http"))
	if err != nil {
		return err
	}
	if httpLn != nil {
		defer httpLn.Close()
	}
	dir := datadir.New(o.dataroot)
	if err := os.MkdirAll(dir.Root(), datadir.DirPerm); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// Log records of the start wait in stderr until the server will serve:
	// "listening on" must be the first line, and must never be written by a
	// server that then exits (a busy database, a key others may read).
	stderr := newHeldWriter(cmd.ErrOrStderr())
	defer stderr.release("")
	logger, logFile, err := dir.OpenLog(stderr, level)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cfg := node.Config{
		DataRoot: o.dataroot, Production: o.production, Logger: logger,
		Quotas: files.Quotas{UserBytes: o.quotaBytes, UserFiles: o.quotaFiles, TotalBytes: o.quotaTotal},
		HTTP:   httpLn, WitnessLogs: logs, WitnessQuorum: o.quorum, PeerCheckTimeout: o.peerCheck, NoReplication: o.norepl,
		TCP: server.Config{
			Site: o.site, Version: version.String(), MaxConns: o.maxConns, MaxConnsIP: o.maxConnsIP,
			RateIP: o.rateIP, MaxMsg: o.maxMsg, IdleTimeout: time.Duration(o.idle) * time.Second,
			ReadBudget: o.readBudget, ReplyBudget: o.replyBudget,
		},
	}
	if o.peerCheck <= 0 {
		cfg.PeerCheckTimeout = -1 // wait for every peer
	}
	if o.testKDF {
		cfg.Argon = auth.TestArgon2
		logger.Warn("using test password hashing (--test-kdf): never use this for real accounts")
	}
	n, err := node.Open(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}

	// Written directly, not as a log record, and first: tests and scripts
	// read the port from this line and take it to mean the server is up.
	stderr.release(fmt.Sprintf("listening on %s\n", ln.Addr()))
	logger.Info("serving", "addr", ln.Addr().String(), "server_id", n.ServerID(),
		"dataroot", o.dataroot, "production", o.production)
	if o.norepl {
		logger.Info("replication disabled (-N)")
	}
	if httpLn != nil {
		logger.Info("serving http", "addr", httpLn.Addr().String(), "witness", n.WitnessName(),
			"witness_vkey", n.WitnessVerifierKey(), "witnessed_logs", len(logs))
	}
	if httpBusy != nil {
		logger.Warn("the default HTTP address is busy: serving without HTTP (give --http ADDR to insist, or --http off)",
			"http", o.http, "err", httpBusy)
	}
	err = n.Run(cmd.Context(), ln)
	logger.Info("stopped")
	return err
}
