// Package testenv starts real vserv processes for integration tests: it builds
// the binaries once per test binary, runs `vserv -p 0` on a temporary data
// directory, reads the port from the first stderr line, and hands out clients
// that talk to it over real TCP. Every integration test starts servers this
// one way.
//
// It also holds, written once, the test helpers that more than one test
// package needs (internal/server, internal/e2e, and the packages' unit
// tests): WantCode for ERR replies (codes.go), the ledger, file and
// second-factor environments (ledger.go, files.go, twofa.go), and the
// helpers that edit a stopped server's ledger.db (ledgerdb.go).
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// moduleRoot finds the repository root from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Main runs the tests of a package that starts servers and removes the
// binaries built for them afterwards. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// Bin returns the path of a built command (vserv, vcli, vbench), building all
// of them on first use. With -race tests, the binaries are built with -race too.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "vserv-testbin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + string(os.PathSeparator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/...")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

// Race reports whether the tests (and so the binaries Bin builds) run with
// the race detector, which multiplies memory use: bounds on a server's RSS
// depend on it.
func Race() bool { return raceEnabled }

// NoRaceExitSleep is the environment entry that stops -race binaries from
// sleeping a second at exit (GORACE's atexit_sleep_ms defaults to 1000),
// which every server stop and vcli run would otherwise pay. Start and
// RunVcli set it; tests that run binaries otherwise add it.
const NoRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// Server is a running vserv process.
type Server struct {
	t        testing.TB
	Addr     string // 127.0.0.1:PORT
	HTTPAddr string // 127.0.0.1:PORT of --http, only WithHTTP
	DataRoot string
	Args     []string
	cmd      *exec.Cmd
	stderr   *syncBuffer
	done     chan struct{}
	waitErr  error
}

// Option changes how a server starts.
type Option func(*startConfig)

type startConfig struct {
	dataRoot string
	args     []string
	realKDF  bool
	http     bool
}

// WithArgs adds command-line arguments.
func WithArgs(args ...string) Option {
	return func(c *startConfig) { c.args = append(c.args, args...) }
}

// WithDataRoot reuses a data directory (for restarts).
func WithDataRoot(dir string) Option {
	return func(c *startConfig) { c.dataRoot = dir }
}

// WithHTTP serves HTTP (the witness endpoint) on a free loopback port,
// Server.HTTPAddr. Without it a test server runs with --http off, so that
// servers started side by side never compete for the default port.
func WithHTTP() Option {
	return func(c *startConfig) { c.http = true }
}

// WithRealKDF keeps the production password hashing cost.
func WithRealKDF() Option {
	return func(c *startConfig) { c.realKDF = true }
}

// Start runs vserv on a free loopback port with a temporary data directory
// and stops it (SIGTERM) when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := startConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dataRoot == "" {
		cfg.dataRoot = filepath.Join(t.TempDir(), "data")
	}
	args := []string{"-p", "0", "-r", cfg.dataRoot}
	if !cfg.realKDF {
		args = append(args, "--test-kdf")
	}
	if cfg.http {
		args = append(args, "--http", "127.0.0.1:0")
	} else {
		args = append(args, "--http", "off")
	}
	args = append(args, cfg.args...)
	s := &Server{t: t, DataRoot: cfg.dataRoot, Args: args, stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(Bin(t, "vserv"), args...)
	s.cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), NoRaceExitSleep)
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("stderr pipe: %v", err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start vserv: %v", err)
	}
	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pipe)
		line, _ := br.ReadString('\n')
		s.stderr.Write([]byte(line))
		first <- line
		buf := make([]byte, 32<<10)
		for {
			n, err := br.Read(buf)
			s.stderr.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "listening on ")
		if !ok {
			s.Kill()
			t.Fatalf("vserv's first stderr line is %q, want \"listening on HOST:PORT\"; stderr:\n%s", line, s.Stderr())
		}
		s.Addr = addr
		s.waitReady()
		if cfg.http {
			s.HTTPAddr = s.waitHTTP()
		}
	case <-time.After(30 * time.Second):
		s.Kill()
		t.Fatalf("vserv did not start within 30 s; stderr:\n%s", s.Stderr())
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("vserv stderr:\n%s", s.Stderr())
		}
	})
	return s
}

// waitReady reads a sign-on: vserv prints "listening on" only once it will
// serve, and a sign-on proves it answers over real TCP.
func (s *Server) waitReady() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.Addr, client.Options{NoSession: true, NoKnownHosts: true})
	if err != nil {
		s.Kill()
		s.t.Fatalf("vserv is not answering: %v; stderr:\n%s", err, s.Stderr())
	}
	c.Close()
}

// httpRecord is the log record with the HTTP address, written right after
// "listening on".
var httpRecord = regexp.MustCompile(`msg="serving http" addr=(\S+)`)

