package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// The security properties of DESIGN.md §2.3–§2.5 and §3.2 that the pyvserv
// lessons name, each shown against a real server: tampering, replay,
// man-in-the-middle key swaps, pinning, credentials outside a session,
// uini from the network, and login backoff that punishes only the guesser.

func TestTamperedEncryptedFrameClosesTheConnection(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	p := startProxy(t, srv.Addr, nil)
	// A hello request is one frame: 4 length bytes, then the ciphertext of
	// flag + CBOR (8 bytes) and a 16-byte tag.
	for _, tc := range []struct {
		name string
		up   bool // client → server, else server → client
		off  int64
	}{
		{"request first ciphertext byte", true, 4},
		{"request middle byte", true, 9},
		{"request tag byte", true, 4 + 8 + 15},
		{"reply ciphertext byte", false, 5},
		{"reply tag byte", false, 4 + 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := testenv.DialAddr(t, p.Addr(), client.Options{NoKnownHosts: true})
			if err != nil {
				t.Fatalf("dial through the proxy: %v", err)
			}
			helloID(t, c)
			pc := p.last()
			pm := pc.down
			if tc.up {
				pm = pc.up
			}
			pm.flip(pm.forwarded() + tc.off)
			_, err = c.Hello(context.Background())
			wantConnError(t, err, "hello with a flipped byte")
			if tc.up {
				// The server closed the connection without an answer.
				if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("hello with a flipped request byte: %v, want the server's close (EOF or reset)", err)
				}
			} else if !strings.Contains(err.Error(), "decrypt") {
				t.Errorf("hello with a flipped reply byte: %v, want a decryption failure", err)
			}
			// Either way the client's connection is closed now.
			if _, err := c.Hello(context.Background()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("a call after the failure: %v, want net.ErrClosed", err)
			}
		})
	}

	t.Run("replayed frame", func(t *testing.T) {
		c, err := testenv.DialAddr(t, p.Addr(), client.Options{NoKnownHosts: true})
		if err != nil {
			t.Fatalf("dial through the proxy: %v", err)
		}
		pc := p.last()
		before := pc.up.forwarded()
		helloID(t, c)
		sent := pc.up.recorded()[before:]
		if err := c.Conn().WriteRaw(sent); err != nil {
			t.Fatalf("write the recorded frame again: %v", err)
		}
		_, err = c.Hello(context.Background())
		wantConnError(t, err, "hello after a replayed frame")
	})

	t.Run("forged frame", func(t *testing.T) {
		c := srv.Dial()
		helloID(t, c)
		body := make([]byte, 40)
		rand.Read(body)
		if err := c.Conn().WriteRaw(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
			t.Fatalf("write a forged frame: %v", err)
		}
		_, err := c.Hello(context.Background())
		wantConnError(t, err, "hello after a forged frame")
	})
}

