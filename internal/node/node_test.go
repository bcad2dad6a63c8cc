package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/store/bolt"
)

func testConfig(dataroot string) Config {
	return Config{DataRoot: dataroot, Argon: auth.TestArgon2}
}

// leftovers waits up to 5 s for no goroutine to have any of the functions
// in its stack, and returns the stacks of those that still do.
func leftovers(funcs ...string) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var found []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, f := range funcs {
				if strings.Contains(g, f) {
					found = append(found, g)
					break
				}
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openFiles lists the files under dir this process holds open (Linux only:
// nil elsewhere).
func openFiles(t *testing.T, dir string) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && (target == dir || strings.HasPrefix(target, dir+string(filepath.Separator))) {
			out = append(out, target)
		}
	}
	return out
}

// The goroutines and files a node holds while open: the ledger's committer
// and heads writer, the database and the file service's directory handles.
var nodeGoroutines = []string{"ledger.(*Ledger).commitLoop", "ledger.(*Ledger).headsWriter", "server.(*Server)"}

func TestOpenFailingAtTheSetupTokenClosesEverythingOpenedBefore(t *testing.T) {
	dataroot := t.TempDir()
	ctx := context.Background()
	n, err := Open(ctx, testConfig(dataroot))
	if err != nil {
		t.Fatalf("first open: %v", err)
	}
	if _, err := n.parts.Accounts.Add(ctx, "admin", "admin-password-1", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// With an account, Open removes a stale setup token; a non-empty
	// directory in its place cannot be removed (not even by root), so the
	// last step of Open fails after every other part was opened.
	token := datadir.New(dataroot).SetupTokenPath()
	if err := os.Remove(token); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(token, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	if n, err := Open(ctx, testConfig(dataroot)); err == nil {
		n.Close()
		t.Fatal("Open with an unremovable setup token succeeded, want an error")
	} else if !strings.Contains(err.Error(), "remove stale setup token") {
		t.Fatalf("Open: %v, want the setup token's error", err)
	}
	if open := openFiles(t, dataroot); len(open) > 0 {
		t.Errorf("after a failed Open the process still holds %v", open)
	}
	if left := leftovers(nodeGoroutines...); len(left) > 0 {
		t.Errorf("after a failed Open %d goroutines of its parts are still running:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	// The directory is free at once: no part holds the database.
	if err := os.RemoveAll(token); err != nil {
		t.Fatal(err)
	}
	n, err = Open(ctx, testConfig(dataroot))
	if err != nil {
		t.Fatalf("Open right after the failed one: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenOfADirectoryInUseIsErrDataRootInUse(t *testing.T) {
	dataroot := t.TempDir()
	n, err := Open(context.Background(), testConfig(dataroot))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	second, err := Open(context.Background(), testConfig(dataroot))
	if err == nil {
		second.Close()
		t.Fatal("second Open of a directory in use succeeded")
	}
	if !errors.Is(err, bolt.ErrDataRootInUse) {
		t.Fatalf("second Open: %v, want bolt.ErrDataRootInUse", err)
	}
}

// failingListener fails every Accept with a permanent error, as a closed or
// broken socket does.
type failingListener struct {
	net.Listener
	err error
}

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }

func TestRunReturnsTheFailingPartsErrorAndStopsEveryPart(t *testing.T) {
	n, err := Open(context.Background(), testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	broken := errors.New("socket broke")
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background(), failingListener{ln, broken}) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its TCP server failed")
	}
	if !errors.Is(err, broken) || !strings.HasPrefix(err.Error(), "accept: ") {
		t.Fatalf("Run: %v, want the accept error", err)
	}
	if left := leftovers("server.(*Server)"); len(left) > 0 {
		t.Errorf("after Run returned %d goroutines of the TCP server are still running:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

func TestRunServesUntilTheContextEndsThenCloseFreesTheDirectory(t *testing.T) {
	dataroot := t.TempDir()
	n, err := Open(context.Background(), testConfig(dataroot))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, ln) }()

	c, err := client.Dial(ctx, ln.Addr().String(), client.Options{NoKnownHosts: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("dial the node: %v", err)
	}
	h, err := c.Hello(ctx)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	if h.ServerID != n.ServerID() {
		t.Errorf("hello names server %s, want %s", h.ServerID, n.ServerID())
	}
	c.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after its context ended: %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if left := leftovers(nodeGoroutines...); len(left) > 0 {
		t.Errorf("after Close %d goroutines are still running:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	if open := openFiles(t, dataroot); len(open) > 0 {
		t.Errorf("after Close the process still holds %v", open)
	}
	again, err := Open(context.Background(), testConfig(dataroot))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if again.ServerID() != h.ServerID {
		t.Errorf("reopened as server %s, want %s", again.ServerID(), h.ServerID)
	}
	again.Close()
}

// TestRunServesTheWitnessOnTheHTTPListenerAndStopsWithTheContext: with
// Config.HTTP, Run serves the witness endpoint there as one more part, and
// ending the context stops it and closes the listener.
func TestRunServesTheWitnessOnTheHTTPListenerAndStopsWithTheContext(t *testing.T) {
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.HTTP = hl
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, ln) }()

	url := "http://" + hl.Addr().String() + "/witness/add-checkpoint"
	resp, err := http.Post(url, "text/plain", strings.NewReader("old 0\n\nlog.example/x\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— log.example/x AAAA\n"))
	if err != nil {
		t.Fatalf("POST to the node's HTTP listener: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || string(body) != "unknown log origin\n" {
		t.Errorf("POST for a log not witnessed: %d %q, want 404 \"unknown log origin\\n\"", resp.StatusCode, body)
	}
	if !strings.HasPrefix(n.WitnessVerifierKey(), "vserv/"+n.ServerID()+"+") {
		t.Errorf("witness vkey %q does not name vserv/%s", n.WitnessVerifierKey(), n.ServerID())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after its context ended: %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", hl.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("the HTTP listener still accepts after Run returned")
	}
	if left := leftovers("net/http.(*Server).Serve"); len(left) > 0 {
		t.Errorf("after Run returned %d HTTP server goroutines are still running:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}
