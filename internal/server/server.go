package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/replic"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/wire"
)

// Config is the TCP server's settings. Zero values mean the defaults of
// DESIGN.md §7.1. What the server runs on (keys, database, accounts, files,
// ledger) is opened by its caller, internal/node, and given to New as Parts.
type Config struct {
	Production  bool
	Site        string // host name shown by `id`
	Version     string
	MaxConns    int     // total connections (4096)
	MaxConnsIP  int     // connections per IP (64)
	RateIP      float64 // new connections + handshakes per second per IP (20)
	MaxMsg      int     // largest message (16 MiB)
	IdleTimeout time.Duration
	Grace       time.Duration // how long in-flight commands may run at shutdown (10 s)
	ReadBudget  int64         // bytes held in partly received requests, server-wide (DefaultReadBudget)
	ReplyBudget int64         // bytes held in big replies being built or sent, server-wide (DefaultReplyBudget)
	Logger      *slog.Logger
	Now         func() time.Time
}

func (c *Config) setDefaults() {
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 4096
	}
	if c.MaxConnsIP <= 0 {
		c.MaxConnsIP = 64
	}
	if c.RateIP <= 0 {
		c.RateIP = 20
	}
	if c.MaxMsg <= 0 || c.MaxMsg > wire.DefaultMaxMsg {
		c.MaxMsg = wire.DefaultMaxMsg
	}
	if c.ReadBudget <= 0 {
		c.ReadBudget = DefaultReadBudget
	}
	if c.ReplyBudget <= 0 {
		c.ReplyBudget = DefaultReplyBudget
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Site == "" {
		c.Site, _ = os.Hostname()
	}
}

// Parts are what a Server runs on, opened (and, after the server is done,
// closed) by its caller: the server neither opens nor closes any of them.
type Parts struct {
	Identity   *secure.Identity
	Pool       *secure.Pool
	Accounts   *auth.Store
	Files      *files.Service
	Ledger     *ledger.Ledger
	SetupToken *datadir.SetupToken
	// KeyRotations are the receipts `id` appends (RotationReceipts).
	KeyRotations []string
	// Commands is the command table (cmdtable.Default: every command;
	// NewTable: the core's alone). New freezes it.
	Commands *Table
	// Peers is the peer table of replication (internal/replic), on the
	// same store as Accounts. Only the replication commands use it; it may
	// be nil in a server built without them.
	Peers *replic.Peers
	// Replication is the replication workers, for the commands that show
	// or drive them (`ihost list`, `ihost sync`, rpush); nil in a server
	// without them.
	Replication Replication
}

// Replication is what the replication commands ask of the replication
// workers (internal/replic).
type Replication interface {
	// Status is what the workers know of every peer and chain.
	Status() []replic.ChainStatus
	// Sync runs one anti-entropy round now with peer (every mirror and
	// home when peer is "") and returns the status when it ended.
	Sync(ctx context.Context, peer string) ([]replic.ChainStatus, error)
	// Pushed tells the workers what an rpush from the peer account
	// account did to chain (of home origin, a server-id): the pusher's
	// hop count, the size held here afterwards, and the error answered
	// (ERR notfound: the chain is not mirrored here yet, so the workers
	// pull it from its home; ERR conflict: a fork).
	Pushed(account, origin, chain string, hops, size uint64, err error)
	// Hops is how far this server is from the home of a chain it holds
	// (0 for its own chains), for the answer to ihave.
	Hops(origin, chain string) uint64
}

// Server is the TCP server of one vserv node (DESIGN.md §2, §3).
type Server struct {
	cfg      Config
	log      *slog.Logger
	id       *secure.Identity
	pool     *secure.Pool
	accounts *auth.Store
	files    *files.Service
	ledger   *ledger.Ledger
	peers    *replic.Peers
	repl     Replication
	setup    *datadir.SetupToken
	cmds     *Table
	// keyRotations are the receipts `id` appends, loaded at start.
	keyRotations []string
	backoff      *auth.Backoff
	limits       *limiter
	budgets      budgets
	throttle     atomic.Bool // per-IP throttling on (the default)

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
}