func TestReplayedSessionDoesNotLogIn(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000", "--idle-timeout", "5"))
	srv.AddUser("bob", "bob-password", false)
	p := startProxy(t, srv.Addr, nil)

	c, err := testenv.DialAddr(t, p.Addr(), client.Options{NoKnownHosts: true})
	if err != nil {
		t.Fatalf("dial through the proxy: %v", err)
	}
	ctx := context.Background()
	if _, err := c.Login(ctx, "bob", "bob-password"); err != nil {
		t.Fatalf("login: %v", err)
	}
	helloID(t, c)
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("quit: %v", err)
	}
	pc := p.last()
	recording := pc.up.recorded()
	origKID, origMsg2 := handshakeOf(t, pc.down.recorded())
	flushLog(t, srv)
	logins := strings.Count(srv.Stderr(), `msg="logged in"`)
	if logins != 2 { // the admin's, made by AddUser, and bob's
		t.Fatalf("server log shows %d logins before the replay, want 2", logins)
	}

	// The server picks a pool key at random for each akey, so a replay meets
	// either another key (its sess is refused) or the recorded one (the
	// server's fresh ephemeral key makes every later frame undecryptable).
	// Replay until both have been seen.
	var sameKey, otherKey int
	for i := 0; i < 200 && (sameKey == 0 || otherKey == 0); i++ {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatalf("replay %d: dial: %v", i, err)
		}
		if _, err := nc.Write(recording); err != nil {
			t.Fatalf("replay %d: write: %v", i, err)
		}
		wc := wire.NewConn(nc, 0)
		read := func(what string) *wire.Response {
			msg, err := wc.ReadMessage(time.Now().Add(10 * time.Second))
			if err != nil {
				t.Fatalf("replay %d: read %s: %v", i, what, err)
			}
			resp, err := wire.DecodeResponse(msg)
			if err != nil {
				t.Fatalf("replay %d: %s: %v", i, what, err)
			}
			return resp
		}
		read("sign-on")
		akey := read("akey answer")
		ki, err := secure.ParseKeyInfo(akey.Vals[0])
		if err != nil {
			t.Fatalf("replay %d: keyinfo: %v", i, err)
		}
		sess := read("sess answer")
		if ki.KID == origKID {
			sameKey++
			var msg2 []byte
			if sess.Err != nil || len(sess.Vals) != 1 || wire.Unmarshal(sess.Vals[0], &msg2) != nil {
				t.Fatalf("replay %d with the recorded pool key: sess answered %+v, want OK msg2", i, sess)
			}
			if bytes.Equal(msg2, origMsg2) {
				t.Fatalf("replay %d: the server answered the replayed sess with the recorded msg2", i)
			}
		} else {
			otherKey++
			if sess.Err == nil || sess.Err.Code != wire.CodeState {
				t.Fatalf("replay %d with another pool key: sess answered %+v, want ERR state", i, sess)
			}
		}
		expectClosed(t, nc, 15*time.Second, fmt.Sprintf("replay %d", i))
		nc.Close()
	}
	if sameKey == 0 || otherKey == 0 {
		t.Fatalf("in 200 replays the server chose the recorded pool key %d times and another %d times; want both", sameKey, otherKey)
	}
	flushLog(t, srv)
	if n := strings.Count(srv.Stderr(), `msg="logged in"`); n != logins {
		t.Errorf("server log shows %d logins after the replays, want %d: a replay logged in", n, logins)
	}
}

// handshakeOf reads the clear-text start of a recorded server → client
// stream: the sign-on, the akey answer and the sess answer; it returns the
// pool key's kid and msg2.
func handshakeOf(t *testing.T, down []byte) (kid string, msg2 []byte) {
	t.Helper()
	r := bytes.NewReader(down)
	var msgs [][]byte
	for range 3 {
		m, _, err := readClearMessage(r)
		if err != nil {
			t.Fatalf("recorded handshake: %v", err)
		}
		msgs = append(msgs, m)
	}
	akey, err := wire.DecodeResponse(msgs[1])
	if err != nil || akey.Err != nil || len(akey.Vals) != 1 {
		t.Fatalf("recorded akey answer: %v %+v", err, akey)
	}
	ki, err := secure.ParseKeyInfo(akey.Vals[0])
	if err != nil {
		t.Fatalf("recorded keyinfo: %v", err)
	}
	sess, err := wire.DecodeResponse(msgs[2])
	if err != nil || sess.Err != nil || len(sess.Vals) != 1 || wire.Unmarshal(sess.Vals[0], &msg2) != nil {
		t.Fatalf("recorded sess answer: %v %+v", err, sess)
	}
	return ki.KID, msg2
}

// signKeyInfo signs ki with key as DESIGN.md §2.3 says: Ed25519 over
// "vserv-poolkey-v2\n" ‖ kid ‖ "\n" ‖ uint64-BE(exp) ‖ x25519 ‖ mlkem.
func signKeyInfo(ki *secure.KeyInfo, key ed25519.PrivateKey) {
	msg := []byte("vserv-poolkey-v2\n" + ki.KID + "\n")
	msg = binary.BigEndian.AppendUint64(msg, ki.Exp)
	msg = append(msg, ki.X25519...)
	msg = append(msg, ki.MLKEM...)
	ki.ID = key.Public().(ed25519.PublicKey)
	ki.Sig = ed25519.Sign(key, msg)
}