// waitHTTP returns the address of the "serving http" log record.
func (s *Server) waitHTTP() string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := httpRecord.FindStringSubmatch(s.Stderr()); m != nil {
			return m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Kill()
	s.t.Fatalf("vserv did not log its HTTP address; stderr:\n%s", s.Stderr())
	return ""
}

// Stderr returns what the server wrote to stderr so far.
func (s *Server) Stderr() string { return s.stderr.String() }

// Stop sends SIGTERM (kills where signals cannot be sent) and waits up to
// 20 s, then kills. It returns the exit error.
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return s.waitErr
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		_ = s.cmd.Process.Kill() // Windows cannot send signals
	}
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return s.waitErr
}

// Kill sends SIGKILL and waits.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Pid returns the process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// SetupToken reads the setup token the server wrote at first start.
func (s *Server) SetupToken() string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataRoot, "setup-token"))
	if err != nil {
		s.t.Fatalf("read setup token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// Dial opens an encrypted session (trusting the key on first use, recording
// nothing) and closes it when the test ends.
func (s *Server) Dial(opts ...func(*client.Options)) *client.Client {
	s.t.Helper()
	o := client.Options{NoKnownHosts: true, Timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.Addr, o)
	if err != nil {
		s.t.Fatalf("dial %s: %v", s.Addr, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// DialAddr opens an encrypted session to addr (a server or a proxy in front
// of one) with opts, a 30 s timeout unless opts sets one, and closes it when
// the test ends. Unlike Dial it returns the error, for tests of refusals.
func DialAddr(t testing.TB, addr string, opts client.Options) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	c, err := client.Dial(ctx, addr, opts)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// WaitLog waits up to 10 s until the server's stderr contains s: the log
// reaches the test through a pipe, a little after the event.
func WaitLog(t testing.TB, srv *Server, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.Stderr(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the server log does not show %q; stderr:\n%s", s, srv.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DialClear connects without starting the encrypted session.
func (s *Server) DialClear() *client.Client {
	return s.Dial(func(o *client.Options) { o.NoSession = true })
}

// Admin is the name and password InitAdmin creates.
const (
	AdminName = "admin"
	AdminPass = "admin-password-1"
)

// InitAdmin creates the first admin through `uini`.
func (s *Server) InitAdmin() {
	s.t.Helper()
	c := s.Dial()
	if _, err := c.InitAdmin(context.Background(), AdminName, AdminPass, s.SetupToken()); err != nil {
		s.t.Fatalf("uini: %v", err)
	}
	c.Close()
}

// Login opens a session logged in as name.
func (s *Server) Login(name, pass string) *client.Client {
	s.t.Helper()
	c := s.Dial()
	l, err := c.Login(context.Background(), name, pass)
	if err != nil {
		s.t.Fatalf("login %s: %v", name, err)
	}
	if l.Needs2FA {
		s.t.Fatalf("login %s: the server asks for a second factor; use LoginState", name)
	}
	return c
}

// AdminClient creates the first admin if needed and logs in as it.
func (s *Server) AdminClient() *client.Client {
	s.t.Helper()
	if _, err := os.Stat(filepath.Join(s.DataRoot, "setup-token")); err == nil {
		s.InitAdmin()
	}
	return s.Login(AdminName, AdminPass)
}

// AddUser creates an account through an admin session.
func (s *Server) AddUser(name, pass string, admin bool) {
	s.t.Helper()
	c := s.AdminClient()
	defer c.Close()
	if _, err := c.AddUser(context.Background(), name, pass, admin); err != nil {
		s.t.Fatalf("add user %s: %v", name, err)
	}
}

// Vcli runs vcli against this server with args (the -n/-p options are added)
// and returns stdout, stderr and the exit status.
func (s *Server) Vcli(stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	host, port, _ := strings.Cut(s.Addr, ":")
	return RunVcli(s.t, stdin, env, append([]string{"-n", host, "-p", port}, args...)...)
}

// RunVcli runs the vcli binary with args and returns stdout, stderr and the
// exit status. HOME points to a fresh directory unless env sets it.
func RunVcli(t testing.TB, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(Bin(t, "vcli"), args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "VSERV_PASSWORD=", "VSERV_OTP=", NoRaceExitSleep), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run vcli: %v", err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// RunCmd runs a binary (see Bin) with args and returns stdout, stderr and
// the exit status.
func RunCmd(t testing.TB, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), NoRaceExitSleep)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %s: %v", bin, err)
		}
		return out.String(), errb.String(), ee.ExitCode()
	}
	return out.String(), errb.String(), 0
}

// WantExit fails unless a binary exited with want, showing its output.
func WantExit(t testing.TB, what string, code, want int, stdout, stderr string) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, code, want, stdout, stderr)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
