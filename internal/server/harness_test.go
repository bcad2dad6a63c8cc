package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Helpers shared by the protocol tests of this package: expectations on
// replies, hand-built CBOR and frames, raw connections and a TCP proxy that
// can record, corrupt or rewrite what passes through it.

// wantConnError fails unless err is a transport failure: not nil and not an
// ERR reply, which is what a caller sees when the server closed the
// connection.
func wantConnError(t testing.TB, err error, what string) {
	t.Helper()
	var we *wire.Error
	switch {
	case err == nil:
		t.Fatalf("%s: the call succeeded, want the connection closed", what)
	case errors.As(err, &we):
		t.Fatalf("%s: got %v, want the connection closed", what, err)
	}
}

// helloID calls hello and returns the connection id after checking the reply.
func helloID(t testing.TB, c *client.Client) string {
	t.Helper()
	h, err := c.Hello(context.Background())
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	if h.ServerID != c.ServerID() || len(h.ConnectionID) != 16 {
		t.Fatalf("hello = %+v, want server-id %s and a 16-character connection id", h, c.ServerID())
	}
	return h.ConnectionID
}

// expectInSync calls hello and checks that the answer is hello's, on the
// same connection: if a request before it had been answered twice, this
// would read the stale second answer instead.
func expectInSync(t testing.TB, c *client.Client, connID, after string) {
	t.Helper()
	vals, err := c.Call(context.Background(), "hello")
	if err != nil {
		t.Fatalf("hello after %s: %v", after, err)
	}
	var word, sid, cid string
	if len(vals) != 3 || wire.Unmarshal(vals[0], &word) != nil || wire.Unmarshal(vals[1], &sid) != nil ||
		wire.Unmarshal(vals[2], &cid) != nil || word != "hello" || sid != c.ServerID() || cid != connID {
		t.Fatalf("hello after %s: got %s, want [hello %s %s]: replies are out of step", after, showVals(vals), c.ServerID(), connID)
	}
}

// showVals renders reply values for failure messages.
func showVals(vals []wire.RawMessage) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		var x any
		if err := wire.Unmarshal(v, &x); err != nil {
			parts[i] = "<undecodable>"
			continue
		}
		s := fmt.Sprint(x)
		if len(s) > 80 {
			s = s[:80] + "…"
		}
		parts[i] = s
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// cborHead encodes a CBOR head of the given major type and argument.
func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

// cborText encodes b as a CBOR text string without checking that it is
// UTF-8, so that tests can send invalid text.
func cborText(b []byte) []byte { return append(cborHead(3, uint64(len(b))), b...) }

// rawRequest builds the CBOR array [cmd, args...] from already encoded
// arguments.
func rawRequest(cmd string, args ...[]byte) []byte {
	out := cborHead(4, uint64(len(args)+1))
	out = append(out, cborText([]byte(cmd))...)
	for _, a := range args {
		out = append(out, a...)
	}
	return out
}

// mustCBOR encodes v with the project's codec.
func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return b
}

// frame builds one clear-text frame: length, flag, fragment.
func frame(flag byte, fragment []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(1+len(fragment)))
	out = append(out, flag)
	return append(out, fragment...)
}

// rawConn is a plain TCP connection to a server that has read the sign-on
// and speaks clear-text frames by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	wc *wire.Conn
}

func dialRaw(t testing.TB, srv *testenv.Server) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawConn{t: t, nc: nc, wc: wire.NewConn(nc, 0)}
	msg, err := r.wc.ReadMessage(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("read sign-on: %v", err)
	}
	resp, err := wire.DecodeResponse(msg)
	if err != nil || resp.Err != nil {
		t.Fatalf("sign-on: %v %v", err, resp)
	}
	return r
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	r.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// response reads one message and decodes it as a response.
func (r *rawConn) response(what string) *wire.Response {
	r.t.Helper()
	msg, err := r.wc.ReadMessage(time.Now().Add(10 * time.Second))
	if err != nil {
		r.t.Fatalf("%s: read response: %v", what, err)
	}
	resp, err := wire.DecodeResponse(msg)
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
	return resp
}

// wantERR reads one response and checks it is ERR code.
func (r *rawConn) wantERR(code wire.Code, what string) {
	r.t.Helper()
	resp := r.response(what)
	if resp.Err == nil || resp.Err.Code != code {
		r.t.Fatalf("%s: got %+v, want ERR %s", what, resp, code)
	}
}

// hello sends hello in a single frame and checks the answer: the
// connection is open and in step.
func (r *rawConn) hello(what string) {
	r.t.Helper()
	req, _ := wire.EncodeRequest("hello")
	r.write(frame(0, req))
	resp := r.response(what)
	var word string
	if resp.Err != nil || len(resp.Vals) != 3 || wire.Unmarshal(resp.Vals[0], &word) != nil || word != "hello" {
		r.t.Fatalf("%s: hello answered %+v", what, resp)
	}
}