// rewriteAkey returns a proxy setup that passes the server's akey answer
// through change before the client sees it.
func rewriteAkey(t *testing.T, change func(ki *secure.KeyInfo)) func(pc *proxyConn) {
	return func(pc *proxyConn) {
		pc.down.clearMsgs = 2 // the sign-on, then the akey answer
		pc.down.rewrite = func(i int, msg []byte) []byte {
			if i != 1 {
				return nil
			}
			resp, err := wire.DecodeResponse(msg)
			if err != nil || resp.Err != nil || len(resp.Vals) != 1 {
				t.Errorf("proxy: akey answer %x is not OK keyinfo", msg)
				return nil
			}
			ki, err := secure.ParseKeyInfo(resp.Vals[0])
			if err != nil {
				t.Errorf("proxy: keyinfo: %v", err)
				return nil
			}
			change(ki)
			b, err := ki.Marshal()
			if err != nil {
				t.Errorf("proxy: marshal keyinfo: %v", err)
				return nil
			}
			out, err := wire.EncodeOK(wire.RawMessage(b))
			if err != nil {
				t.Errorf("proxy: encode akey answer: %v", err)
				return nil
			}
			return out
		}
	}
}

func TestClientRefusesAForgedOrForeignSessionKey(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	realKey := srv.Dial().Identity()
	seed, err := os.ReadFile(filepath.Join(srv.DataRoot, "identity.key"))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("read the server's identity seed: %v (%d bytes)", err, len(seed))
	}
	serverKey := ed25519.NewKeyFromSeed(seed)
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	now := uint64(time.Now().Unix())

	knownHosts := func(t *testing.T, hostport string) string {
		path := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(path, []byte(hostport+" "+secure.PublicKeyText(realKey)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name   string
		change func(ki *secure.KeyInfo)
		opts   func(t *testing.T, addr string) client.Options
		want   func(t *testing.T, err error)
	}{
		{
			name:   "foreign identity, key pinned",
			change: func(ki *secure.KeyInfo) { signKeyInfo(ki, mallory) },
			opts: func(*testing.T, string) client.Options {
				return client.Options{ServerKey: secure.PublicKeyText(realKey)}
			},
			want: wantHostKeyChanged,
		},
		{
			name:   "foreign identity, fingerprint pinned",
			change: func(ki *secure.KeyInfo) { signKeyInfo(ki, mallory) },
			opts: func(*testing.T, string) client.Options {
				return client.Options{ServerKey: secure.Fingerprint(realKey)}
			},
			want: wantHostKeyChanged,
		},
		{
			name:   "foreign identity, key in known_hosts",
			change: func(ki *secure.KeyInfo) { signKeyInfo(ki, mallory) },
			opts: func(t *testing.T, addr string) client.Options {
				return client.Options{KnownHosts: knownHosts(t, addr)}
			},
			want: wantHostKeyChanged,
		},
		{
			name:   "signature byte flipped",
			change: func(ki *secure.KeyInfo) { ki.Sig[10] ^= 0x01 },
			opts:   func(*testing.T, string) client.Options { return client.Options{NoKnownHosts: true} },
			want:   wantErrorMentioning("signature"),
		},
		{
			name:   "kid of other keys",
			change: func(ki *secure.KeyInfo) { ki.KID = "0123456789abcdef"; signKeyInfo(ki, serverKey) },
			opts:   func(*testing.T, string) client.Options { return client.Options{NoKnownHosts: true} },
			want:   wantErrorMentioning("kid"),
		},
		{
			name:   "expired, signed by the server",
			change: func(ki *secure.KeyInfo) { ki.Exp = now - 1; signKeyInfo(ki, serverKey) },
			opts:   func(*testing.T, string) client.Options { return client.Options{NoKnownHosts: true} },
			want:   wantErrorMentioning("expired"),
		},
		{
			name:   "eight days ahead, signed by the server",
			change: func(ki *secure.KeyInfo) { ki.Exp = now + 8*24*3600; signKeyInfo(ki, serverKey) },
			opts:   func(*testing.T, string) client.Options { return client.Options{NoKnownHosts: true} },
			want:   wantErrorMentioning("7 days"),
		},
		{
			// Validly signed and trusted, but not what the server sent: the
			// transcript in the Noise prologue differs, so the server refuses
			// the handshake.
			name:   "altered in transit, validly re-signed",
			change: func(ki *secure.KeyInfo) { ki.Exp = now + 3600; signKeyInfo(ki, serverKey) },
			opts: func(*testing.T, string) client.Options {
				return client.Options{ServerKey: secure.PublicKeyText(realKey)}
			},
			want: func(t *testing.T, err error) {
				testenv.WantCode(t, err, wire.CodeInvalid, "sess after an altered akey")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, srv.Addr, rewriteAkey(t, tc.change))
			_, err := testenv.DialAddr(t, p.Addr(), tc.opts(t, p.Addr()))
			tc.want(t, err)
		})
	}
}