// New returns a server on parts, every one of which must be set (Peers
// only for the replication commands).
func New(cfg Config, p Parts) (*Server, error) {
	if p.Identity == nil || p.Pool == nil || p.Accounts == nil || p.Files == nil || p.Ledger == nil || p.SetupToken == nil || p.Commands == nil {
		return nil, errors.New("server: a part is missing")
	}
	cfg.setDefaults()
	s := &Server{
		cfg: cfg, log: cfg.Logger, conns: map[*conn]struct{}{},
		id: p.Identity, pool: p.Pool, accounts: p.Accounts, files: p.Files, ledger: p.Ledger,
		setup: p.SetupToken, keyRotations: p.KeyRotations, cmds: p.Commands, peers: p.Peers, repl: p.Replication,
	}
	s.cmds.frozen = true
	s.budgets = newBudgets(cfg.ReadBudget, cfg.ReplyBudget)
	s.throttle.Store(true)
	s.backoff = auth.NewBackoff(cfg.Now)
	s.limits = newLimiter(cfg.MaxConns, cfg.MaxConnsIP, cfg.RateIP, cfg.Now)
	return s, nil
}

// ServerID returns the server-id of §2.4.
func (s *Server) ServerID() string { return s.id.ServerID }

// Serve accepts connections on ln until ctx is cancelled, then stops
// accepting, lets in-flight commands finish within the grace period, and
// closes every connection. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	// The refresh ends with Serve, however Serve ends (an accept error
	// returns with ctx still live).
	refreshCtx, endRefresh := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		s.refreshPool(refreshCtx)
	}()
	defer func() { endRefresh(); <-refreshed }()
	var handlers sync.WaitGroup
	var acceptErr error
	idle := make(chan net.Conn)     // hands a new connection to an idle handler goroutine
	stopIdle := make(chan struct{}) // closed when accepting ends: idle handlers exit
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acceptErr = fmt.Errorf("accept: %w", err)
			}
			break
		}
		select {
		case idle <- nc:
		default:
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				s.handleLoop(ctx, nc, idle, stopIdle)
			}()
		}
	}
	close(stopIdle)
	s.shutdown(&handlers)
	return acceptErr
}

// refreshPool replaces stale session keys every minute until ctx ends.
func (s *Server) refreshPool(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.pool.Refresh(); err != nil {
				s.log.Error("refresh session key pool", "err", err)
			}
		}
	}
}

// handlerIdle is how long a handler goroutine whose connection ended waits
// for the next one before it exits.
const handlerIdle = 2 * time.Second

// handleLoop serves nc, then, instead of exiting, waits a little for
// another connection (from idle) and serves that too. Reusing goroutines
// saves, per connection, the goroutine's creation and, above all, the
// growth of its stack from 2 KiB to what a handshake needs (CBOR decoding
// and ML-KEM decapsulation), which the runtime does by copying the stack
// several times: about 5% of the server's CPU in a handshake benchmark. An
// idle handler owns nothing but its stack, which the GC shrinks.
func (s *Server) handleLoop(ctx context.Context, nc net.Conn, idle <-chan net.Conn, stop <-chan struct{}) {
	var t *time.Timer
	for {
		s.handle(ctx, nc)
		if t == nil {
			t = time.NewTimer(handlerIdle)
		} else {
			t.Reset(handlerIdle)
		}
		select {
		case nc = <-idle:
		case <-t.C:
			return
		case <-stop:
			t.Stop()
			return
		}
	}
}

// shutdown wakes idle connections so they exit, gives busy ones the grace
// period to finish their command, then closes whatever is left.
func (s *Server) shutdown(handlers *sync.WaitGroup) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	deadline := time.After(s.cfg.Grace)
	poke := time.NewTicker(20 * time.Millisecond)
	defer poke.Stop()
	for {
		s.mu.Lock()
		for c := range s.conns {
			c.wakeIfIdle()
		}
		s.mu.Unlock()
		select {
		case <-done:
			return
		case <-deadline:
			s.mu.Lock()
			for c := range s.conns {
				c.nc.Close()
			}
			s.mu.Unlock()
			<-done
			return
		case <-poke.C:
		}
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) register(c *conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// endSessions closes every connection of this server logged in as name
// except keep, after a password change, a disable, a deletion or a 2FA
// reset, and returns how many. It only saves them a round trip: what ends
// the account's sessions, here and on any other front end on the store, is
// the generation check before every command (checkGeneration).
func (s *Server) endSessions(name string, keep *conn) int {
	home := auth.HomeName(name)
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c != keep && c.loggedInAs() == home {
			c.kill()
			n++
		}
	}
	return n
}

// newID returns n random bytes in lowercase hex.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
