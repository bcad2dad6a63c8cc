// Package web is vserv's HTTP server (DESIGN §7.3): one net/http server on
// the --http listener that node.Run runs beside the TCP server. Today it
// serves the C2SP tlog-witness endpoint, POST /witness/add-checkpoint
// (docs/protocol.md "Witness endpoint", handled by internal/replic), and
// the Prometheus metrics at GET /metrics (internal/metrics); the web pages,
// JSON API and tiles get their routes here later.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// WitnessPath is where the witness's add-checkpoint is served: the
// submission prefix of this server's witness is http://HOST:PORT/witness.
const WitnessPath = "/witness/add-checkpoint"

// MetricsPath is where the Prometheus metrics are served.
const MetricsPath = "/metrics"

// shutdownGrace is how long Serve lets requests in flight finish after its
// context ends.
const shutdownGrace = 10 * time.Second

// Config is what the HTTP server serves.
type Config struct {
	// Witness handles WitnessPath; nil leaves it unserved (404).
	Witness http.Handler
	// Metrics handles GET MetricsPath (internal/metrics); nil leaves it
	// unserved.
	Metrics http.Handler
	Logger  *slog.Logger
}

// Server is the HTTP server.
type Server struct {
	srv *http.Server
	log *slog.Logger
}

// New returns the HTTP server of cfg. Every path it does not serve is 404.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	if cfg.Witness != nil {
		// Registered without a method: the handler answers other methods
		// with its own 405, so that every answer of the endpoint is ours.
		mux.Handle(WitnessPath, cfg.Witness)
	}
	if cfg.Metrics != nil {
		mux.Handle("GET "+MetricsPath, cfg.Metrics)
	}
	return &Server{
		log: cfg.Logger,
		srv: &http.Server{
			Handler: mux,
			// Bounds for a listener that may face the Internet: a client
			// cannot hold a connection open by sending slowly.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
	}
}

// Serve serves ln until ctx ends, then shuts down gracefully (requests in
// flight get shutdownGrace to finish) and returns nil. It returns an error
// when serving fails. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Requests in flight at shutdown finish (their store transactions too)
	// rather than see their context cancelled.
	base := context.WithoutCancel(ctx)
	s.srv.BaseContext = func(net.Listener) context.Context { return base }
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	return nil
}

// Handler is the server's routes, for tests that serve them on a listener
// of their own.
func (s *Server) Handler() http.Handler { return s.srv.Handler }