func wantHostKeyChanged(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, client.ErrHostKeyChanged) {
		t.Fatalf("dial: err = %v, want ErrHostKeyChanged", err)
	}
}

func wantErrorMentioning(word string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var we *wire.Error
		if err == nil || errors.As(err, &we) || errors.Is(err, client.ErrHostKeyChanged) || !strings.Contains(err.Error(), word) {
			t.Fatalf("dial: err = %v, want the client's refusal naming %q", err, word)
		}
	}
}

func TestChangedServerKeyIsRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t)
	otherKey, _, _ := ed25519.GenerateKey(rand.Reader)
	home := t.TempDir()
	path := filepath.Join(home, ".config", "vserv", "known_hosts")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	line := srv.Addr + " " + secure.PublicKeyText(otherKey) + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := testenv.DialAddr(t, srv.Addr, client.Options{KnownHosts: path})
	wantHostKeyChanged(t, err)

	env := []string{"HOME=" + home, "XDG_CONFIG_HOME="}
	stdout, stderr, code := srv.Vcli("", env, "hello")
	if code != 2 || !strings.Contains(stderr, "CHANGED") || stdout != "" {
		t.Errorf("vcli hello with a changed key: exit %d, stdout %q, stderr %q; want exit 2 and a loud CHANGED", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(path); string(b) != line {
		t.Errorf("known_hosts after the refusal = %q, want it unchanged: %q", b, line)
	}
}

func TestServerKeyPinning(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	key := srv.Dial().Identity()
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		pin  string
		ok   bool
	}{
		{"public key", secure.PublicKeyText(key), true},
		{"fingerprint", secure.Fingerprint(key), true},
		{"another public key", secure.PublicKeyText(other), false},
		{"another fingerprint", secure.Fingerprint(other), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			c, err := testenv.DialAddr(t, srv.Addr, client.Options{ServerKey: tc.pin})
			if tc.ok {
				if err != nil {
					t.Fatalf("dial pinned to the right %s: %v", tc.name, err)
				}
				helloID(t, c)
			} else {
				wantHostKeyChanged(t, err)
			}
			stdout, stderr, code := srv.Vcli("", []string{"HOME=" + home, "XDG_CONFIG_HOME="}, "--server-key", tc.pin, "hello")
			switch {
			case tc.ok && (code != 0 || !strings.Contains(stdout, "hello from")):
				t.Errorf("vcli --server-key <right %s> hello: exit %d, stdout %q, stderr %q", tc.name, code, stdout, stderr)
			case !tc.ok && (code != 2 || !strings.Contains(stderr, "CHANGED")):
				t.Errorf("vcli --server-key <%s> hello: exit %d, stderr %q; want exit 2 and CHANGED", tc.name, code, stderr)
			}
			if _, err := os.Stat(filepath.Join(home, ".config", "vserv", "known_hosts")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("vcli --server-key wrote known_hosts (stat: %v); a pinned key is neither read nor recorded", err)
			}
		})
	}
}

func TestCredentialsOutsideASessionAreRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t)
	srv.AddUser("bob", "bob-password", false)
	c := srv.DialClear()
	id := helloID(t, c)
	runSteps(t, c, id, []step{
		{cmd: "user", args: []any{"bob"}, want: wire.CodeState},
		{cmd: "pass", args: []any{"bob-password"}, want: wire.CodeState},
		{cmd: "uini", args: []any{"root", "root-password", strings.Repeat("0", 32)}, want: wire.CodeState},
		{cmd: "chpass", args: []any{"bob-password", "new-password"}, want: wire.CodeState},
		{cmd: "ulist", want: wire.CodeState},
	})
	flushLog(t, srv)
	if n := strings.Count(srv.Stderr(), `account=bob`); n != 0 {
		t.Errorf("the server logged %d events for bob's clear-text credentials; want none", n)
	}
	// The same connection, once encrypted, logs in.
	if err := c.Handshake(context.Background()); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := c.Login(context.Background(), "bob", "bob-password"); err != nil {
		t.Fatalf("login in the session: %v", err)
	}
}

func TestWrongPasswordsDoNotLockOutOtherAccountsOrAddresses(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	ctx := context.Background()
	admin := srv.AdminClient()
	for _, n := range []string{"bob", "carol"} {
		if _, err := admin.AddUser(ctx, n, n+"-password", false); err != nil {
			t.Fatalf("uadd %s: %v", n, err)
		}
	}
	admin.Close()

	guesser := srv.Dial()
	for i := range 100 {
		_, err := guesser.Login(ctx, "bob", fmt.Sprintf("guess-%d", i))
		if e := testenv.WantCode(t, err, wire.CodeAuth, fmt.Sprintf("guess %d", i)); e.Text != wire.AuthFailedText {
			t.Fatalf("guess %d: ERR auth %q, want the one text %q", i, e.Text, wire.AuthFailedText)
		}
	}
	lastFailure := time.Now()

	// The same account from another address: at once.
	fromOther := srv.Dial(func(o *client.Options) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		o.Dialer = d.DialContext
	})
	if _, err := fromOther.Login(ctx, "bob", "bob-password"); err != nil {
		t.Fatalf("bob from 127.0.0.2 after 100 wrong passwords from 127.0.0.1: %v", err)
	}
	testenv.WaitLog(t, srv, "remote=127.0.0.2") // the server saw the other address
	// Another account from the same address: at once (the per-address rule
	// allows 20 failures before it slows an address down, and the
	// per-account delay let fewer than that through).
	if _, err := srv.Dial().Login(ctx, "carol", "carol-password"); err != nil {
		t.Fatalf("carol from 127.0.0.1 after 100 wrong passwords for bob: %v", err)
	}
	// The same account from the same address: refused while the
	// per-(account, address) delay runs, which is at most 5 s.
	const pairMax = 5 * time.Second
	var in time.Duration
	for {
		_, err := guesser.Login(ctx, "bob", "bob-password")
		in = time.Since(lastFailure)
		if err == nil {
			break
		}
		testenv.WantCode(t, err, wire.CodeAuth, "bob from 127.0.0.1 during the delay")
		if in > pairMax+2*time.Second {
			t.Fatalf("bob from 127.0.0.1 is still refused %v after the last wrong password; the delay is at most %v", in, pairMax)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("bob from 127.0.0.1 logged in %v after the last wrong password", in.Round(time.Millisecond))
}

// netnsPair is two network namespaces joined by a veth pair: the server's
// (10.99.N.1) and the client's (10.99.N.2), a /30 of their own. Nothing is
// configured outside them.
type netnsPair struct {
	server, client     string
	serverIP, clientIP string
}

func newNetnsPair(t *testing.T) (*netnsPair, error) {
	t.Helper()
	pid := os.Getpid()
	n := 1 + pid%250
	ns := &netnsPair{
		server:   fmt.Sprintf("vserv-test-%d-srv", pid),
		client:   fmt.Sprintf("vserv-test-%d-cli", pid),
		serverIP: fmt.Sprintf("10.99.%d.1", n),
		clientIP: fmt.Sprintf("10.99.%d.2", n),
	}
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := ip("netns", "add", ns.server); err != nil {
		return nil, err
	}
	t.Cleanup(func() { ip("netns", "del", ns.server) })
	if err := ip("netns", "add", ns.client); err != nil {
		return nil, err
	}
	t.Cleanup(func() { ip("netns", "del", ns.client) })
	for _, args := range [][]string{
		{"-n", ns.server, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", ns.client},
		{"-n", ns.server, "addr", "add", ns.serverIP + "/30", "dev", "veth0"},
		{"-n", ns.client, "addr", "add", ns.clientIP + "/30", "dev", "veth1"},
		{"-n", ns.server, "link", "set", "veth0", "up"},
		{"-n", ns.server, "link", "set", "lo", "up"},
		{"-n", ns.client, "link", "set", "veth1", "up"},
		{"-n", ns.client, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatalf("set up the namespaces: %v", err)
		}
	}
	return ns, nil
}

// inNetns runs f on this goroutine's thread switched into the named
// namespace; processes f starts are born there. The runtime creates no
// threads from a locked one, so nothing else ends up in the namespace.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open this thread's namespace: %v", err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open namespace %s: %v", name, err)
	}
	defer target.Close()
	if err := setns(target.Fd()); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter namespace %s: %v", name, err)
	}
	defer func() {
		// If the way back fails, the thread stays locked and dies with
		// the test goroutine instead of serving others from the namespace.
		if setns(orig.Fd()) == nil {
			runtime.UnlockOSThread()
		}
	}()
	f()
}

