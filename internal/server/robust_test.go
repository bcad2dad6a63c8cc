package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Robustness of DESIGN.md §2.1, §2.2 and §7.1 against a real server: many
// connections, idle and slow clients, frames and messages that break the
// limits, malformed CBOR, connection caps and a graceful stop. These are the
// pyvserv lessons "40 silent connections froze the server" and "a 2-byte
// length hung the client".

func TestThousandConcurrentSessions(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--max-conns-ip", "2000", "--rate-ip", "100000"))
	const n, workers = 1000, 24
	clients := make([]*client.Client, n)
	errs := make([]error, n)
	run := func(job func(i int)) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					job(i)
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	ctx := context.Background()
	// Open 1,000 encrypted sessions and keep every one of them open.
	run(func(i int) {
		c, err := client.Dial(ctx, srv.Addr, client.Options{NoKnownHosts: true, Timeout: 60 * time.Second})
		if err != nil {
			errs[i] = fmt.Errorf("dial: %w", err)
			return
		}
		clients[i] = c
		if _, err := c.Hello(ctx); err != nil {
			errs[i] = fmt.Errorf("hello: %w", err)
		}
	})
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("session %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d sessions failed", failed, n)
	}
	// All 1,000 are open at once: each answers again.
	run(func(i int) {
		if _, err := clients[i].Hello(ctx); err != nil {
			errs[i] = err
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("session %d, second hello with all %d open: %v", i, n, err)
		}
	}
}

