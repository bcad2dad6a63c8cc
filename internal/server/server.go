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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/wire"
)

// Config is what the server needs to start. Zero values mean the defaults of
// DESIGN.md §7.1.
type Config struct {
	DataRoot    string
	Production  bool
	Site        string // host name shown by `id`
	Version     string
	MaxConns    int     // total connections (4096)
	MaxConnsIP  int     // connections per IP (64)
	RateIP      float64 // new connections + handshakes per second per IP (20)
	MaxMsg      int     // largest message (16 MiB)
	IdleTimeout time.Duration
	PoolSize    int           // session keys in the pool (8)
	PoolLife    time.Duration // lifetime of a pool key (24 h)
	Argon       auth.Argon2Params
	Grace       time.Duration // how long in-flight commands may run at shutdown (10 s)
	Quotas      files.Quotas  // per-account and global limits of the file service (0 = none)
	ReadBudget  int64         // bytes held in partly received requests, server-wide (DefaultReadBudget)
	ReplyBudget int64         // bytes held in big replies being built or sent, server-wide (DefaultReplyBudget)
	Logger      *slog.Logger
	Now         func() time.Time
	// Commands is the command table (cmdtable.Default: every command); nil
	// is NewTable, the core's commands alone. New freezes it.
	Commands *Table
}

func (c *Config) setDefaults() {
	if c.DataRoot == "" {
		c.DataRoot = "vserv-data"
	}
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
	if c.PoolSize <= 0 {
		c.PoolSize = 8
	}
	if c.PoolLife <= 0 {
		c.PoolLife = 24 * time.Hour
	}
	if c.Argon.Time == 0 {
		c.Argon = auth.DefaultArgon2
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
	if c.Commands == nil {
		c.Commands = NewTable()
	}
	if c.Site == "" {
		c.Site, _ = os.Hostname()
	}
}

// Server is one vserv instance bound to one data directory.
type Server struct {
	cfg      Config
	log      *slog.Logger
	id       *secure.Identity
	pool     *secure.Pool
	db       *bbolt.DB
	accounts *auth.Store
	files    *files.Service
	ledger   *ledger.Ledger
	cmds     *Table
	// keyRotations are the receipts `id` appends, loaded at start.
	keyRotations []string
	backoff      *auth.Backoff
	limits       *limiter
	budgets      budgets
	throttle     atomic.Bool // per-IP throttling on (the default)

	setupMu sync.Mutex // guards the setup-token file

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
}

// New opens (creating on first start) the data directory and everything in it.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, cmds: cfg.Commands, conns: map[*conn]struct{}{}}
	s.cmds.frozen = true
	s.budgets = newBudgets(cfg.ReadBudget, cfg.ReplyBudget)
	s.throttle.Store(true)

	id, created, err := secure.LoadOrCreateIdentity(cfg.DataRoot)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.id = id
	if created {
		s.log.Info("created server identity", "server_id", id.ServerID, "fingerprint", secure.Fingerprint(id.Public()))
	}
	// The database before anything that writes: its lock is what keeps a
	// second vserv off a data directory in use, so that one never touches
	// the pool keys of the other.
	if s.db, err = OpenDB(cfg.DataRoot, time.Second); err != nil {
		return nil, err
	}
	if s.pool, err = secure.OpenPool(cfg.DataRoot, id, cfg.PoolSize, cfg.PoolLife, cfg.Now); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("session key pool: %w", err)
	}
	secret, err := auth.LoadOrCreateSecretKey(cfg.DataRoot)
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("secret key: %w", err)
	}
	s.accounts, err = auth.New(s.db, auth.Options{
		Argon: cfg.Argon, Production: cfg.Production, SecretKey: secret,
		ServerID: id.ServerID, Now: cfg.Now, Logger: s.log,
	})
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if s.files, err = files.New(filepath.Join(cfg.DataRoot, "files"), cfg.Quotas, s.log); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("file service: %w", err)
	}
	if s.ledger, err = ledger.Open(s.db, ledger.Config{
		ServerID: id.ServerID, Signer: id.Key, Now: cfg.Now, Logger: s.log,
		// DESIGN.md §4.4: recompute every root from the entries at start, so
		// that an entry deleted or altered on disk makes its chain read-only
		// before anything new is signed over it (about 1 s per million entries).
		FullCheckOnOpen: true,
		HeadsFile:       filepath.Join(cfg.DataRoot, ledger.HeadsFileName),
	}); err != nil {
		s.files.Close()
		s.db.Close()
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if err := s.ledger.EnsureDefaultChains(context.Background()); err != nil {
		s.ledger.Close()
		s.files.Close()
		s.db.Close()
		return nil, fmt.Errorf("create default chains: %w", err)
	}
	s.keyRotations = s.loadRotationReceipts(context.Background())
	s.backoff = auth.NewBackoff(cfg.Now)
	s.limits = newLimiter(cfg.MaxConns, cfg.MaxConnsIP, cfg.RateIP, cfg.Now)
	if err := s.writeSetupTokenIfNeeded(); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// ErrDataRootInUse is what OpenDB returns, wrapped, when another process
// holds the database.
var ErrDataRootInUse = errors.New("the data directory is in use by another vserv")

// OpenDB opens <dataroot>/ledger.db, giving up after timeout if another
// process holds it (bbolt would otherwise wait forever on the flock).
func OpenDB(dataroot string, timeout time.Duration) (*bbolt.DB, error) {
	path := filepath.Join(dataroot, "ledger.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, FreelistType: bbolt.FreelistMapType, NoFreelistSync: true})
	if errors.Is(err, berrors.ErrTimeout) {
		who := ""
		if pid := lockHolder(path); pid > 0 {
			who = fmt.Sprintf(" (pid %d?)", pid)
		}
		return nil, fmt.Errorf("open %s: %w%s: stop it, or work on a copy", path, ErrDataRootInUse, who)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// ServerID returns the server-id of §2.4.
func (s *Server) ServerID() string { return s.id.ServerID }

// Serve accepts connections on ln until ctx is cancelled, then stops
// accepting, lets in-flight commands finish within the grace period, and
// closes every connection. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	refresh := time.NewTicker(time.Minute)
	defer refresh.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-refresh.C:
				if err := s.pool.Refresh(); err != nil {
					s.log.Error("refresh session key pool", "err", err)
				}
			}
		}
	}()
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

// Close releases the data directory. Call it after Serve has returned.
func (s *Server) Close() error {
	// The committer drains queued appends before the database closes.
	return errors.Join(s.ledger.Close(), s.files.Close(), s.db.Close())
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

// endSessions closes every connection logged in as name except keep: what a
// password change, a disable, a deletion or a 2FA reset must do.
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
