package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vserv/vserv/client"
)

// benchEnv is the server under test.
type benchEnv struct {
	opts    options
	addr    string
	cmd     *exec.Cmd // nil when measuring a running server
	dataDir string
	waited  chan struct{} // closed when the started server has exited
	filled  *filledLedger // set once the ledger scenarios' chain is loaded

	adminOnce sync.Once // benchLogin creates the first admin once
	adminErr  error
	// loginMu makes benchLogin's logins one at a time: the server refuses a
	// login step while another one of the same address is in flight.
	loginMu sync.Mutex
}

// newEnv starts a fresh server (one per scenario, so that one scenario's
// state does not skew the next) or points at a running one.
func newEnv(ctx context.Context, o options, extra ...string) (*benchEnv, error) {
	env := &benchEnv{opts: o}
	if o.vservPath == "" {
		env.addr = net.JoinHostPort(o.host, strconv.Itoa(o.port))
		return env, nil
	}
	dir, err := os.MkdirTemp("", "vbench-")
	if err != nil {
		return nil, err
	}
	env.dataDir = dir
	// Per-IP throttling is lifted: every benchmark client shares one loopback
	// address (DESIGN.md §8). The file quota is lifted for the files scenario.
	args := append([]string{"-p", "0", "-r", filepath.Join(dir, "data"), "-q",
		"--rate-ip", "1000000", "--max-conns-ip", "100000", "--max-conns", "100000", "--test-kdf",
		"--quota-bytes", "0"}, extra...)
	env.cmd = exec.CommandContext(ctx, o.vservPath, args...)
	stderr, err := env.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := env.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.vservPath, err)
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	addr, found := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !found {
		env.close()
		return nil, fmt.Errorf("vserv did not report its address (first line %q)", line)
	}
	env.addr = addr
	go func() { // keep draining so the server never blocks on a full pipe
		buf := make([]byte, 4096)
		for {
			if _, err := stderr.Read(buf); err != nil {
				return
			}
		}
	}()
	// Wait until the server answers (the listener opens before the data directory).
	c, err := client.Dial(ctx, env.addr, client.Options{NoSession: true, NoKnownHosts: true})
	if err != nil {
		env.close()
		return nil, err
	}
	c.Close()
	return env, nil
}

func (e *benchEnv) clientOptions() client.Options {
	return client.Options{NoKnownHosts: e.opts.serverKey == "", ServerKey: e.opts.serverKey, Timeout: 30 * time.Second}
}

func (e *benchEnv) dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, e.addr, e.clientOptions())
}

func (e *benchEnv) close() {
	e.stopServer()
	if e.dataDir != "" {
		os.RemoveAll(e.dataDir)
	}
}

// stopServer stops the server vbench started (SIGTERM, then SIGKILL after
// 15 s), keeping its data directory. It may be called more than once.
func (e *benchEnv) stopServer() error {
	if e.cmd == nil || e.cmd.Process == nil {
		return nil
	}
	if e.waited == nil {
		e.waited = make(chan struct{})
		go func() { e.cmd.Wait(); close(e.waited) }()
	}
	select {
	case <-e.waited:
		return nil
	default:
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		// Windows cannot send signals to another process: kill it.
		if kerr := e.cmd.Process.Kill(); kerr != nil {
			return fmt.Errorf("stop the server: %w", errors.Join(err, kerr))
		}
	}
	select {
	case <-e.waited:
	case <-time.After(15 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.waited
	}
	return nil
}

// pid returns the server's process id, or 0 for a running server we did not start.
func (e *benchEnv) pid() int {
	if e.cmd == nil || e.cmd.Process == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// cpuSeconds reads the server's user+system CPU time from /proc.
func (e *benchEnv) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.pid()))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// rssMB reads the server's resident set size.
func (e *benchEnv) rssMB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", e.pid())
}