func TestIdleConnectionsAreDroppedAtTheTimeout(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--idle-timeout", "5", "--rate-ip", "1000"))
	const lo, hi = 4500 * time.Millisecond, 8 * time.Second
	inWindow := func(t *testing.T, what string, d time.Duration) {
		t.Helper()
		if d < lo || d > hi {
			t.Errorf("%s: closed after %v, want between %v and %v", what, d.Round(time.Millisecond), lo, hi)
		}
	}
	t.Run("silent after connecting", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		r := dialRaw(t, srv)
		r.expectClosed(hi+2*time.Second, "silent connection")
		inWindow(t, "silent connection", time.Since(start))
	})
	t.Run("half a frame", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, srv)
		start := time.Now()
		r.write([]byte{0, 0, 0, 100, 0, 0x81})
		r.expectClosed(hi+2*time.Second, "half a frame")
		inWindow(t, "half a frame", time.Since(start))
	})
	t.Run("a byte a second", func(t *testing.T) {
		t.Parallel()
		// The timeout bounds the whole message, not the gap between bytes.
		r := dialRaw(t, srv)
		start := time.Now()
		msg := frame(0, mustCBOR(t, []any{"hello", strings.Repeat("x", 40)}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range msg {
				r.nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := r.nc.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
		r.expectClosed(hi+2*time.Second, "trickling client")
		inWindow(t, "trickling client", time.Since(start))
		<-done
	})
	t.Run("encrypted session", func(t *testing.T) {
		t.Parallel()
		c := srv.Dial()
		start := time.Now()
		expectClosed(t, c.Conn().NetConn(), hi+2*time.Second, "idle session")
		inWindow(t, "idle session", time.Since(start))
	})
	t.Run("active session stays", func(t *testing.T) {
		t.Parallel()
		c := srv.Dial()
		id := helloID(t, c)
		for range 3 {
			time.Sleep(3 * time.Second)
			expectInSync(t, c, id, "3 s of quiet")
		}
	})
	t.Run("tout lengthens it", func(t *testing.T) {
		t.Parallel()
		c := srv.Dial()
		if got, err := c.Timeout(context.Background(), 20); err != nil || got != 20 {
			t.Fatalf("tout 20: %d, %v", got, err)
		}
		id := helloID(t, c)
		time.Sleep(hi + time.Second)
		expectInSync(t, c, id, "9 s of quiet after tout 20")
	})
}

// vmRSS reads a process's resident set size.
func vmRSS(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmRSS") }

// vmHWM reads a process's peak resident set size.
func vmHWM(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmHWM") }

// procStatus reads a size in bytes from /proc/<pid>/status.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s line %q: %v", field, line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestFramingLimits(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--max-msg", "100000", "--rate-ip", "1000"))
	ctx := context.Background()

	t.Run("frame lengths out of range close before any body", func(t *testing.T) {
		for _, hdr := range []uint32{0xFFFFFFFF, 1 << 31, 65536, 0} {
			var conns []*rawConn
			for range 10 {
				r := dialRaw(t, srv)
				r.write(binary.BigEndian.AppendUint32(nil, hdr))
				conns = append(conns, r)
			}
			for _, r := range conns {
				r.expectClosed(3*time.Second, fmt.Sprintf("frame length %#x", hdr))
			}
		}
		rss := vmRSS(t, srv.Pid())
		t.Logf("server RSS after 40 oversize frame headers: %d MB", rss>>20)
		if rss > 100<<20 {
			t.Errorf("server RSS %d MB after 40 oversize frame headers, want below 100 MB", rss>>20)
		}
	})

	t.Run("largest frame before the session is ERR limit", func(t *testing.T) {
		r := dialRaw(t, srv)
		// A clear-text frame of exactly 65535 bytes: flag + CBOR, over
		// the 4 KiB a request before the session may hold.
		msg := mustCBOR(t, []any{"hello", make([]byte, 65534-10)})
		if len(msg) != 65534 {
			t.Fatalf("test message is %d bytes, want 65534", len(msg))
		}
		r.write(frame(0, msg))
		r.wantLimitThenClose("hello with an argument in a 65535-byte frame")
	})

	for _, tc := range []struct {
		name  string
		bytes func() []byte
	}{
		{"fragment flag 0x02", func() []byte { return frame(0x02, mustCBOR(t, []any{"hello"})) }},
		{"fragment flag 0xff", func() []byte { return frame(0xff, mustCBOR(t, []any{"hello"})) }},
		{"empty non-final fragment", func() []byte { return frame(0x01, nil) }},
		{"empty non-final fragment after data", func() []byte {
			return append(frame(0x01, []byte{0x81}), frame(0x01, nil)...)
		}},
		{"1025 fragments", func() []byte {
			var b []byte
			for range 1024 {
				b = append(b, frame(0x01, []byte{0x80})...)
			}
			return append(b, frame(0x00, []byte{0x80})...)
		}},
		{"message over --max-msg", func() []byte {
			msg := mustCBOR(t, []any{"hello", make([]byte, 100001)})
			var b []byte
			for len(msg) > 60000 {
				b = append(b, frame(0x01, msg[:60000])...)
				msg = msg[60000:]
			}
			return append(b, frame(0x00, msg)...)
		}},
	} {
		t.Run(tc.name+" closes", func(t *testing.T) {
			r := dialRaw(t, srv)
			r.write(tc.bytes())
			// The server may answer nothing: the next thing it does is close.
			r.expectClosed(5*time.Second, tc.name)
		})
	}

	t.Run("1024 fragments are one message", func(t *testing.T) {
		r := dialRaw(t, srv)
		msg := mustCBOR(t, []any{"help", strings.Repeat("h", 2000)})
		var b []byte
		for i := range 1023 {
			b = append(b, frame(0x01, msg[i:i+1])...)
		}
		b = append(b, frame(0x00, msg[1023:])...)
		r.write(b)
		r.wantERR(wire.CodeNotFound, "help of a 2000-character name in 1024 fragments")
		r.hello("after 1024 fragments")
	})

	t.Run("an empty last fragment ends a message", func(t *testing.T) {
		r := dialRaw(t, srv)
		msg := mustCBOR(t, []any{"help", "nosuch"})
		r.write(append(frame(0x01, msg), frame(0x00, nil)...))
		r.wantERR(wire.CodeNotFound, "help nosuch ended by an empty fragment")
		r.write(frame(0x00, nil)) // an empty message is malformed CBOR
		r.wantERR(wire.CodeProto, "empty message")
		r.hello("after the empty message")
	})

	t.Run("message just under --max-msg", func(t *testing.T) {
		c := srv.AdminClient() // without a login a request is at most 64 KiB
		id := helloID(t, c)
		_, err := c.Call(ctx, "hello", make([]byte, 99000))
		testenv.WantCode(t, err, wire.CodeProto, "hello with a 99000-byte argument")
		expectInSync(t, c, id, "a 99000-byte request in two encrypted fragments")
		// Refused at the frame header that takes it over: ERR limit (or,
		// if the close overtakes it, a reset), and the connection closes.
		_, err = c.Call(ctx, "hello", make([]byte, 100001))
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeLimit {
			_, err = c.Hello(ctx)
		}
		wantConnError(t, err, "hello with a 100001-byte argument")
	})
}

func TestLargeMessagesBothWays(t *testing.T) {
	t.Parallel()
	// 700 accounts are 700 synced transactions: on tmpfs, when there is one,
	// they cost nothing, and the test is about messages, not disks.
	opts := []testenv.Option{}
	if dir, err := os.MkdirTemp("/dev/shm", "vserv-test-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
		opts = append(opts, testenv.WithDataRoot(filepath.Join(dir, "data")))
	}
	srv := testenv.Start(t, opts...)
	ctx := context.Background()
	admin := srv.AdminClient()
	id := helloID(t, admin)

	// Client → server: a 5 MiB request travels in 81 fragments; hello
	// takes no argument, so it is read whole and refused, and the
	// connection stays in step.
	_, err := admin.Call(ctx, "hello", make([]byte, 5<<20))
	testenv.WantCode(t, err, wire.CodeProto, "hello with a 5 MiB argument")
	expectInSync(t, admin, id, "a 5 MiB request")

	// Server → client: ulist of 700 accounts with 64-character names is
	// over 65519 bytes, so the reply comes in several fragments.
	const accounts = 700
	want := map[string]bool{testenv.AdminName: true}
	var names []string
	for i := range accounts {
		name := fmt.Sprintf("u%03d%s", i, strings.Repeat("x", 60))
		want[name] = true
		names = append(names, name)
	}
	// Four admin sessions add them in parallel.
	var wg sync.WaitGroup
	errs := make(chan error, accounts)
	for w := range 4 {
		adder := srv.Login(testenv.AdminName, testenv.AdminPass)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < accounts; i += 4 {
				if _, err := adder.AddUser(ctx, names[i], "pw-"+names[i], false); err != nil {
					errs <- fmt.Errorf("uadd %s: %w", names[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	vals, err := admin.Call(ctx, "ulist")
	if err != nil {
		t.Fatalf("ulist: %v", err)
	}
	if size := len(vals[0]); size <= 65519 {
		t.Fatalf("ulist reply is %d bytes; the test needs more than one frame's worth", size)
	}
	var users []client.UserInfo
	if err := wire.Unmarshal(vals[0], &users); err != nil {
		t.Fatalf("ulist reply: %v", err)
	}
	if len(users) != len(want) {
		t.Fatalf("ulist lists %d accounts, want %d", len(users), len(want))
	}
	for _, u := range users {
		if !want[u.Name] {
			t.Fatalf("ulist lists %q, which was never added", u.Name)
		}
	}
	expectInSync(t, admin, id, "a multi-fragment ulist reply")
}

func TestMalformedMessagesGetERRProtoAndKeepTheConnection(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	deep := bytes.Repeat([]byte{0x81}, 40)
	deep = append(deep, 0x80)
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"not CBOR", []byte("hello")},
		{"truncated array", []byte{0x82, 0x65, 'h', 'e', 'l', 'l', 'o'}},
		{"trailing bytes", append(mustCBOR(t, []any{"hello"}), 0xf6)},
		{"two messages in one", append(mustCBOR(t, []any{"hello"}), mustCBOR(t, []any{"hello"})...)},
		{"not an array", mustCBOR(t, map[string]any{"cmd": "hello"})},
		{"a text string", mustCBOR(t, "hello")},
		{"array headed by a number", mustCBOR(t, []any{uint64(1), "hello"})},
		{"array headed by bytes", mustCBOR(t, []any{[]byte("hello")})},
		{"array headed by null", []byte{0x81, 0xf6}},
		{"empty array", []byte{0x80}},
		{"indefinite-length array", []byte{0x9f, 0x65, 'h', 'e', 'l', 'l', 'o', 0xff}},
		{"tagged command", []byte{0x81, 0xc0, 0x65, 'h', 'e', 'l', 'l', 'o'}},
		{"nesting deeper than 32", append([]byte{0x82, 0x65, 'h', 'e', 'l', 'l', 'o'}, deep...)},
		{"array claiming 4 billion elements", []byte{0x9a, 0xff, 0xff, 0xff, 0xff, 0x65, 'h', 'e', 'l', 'l', 'o'}},
		{"text claiming 2^63 bytes", []byte{0x82, 0x65, 'h', 'e', 'l', 'l', 'o', 0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"duplicate map keys", []byte{0x82, 0x65, 'h', 'e', 'l', 'l', 'o', 0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}},
		{"undefined", []byte{0x82, 0x65, 'h', 'e', 'l', 'l', 'o', 0xf7}},
		{"command name not UTF-8", append(cborHead(4, 1), cborText([]byte{'h', 0xff})...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"clear", "encrypted"} {
				var c *client.Client
				if mode == "clear" {
					c = srv.DialClear()
				} else {
					c = srv.Dial()
				}
				id := helloID(t, c)
				_, err := c.CallRaw(context.Background(), tc.msg)
				testenv.WantCode(t, err, wire.CodeProto, mode+" "+tc.name)
				expectInSync(t, c, id, mode+" "+tc.name)
				c.Close()
			}
		})
	}
}

func TestConnectionCapsAnswerERRLimitInsteadOfTheSignOn(t *testing.T) {
	t.Parallel()
	t.Run("total", func(t *testing.T) {
		t.Parallel()
		srv := testenv.Start(t, testenv.WithArgs("--max-conns", "3"))
		var held []net.Conn
		for range 3 {
			held = append(held, holdConn(t, srv.Addr, nil))
		}
		expectLimit(t, srv.Addr, nil, "a 4th connection")
		// A freed slot is usable again.
		held[0].Close()
		holdConn(t, srv.Addr, nil).Close()
	})
	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		srv := testenv.Start(t, testenv.WithArgs("--max-conns-ip", "2"))
		admin := srv.AdminClient()
		holdConn(t, srv.Addr, nil)
		expectLimit(t, srv.Addr, nil, "a 3rd connection from 127.0.0.1")
		other := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		holdConn(t, srv.Addr, other).Close()
		// throt off lifts the per-address cap; throt on restores it.
		if got, err := admin.Throttle(context.Background(), "off"); err != nil || got != "off" {
			t.Fatalf("throt off: %q, %v", got, err)
		}
		third := holdConn(t, srv.Addr, nil)
		if got, err := admin.Throttle(context.Background(), "on"); err != nil || got != "on" {
			t.Fatalf("throt on: %q, %v", got, err)
		}
		third.Close()
		expectLimit(t, srv.Addr, nil, "a 4th connection from 127.0.0.1 after throt on")
	})
}

// holdConn opens a connection that got the sign-on and keeps it until the
// test ends. A slot freed just before may take a moment to be released, so
// an ERR limit is retried for a few seconds.
func holdConn(t *testing.T, addr string, d *net.Dialer) net.Conn {
	t.Helper()
	if d == nil {
		d = &net.Dialer{}
	}
	var nc net.Conn
	waitUntil(t, 5*time.Second, "a connection within the cap", func() error {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		msg, err := wire.NewConn(c, 0).ReadMessage(time.Now().Add(10 * time.Second))
		if err == nil {
			var resp *wire.Response
			if resp, err = wire.DecodeResponse(msg); err == nil && resp.Err != nil {
				err = resp.Err
			}
		}
		if err != nil {
			c.Close()
			return err
		}
		nc = c
		return nil
	})
	t.Cleanup(func() { nc.Close() })
	return nc
}

// expectLimit connects and checks that the first message is
// ["ERR","limit",text] and that the server then closes.
func expectLimit(t *testing.T, addr string, d *net.Dialer, what string) {
	t.Helper()
	if d == nil {
		d = &net.Dialer{}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s: dial: %v", what, err)
	}
	defer nc.Close()
	msg, err := wire.NewConn(nc, 0).ReadMessage(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("%s: read: %v", what, err)
	}
	var items []any
	if err := wire.Unmarshal(msg, &items); err != nil || len(items) != 3 || items[0] != "ERR" || items[1] != "limit" {
		t.Fatalf("%s: first message %x, want [\"ERR\",\"limit\",text]", what, msg)
	}
	if text, _ := items[2].(string); text == "" {
		t.Fatalf("%s: ERR limit without a text", what)
	}
	expectClosed(t, nc, 5*time.Second, what)
	_, err = client.Dial(context.Background(), addr, client.Options{NoKnownHosts: true, Dialer: d.DialContext})
	if !errors.Is(err, client.ErrLimit) {
		t.Fatalf("%s: client.Dial: %v, want ErrLimit", what, err)
	}
}

// waitUntil retries f until it succeeds or the time is up.
func waitUntil(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSIGTERMClosesIdleSessionsAndExitsZero(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t)
	session := srv.AdminClient()
	helloID(t, session)
	clear := dialRaw(t, srv)

	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatalf("vserv after SIGTERM: %v, want exit status 0", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("vserv took %v to stop with only idle connections, want a few seconds at most", d)
	}
	_, err := session.Hello(context.Background())
	wantConnError(t, err, "hello after SIGTERM")
	clear.expectClosed(time.Second, "clear connection after SIGTERM")
	// The log file, not stderr: testenv may lose the last lines of stderr
	// when the process exits.
	logText, err := os.ReadFile(filepath.Join(srv.DataRoot, "log", "vserv.log"))
	if err != nil || !strings.Contains(string(logText), `msg=stopped`) {
		t.Errorf("the log does not say the server stopped (%v):\n%s", err, logText)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after the stop: %v, want connection refused", err)
	}
}