func TestUiniFromANonLoopbackAddressIsRefused(t *testing.T) {
	t.Parallel()
	vcli := testenv.Bin(t, "vcli")
	testenv.Bin(t, "vserv") // built outside the namespace
	ns, err := newNetnsPair(t)
	if err != nil {
		t.Skip("network namespaces unavailable: " + err.Error())
	}
	// The server listens on its veth address only: inside its namespace,
	// which has a loopback interface of its own.
	var srv *testenv.Server
	inNetns(t, ns.server, func() {
		srv = testenv.Start(t, testenv.WithArgs("-n", ns.serverIP, "-v"))
	})
	_, port, _ := net.SplitHostPort(srv.Addr)
	passFile := filepath.Join(t.TempDir(), "admin.pw")
	if err := os.WriteFile(passFile, []byte("admin-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := srv.SetupToken()
	run := func(netns, host string, args ...string) (string, string, int) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", netns, vcli, "-n", host, "-p", port}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME=", "VSERV_PASSWORD=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run vcli in %s: %v", netns, err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}

	// From the client namespace the server is reachable...
	if out, errOut, code := run(ns.client, ns.serverIP, "hello"); code != 0 {
		t.Fatalf("vcli hello from %s: exit %d, %s %s", ns.clientIP, code, out, errOut)
	}
	// ...but uini from there is refused, even with the right token.
	out, errOut, code := run(ns.client, ns.serverIP, "--json", "uini", "admin", "--token", token, "--new-pass-file", passFile)
	var doc struct {
		OK   bool   `json:"ok"`
		Code string `json:"code"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &doc) != nil || doc.OK || doc.Code != "perm" {
		t.Fatalf("vcli uini from %s: exit %d, stdout %q, stderr %q; want exit 1 and ERR perm", ns.clientIP, code, out, errOut)
	}
	testenv.WaitLog(t, srv, "remote="+ns.clientIP) // the server saw the veth address
	if got := srv.SetupToken(); got != token {
		t.Fatalf("the setup token changed after a refused uini")
	}
	// The same request from a loopback source address, inside the server's
	// namespace, creates the admin.
	inNetns(t, ns.server, func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
		c, err := testenv.DialAddr(t, srv.Addr, client.Options{NoKnownHosts: true, Dialer: d.DialContext})
		if err != nil {
			t.Fatalf("dial from 127.0.0.1 inside the server's namespace: %v", err)
		}
		if _, err := c.InitAdmin(context.Background(), "admin", "admin-password", token); err != nil {
			t.Fatalf("uini from 127.0.0.1: %v", err)
		}
	})
	testenv.WaitLog(t, srv, `msg="initial admin created"`)
}