// expectClosed reads (and drops) whatever the server still sends until it
// closes the connection, and fails if it stays open for within. It returns
// how long the close took.
func (r *rawConn) expectClosed(within time.Duration, what string) time.Duration {
	r.t.Helper()
	return expectClosed(r.t, r.nc, within, what)
}

func expectClosed(t testing.TB, nc net.Conn, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	nc.SetReadDeadline(start.Add(within))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the connection is still open after %v", what, within)
	}
	// nil is EOF (the server closed); a reset is a close with unread data.
	return time.Since(start)
}

// proxy is a TCP relay between a client and a server. Each direction of each
// connection is a pump that can rewrite the first clear-text messages,
// flip one byte at a chosen offset, and records everything it forwards.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	// setup, if set, configures each new connection's pumps before they run.
	setup func(pc *proxyConn)

	mu    sync.Mutex
	conns []*proxyConn
}

type proxyConn struct {
	up   *pump // client → server
	down *pump // server → client
}

type pump struct {
	// rewrite, if set, sees each of the first clearMsgs messages (clear
	// frames, reassembled) and returns what to forward instead, as one frame.
	rewrite   func(i int, msg []byte) []byte
	clearMsgs int

	mu     sync.Mutex
	n      int64 // bytes forwarded
	flipAt int64 // offset of a byte to invert, or -1
	rec    bytes.Buffer
}

func startProxy(t testing.TB, target string, setup func(pc *proxyConn)) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{t: t, ln: ln, target: target, setup: setup}
	var wg sync.WaitGroup
	var open []net.Conn
	var openMu sync.Mutex
	track := func(c net.Conn) {
		openMu.Lock()
		open = append(open, c)
		openMu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			sc, err := net.Dial("tcp", target)
			if err != nil {
				cc.Close()
				continue
			}
			track(cc)
			track(sc)
			pc := &proxyConn{up: &pump{flipAt: -1}, down: &pump{flipAt: -1}}
			if p.setup != nil {
				p.setup(pc)
			}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); pc.up.run(sc, cc) }()
			go func() { defer wg.Done(); pc.down.run(cc, sc) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		openMu.Lock()
		for _, c := range open {
			c.Close()
		}
		openMu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

// last returns the most recent connection.
func (p *proxy) last() *proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) == 0 {
		p.t.Fatalf("proxy: no connection yet")
	}
	return p.conns[len(p.conns)-1]
}

// run copies src to dst until either side fails, then closes both.
func (pm *pump) run(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	for i := 0; i < pm.clearMsgs && pm.rewrite != nil; i++ {
		msg, raw, err := readClearMessage(src)
		if err != nil {
			return
		}
		out := raw
		if rw := pm.rewrite(i, msg); rw != nil {
			out = frame(0, rw)
		}
		if !pm.forward(dst, out) {
			return
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pm.forward(dst, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

func (pm *pump) forward(dst net.Conn, b []byte) bool {
	pm.mu.Lock()
	if pm.flipAt >= pm.n && pm.flipAt < pm.n+int64(len(b)) {
		b[pm.flipAt-pm.n] ^= 0xff
		pm.flipAt = -1
	}
	pm.n += int64(len(b))
	pm.rec.Write(b)
	pm.mu.Unlock()
	_, err := dst.Write(b)
	return err == nil
}

// forwarded returns how many bytes have passed so far.
func (pm *pump) forwarded() int64 {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.n
}

// flip arranges for the byte at offset off of the stream to be inverted.
func (pm *pump) flip(off int64) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.flipAt = off
}

// recorded returns a copy of everything forwarded so far.
func (pm *pump) recorded() []byte {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return bytes.Clone(pm.rec.Bytes())
}

// readClearMessage reads one clear-text message and returns it with the raw
// frames it came in.
func readClearMessage(r io.Reader) (msg, raw []byte, err error) {
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, nil, err
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, nil, err
		}
		raw = append(append(raw, hdr[:]...), body...)
		if len(body) == 0 {
			return nil, nil, errors.New("empty frame")
		}
		msg = append(msg, body[1:]...)
		if body[0] == 0 {
			return msg, raw, nil
		}
	}
}

// flushLog makes the server log an event now and waits for it, so that
// everything logged before is in srv.Stderr(). It costs one failed login for
// an account that does not exist.
func flushLog(t testing.TB, srv *testenv.Server) {
	t.Helper()
	marker := fmt.Sprintf("flush-%d", time.Now().UnixNano())
	c := srv.Dial()
	defer c.Close()
	if _, err := c.Login(context.Background(), marker, "x"); err == nil {
		t.Fatalf("login as %s succeeded", marker)
	}
	testenv.WaitLog(t, srv, "account="+marker)
}
