package server

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// brokenListener fails every Accept with a permanent error.
type brokenListener struct {
	net.Listener
	err error
}

func (l brokenListener) Accept() (net.Conn, error) { return nil, l.err }

// Serve returns on an accept error with its context still live; nothing it
// started may outlive it, the session key pool's refresh included (it used
// to run until the context ended).
func TestServeReturningOnAnAcceptErrorLeavesNoGoroutineBehind(t *testing.T) {
	s := newTestServer(t, t.TempDir(), Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	broken := errors.New("socket broke")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // only after the check: Serve must not need it
	if err := s.Serve(ctx, brokenListener{ln, broken}); !errors.Is(err, broken) {
		t.Fatalf("Serve: %v, want the accept error", err)
	}
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		left = left[:0]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "server.(*Server).Serve") || strings.Contains(g, "server.(*Server).refreshPool") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("%d goroutines of Serve outlive it:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}
