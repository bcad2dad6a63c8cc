// Package node is the composition root of a vserv server: it opens, in
// order, everything a server runs on (the data directory of DESIGN.md §2.6,
// the identity, the database, the session key pool, the secret key, the
// accounts, the file service, the ledger and its default chains, the setup
// token), hands them to the TCP server, runs the server's parts under one
// context, and closes everything in reverse order.
//
// It is the only package that knows how the others fit together; cmd/vserv
// parses flags and calls Open, Run and Close. The HTTP server (the witness
// endpoint, internal/web) is a part of Run beside the TCP server, and so
// are the witness submitter and the replication workers (docs/protocol.md §11).
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/metrics"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/cmdtable"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/web"
	"github.com/vserv/vserv/verify"
)

// Config is what a node needs to open. Zero values mean the defaults of
// DESIGN.md §7.1.
type Config struct {
	DataRoot   string // the data directory, created 0700 on first start ("vserv-data")
	Production bool
	PoolSize   int           // session keys in the pool (8)
	PoolLife   time.Duration // lifetime of a pool key (24 h)
	Argon      auth.Argon2Params
	Quotas     files.Quotas // per-account and global limits of the file service (0 = none)
	Logger     *slog.Logger
	Now        func() time.Time
	// TCP is the TCP server's settings; its Production, Logger and Now are
	// replaced by the node's.
	TCP server.Config
	// HTTP is the HTTP server's listener (--http), nil for none: Run serves
	// the witness endpoint on it (internal/web) and closes it.
	HTTP net.Listener
	// WitnessLogs are the logs whose checkpoints the witness endpoint
	// cosigns (nil: none, every origin is unknown).
	WitnessLogs replic.Logs
	// NoReplication (-N) keeps the replication workers from running: no
	// pushes to our mirrors, no pulls from our homes. Pushes from peers are
	// still checked and stored, and witnessing goes on.
	NoReplication bool
	// WitnessQuorum is --witness-quorum: rproof without a tree size uses the
	// newest checkpoint with at least this many cosignatures (0: the newest).
	WitnessQuorum int
	// PeerCheckTimeout bounds the check at start of the chains that have
	// witnesses or mirrors (DefaultPeerCheckTimeout when 0; negative: wait
	// for every peer however long it takes).
	PeerCheckTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.DataRoot == "" {
		c.DataRoot = "vserv-data"
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 8
	}
	if c.PoolLife <= 0 {
		c.PoolLife = 24 * time.Hour
	}
	if c.Argon.Time == 0 {
		c.Argon = auth.DefaultArgon2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PeerCheckTimeout == 0 {
		c.PeerCheckTimeout = DefaultPeerCheckTimeout
	}
	c.TCP.Production, c.TCP.Logger, c.TCP.Now = c.Production, c.Logger, c.Now
}

// The replication workers are the server's Replication.
var _ server.Replication = (*replic.Replicator)(nil)

// dbTimeout is how long Open waits for another process to release the
// database before it reports bolt.ErrDataRootInUse.
const dbTimeout = time.Second

// Node is one vserv server bound to one data directory.
type Node struct {
	cfg    Config
	log    *slog.Logger
	id     *secure.Identity
	parts  server.Parts // what Open opened, for the parts Run runs
	tcp    *server.Server
	web    *web.Server // nil without an HTTP listener
	submit *replic.Submitter
	repl   *replic.Replicator
	check  *peerCheck     // the chains held at start until their peers answer
	closes []func() error // what Close releases, in the order it was opened
}

// Open opens (creating on first start) the data directory and everything in
// it. When a step fails, everything opened before it is closed again, so a
// failed Open leaves no goroutine and no open file behind.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg.setDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	dir := datadir.New(cfg.DataRoot)

	id, created, err := secure.LoadOrCreateIdentity(dir.Root())
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	n.id = id
	if created {
		n.log.Info("created server identity", "server_id", id.ServerID, "fingerprint", secure.Fingerprint(id.Public()))
	}
	// The database before anything that writes: its lock is what keeps a
	// second vserv off a data directory in use, so that one never touches
	// the pool keys of the other.
	db, err := bolt.OpenDB(dir.DBPath(), dbTimeout)
	if err != nil {
		return nil, err
	}
	// Before anything reads the file: a file of an older layout is migrated
	// here (docs/operations.md "Upgrading").
	st, err := bolt.Open(ctx, db, bolt.Options{Logger: n.log})
	if err != nil {
		db.Close()
		return nil, err
	}
	n.onClose(st.Close) // owns db
	pool, err := secure.OpenPool(dir.Root(), id, cfg.PoolSize, cfg.PoolLife, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("session key pool: %w", err)
	}
	secret, err := auth.LoadOrCreateSecretKey(dir.Root())
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	accounts, err := auth.New(st, auth.Options{
		Argon: cfg.Argon, Production: cfg.Production, SecretKey: secret,
		ServerID: id.ServerID, Now: cfg.Now, Logger: n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	fs, err := files.New(dir.FilesDir(), cfg.Quotas, n.log)
	if err != nil {
		return nil, fmt.Errorf("file service: %w", err)
	}
	n.onClose(fs.Close)
	l, err := ledger.Open(ctx, st, ledger.Config{
		ServerID: id.ServerID, Signer: id.Key, Now: cfg.Now, Logger: n.log,
		// DESIGN.md §4.4: recompute every root from the entries at start, so
		// that an entry deleted or altered on disk makes its chain read-only
		// before anything new is signed over it (about 1 s per million entries).
		FullCheckOnOpen: true,
		HeadsFile:       dir.HeadsPath(),
		WitnessQuorum:   cfg.WitnessQuorum,
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	// The committer drains queued appends before the database closes.
	n.onClose(l.Close)
	if err := l.EnsureDefaultChains(ctx); err != nil {
		return nil, fmt.Errorf("create default chains: %w", err)
	}
	rotations := server.RotationReceipts(ctx, l, n.log)
	setup, err := openSetupToken(ctx, dir, accounts, n.log)
	if err != nil {
		return nil, err
	}
	peers := replic.New(st, accounts)
	if n.repl, err = replic.NewReplicator(replic.ReplicatorConfig{Ledger: l, Peers: peers, Identity: id, Logger: n.log, Now: cfg.Now,
		// A mirror holding another history of a chain of ours: sign nothing
		// more on it until a restart's peer check (docs/operations.md
		// "Restores and rollbacks").
		OnFork: func(chain, peer, reason string) {
			if name, ok := strings.CutPrefix(chain, verify.OriginLine(id.ServerID, "")); ok {
				l.Hold(name, fmt.Sprintf("mirror %s holds another history of this chain: %s", peer, reason))
			}
		}}); err != nil {
		return nil, err
	}
	n.parts = server.Parts{
		Identity: id, Pool: pool, Accounts: accounts, Files: fs, Ledger: l,
		SetupToken: setup, KeyRotations: rotations, Commands: cmdtable.Default(),
		Peers: peers, Replication: n.repl,
	}
	if n.submit, err = replic.NewSubmitter(replic.SubmitterConfig{Ledger: l, Peers: peers, Logger: n.log, Now: cfg.Now}); err != nil {
		return nil, err
	}
	// Before anything serves: a chain with witnesses or mirrors takes no
	// write until they have shown it consistent with this data directory
	// (docs/operations.md "Restores and rollbacks").
	prober, err := replic.NewProber(replic.ProberConfig{Ledger: l, Peers: peers, ServerID: id.ServerID, Key: id.Key, Logger: n.log})
	if err != nil {
		return nil, err
	}
	targets, err := prober.Targets(ctx)
	if err != nil {
		return nil, fmt.Errorf("peer check: %w", err)
	}
	n.check = &peerCheck{l: l, prober: prober, targets: targets, timeout: cfg.PeerCheckTimeout}
	n.check.hold()
	if n.tcp, err = server.New(cfg.TCP, n.parts); err != nil {
		return nil, err
	}
	if cfg.HTTP != nil {
		reg := metrics.New()
		if err := reg.Register(metrics.Replication(n.repl.Status)); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		if n.web, err = openWeb(st, id, peers.Following(l), reg, cfg); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// openSetupToken writes the setup token while no account exists, and
// removes a stale one once one does.
func openSetupToken(ctx context.Context, dir datadir.Dir, accounts *auth.Store, log *slog.Logger) (*datadir.SetupToken, error) {
	count, err := accounts.Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count accounts: %w", err)
	}
	t := dir.SetupToken()
	written, err := t.Ensure(count == 0)
	if err != nil {
		return nil, err
	}
	if written {
		log.Info("no account exists yet: create the first admin from this machine with `vcli uini`", "setup_token_file", t.Path())
	}
	return t, nil
}

// openWeb makes the HTTP server with the metrics of reg and the witness
// endpoint: the witness
// signs as vserv/<server-id> with the identity key (DESIGN §5.3), for the
// logs of the peer table (`ihost` role log) and of cfg.WitnessLogs.
func openWeb(st store.Store, id *secure.Identity, peers replic.Logs, reg *metrics.Registry, cfg Config) (*web.Server, error) {
	logs := replic.AnyLogs{peers}
	if cfg.WitnessLogs != nil {
		logs = append(logs, cfg.WitnessLogs)
	}
	w, err := replic.NewWitness(replic.WitnessConfig{
		Store: st, Logs: logs, ServerID: id.ServerID, Key: id.Key, Logger: cfg.Logger, Now: cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	return web.New(web.Config{Witness: w, Metrics: reg.Handler(), Logger: cfg.Logger}), nil
}

func (n *Node) onClose(f func() error) { n.closes = append(n.closes, f) }

// ServerID returns the server-id of §2.4.
func (n *Node) ServerID() string { return n.id.ServerID }

// WitnessName is the cosignature key name of this server's witness,
// vserv/<server-id> (DESIGN §5.3).
func (n *Node) WitnessName() string { return verify.WitnessName(n.id.ServerID) }

// WitnessVerifierKey is the signed-note verifier key of this server's
// witness, what other logs configure to check its cosignatures.
func (n *Node) WitnessVerifierKey() string {
	return verify.CosignatureVerifierKey(n.WitnessName(), n.id.Public())
}

// Run serves TCP connections on ln (and HTTP on Config.HTTP) until ctx ends or a part fails. Every
// part runs under one context: the first to fail cancels the others, and
// Run returns its error once all have stopped. It returns nil after a clean
// stop (ctx cancelled). Run once, then Close.
func (n *Node) Run(ctx context.Context, ln net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.tcp.Serve(ctx, ln) })
	// Our checkpoints to the witnesses of the peer table (DESIGN §5.3).
	g.Go(func() error { return n.submit.Run(ctx) })
	// Our chains to the mirrors, the chains of our homes to us (docs/protocol.md §11).
	if !n.cfg.NoReplication {
		g.Go(func() error { return n.repl.Run(ctx) })
	}
	// The check at start, beside the listener: reads are served meanwhile.
	g.Go(func() error { return n.check.run(ctx, n) })
	if n.web != nil {
		g.Go(func() error { return n.web.Serve(ctx, n.cfg.HTTP) })
	}
	return g.Wait()
}

// Close releases everything Open opened, in reverse order. Call it after
// Run has returned.
func (n *Node) Close() error {
	var errs []error
	for i := len(n.closes) - 1; i >= 0; i-- {
		errs = append(errs, n.closes[i]())
	}
	n.closes = nil
	return errors.Join(errs...)
}
