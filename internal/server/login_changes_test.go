package server_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Tests of docs/protocol.md, "Login concurrency and account changes": at
// most one login step in flight per address, a bounded hashing queue, and
// account changes that win over logins in flight and over open sessions.
// Logins that must take time use the real argon2id cost (WithRealKDF).

// lcStart starts a server for these tests: many connections from one
// address, so the per-IP handshake rate is raised (the backoff under test is
// separate from it).
func lcStart(t testing.TB, opts ...testenv.Option) *testenv.Server {
	t.Helper()
	return testenv.Start(t, append([]testenv.Option{testenv.WithArgs("--rate-ip", "10000")}, opts...)...)
}

// lcDialFrom opens a session whose TCP connection comes from ip, one of the
// loopback addresses 127.0.0.0/8, so that the server sees distinct clients.
func lcDialFrom(t testing.TB, srv *testenv.Server, ip string) *client.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return srv.Dial(func(o *client.Options) { o.Dialer = d.DialContext })
}

// lcUser sends `user name`, the first login step.
func lcUser(t testing.TB, c *client.Client, name string) {
	t.Helper()
	if _, err := c.Call(context.Background(), "user", name); err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
}

// lcPassAsync sends `pass` on c in the background; the result arrives on the
// channel.
func lcPassAsync(c *client.Client, pass string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "pass", pass)
		done <- err
	}()
	return done
}

// lcTimedLogin logs in as name from ip and returns how long the pass took.
func lcTimedLogin(t testing.TB, srv *testenv.Server, ip, name, pass string) time.Duration {
	t.Helper()
	c := lcDialFrom(t, srv, ip)
	lcUser(t, c, name)
	start := time.Now()
	if _, err := c.Call(context.Background(), "pass", pass); err != nil {
		t.Fatalf("login %s from %s: %v", name, ip, err)
	}
	took := time.Since(start)
	c.Close()
	return took
}

func TestParallelPassFromOneAddressHashesOneAtATime(t *testing.T) {
	srv := lcStart(t, testenv.WithRealKDF())
	srv.AddUser("alice", "alice-password", false)
	const n = 60
	conns := make([]*client.Client, n)
	for i := range conns {
		conns[i] = lcDialFrom(t, srv, "127.0.0.2")
		lcUser(t, conns[i], "alice")
	}
	// Every guess carries the right password: before the fix all 60 were
	// hashed and all logged in. Now one is hashed at a time and the others,
	// arriving meanwhile, are refused unseen.
	results := make([]<-chan error, n)
	var start sync.WaitGroup
	start.Add(1)
	var sent sync.WaitGroup
	for i, c := range conns {
		sent.Add(1)
		ch := make(chan error, 1)
		results[i] = ch
		go func() {
			sent.Done()
			start.Wait()
			_, err := c.Call(context.Background(), "pass", "alice-password")
			ch <- err
		}()
	}
	sent.Wait()
	start.Done()
	okN := 0
	for i, ch := range results {
		err := <-ch
		if err == nil {
			okN++
			continue
		}
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeAuth || we.Text != wire.AuthFailedText {
			t.Fatalf("pass %d: err = %v, want OK or ERR auth %q", i, err, wire.AuthFailedText)
		}
	}
	// A hash at the design's cost takes tens of milliseconds; the 60
	// requests arrive within a few. Generous: at most 10 may have found the
	// address free.
	if okN < 1 || okN > 10 {
		t.Fatalf("%d of %d parallel logins from one address succeeded, want between 1 and 10 (one hashed at a time)", okN, n)
	}
	// The refusals counted nothing: the address logs in at once afterwards.
	lcTimedLogin(t, srv, "127.0.0.2", "alice", "alice-password")
}

func TestBusyAddressesDoNotDelayAnotherAddressLogin(t *testing.T) {
	srv := lcStart(t, testenv.WithRealKDF(), testenv.WithArgs("-v"))
	srv.AddUser("alice", "alice-password", false)
	srv.AddUser("bob", "bob-password", false)
	base := lcTimedLogin(t, srv, "127.0.0.9", "bob", "bob-password")
	t.Logf("one login alone: %v", base)

	// Three addresses send 30 wrong guesses each, all at once. Before the
	// fix every one of them was queued for hashing, two at a time, and a
	// fourth address's login waited behind about 45 hashes.
	const perAddr = 30
	before := len(lcQueuedLines(srv))
	var sent, done sync.WaitGroup
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		for range perAddr {
			c := lcDialFrom(t, srv, ip)
			lcUser(t, c, "alice")
			sent.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ch := lcPassAsync(c, "wrong-password")
				sent.Done()
				<-ch
			}()
		}
	}
	sent.Wait()
	lcWaitQueued(t, srv, before+3) // each address has a guess in line
	took := lcTimedLogin(t, srv, "127.0.0.5", "bob", "bob-password")
	t.Logf("login from a fourth address: %v", took)
	// At most one hash per busy address runs or waits: the login waits
	// behind at most three. Generous margin for a loaded machine.
	limit := 500*time.Millisecond + 8*base
	if took > limit {
		t.Fatalf("a login from a fourth address took %v while three addresses guessed (one login alone: %v), want at most %v", took, base, limit)
	}
	done.Wait()
}

// lcQueued is the debug line the server logs for each login password check
// that joins the hashing line (internal/auth, hasher.verify).
const lcQueued = `msg="login password check queued"`

// lcQueuedLines returns the lcQueued lines of srv's stderr so far.
func lcQueuedLines(srv *testenv.Server) []string {
	var lines []string
	for _, l := range strings.Split(srv.Stderr(), "\n") {
		if strings.Contains(l, lcQueued) {
			lines = append(lines, l)
		}
	}
	return lines
}

// lcWaitQueued waits until srv has logged at least n lcQueued lines in all
// and returns them. The server logs them only when started with -v.
func lcWaitQueued(t testing.TB, srv *testenv.Server, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := lcQueuedLines(srv)
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the server logged %d login password checks, want %d (is it started with -v?)", len(lines), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// lcBusyHasher occupies the password hasher with one wrong guess from each
// of n other addresses (127.0.<subnet>.1 on), so that the next login waits
// for a hashing slot. It returns once the server has queued all n guesses (srv
// must run with -v), with the lines it logged for them and a wait that
// returns when the guesses have been answered.
func lcBusyHasher(t testing.TB, srv *testenv.Server, subnet byte, n int) (queued []string, wait func()) {
	t.Helper()
	conns := make([]*client.Client, n)
	for i := range conns {
		conns[i] = lcDialFrom(t, srv, net.IPv4(127, 0, subnet, byte(i+1)).String())
		lcUser(t, conns[i], "nobody")
	}
	before := len(lcQueuedLines(srv))
	// All at once, so that all n are running or queued together.
	var done sync.WaitGroup
	for _, c := range conns {
		done.Add(1)
		ch := lcPassAsync(c, "wrong-password")
		go func() { defer done.Done(); <-ch }()
	}
	return lcWaitQueued(t, srv, before+n)[before:], done.Wait
}

func TestAccountChangeWinsOverLoginWaitingForHash(t *testing.T) {
	cases := []struct {
		name   string
		enroll bool // alice has a second factor before the change
		change func(ctx context.Context, admin *client.Client) error
	}{
		{"uena disable", false, func(ctx context.Context, a *client.Client) error { return a.EnableUser(ctx, "alice", false) }},
		{"udel", false, func(ctx context.Context, a *client.Client) error { return a.DeleteUser(ctx, "alice") }},
		{"u2fa reset", true, func(ctx context.Context, a *client.Client) error { _, err := a.Reset2FA(ctx, "alice"); return err }},
	}
	srv := lcStart(t, testenv.WithRealKDF(), testenv.WithArgs("-v"))
	admin := srv.AdminClient()
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := admin.AddUser(ctx, "alice", "alice-password", false); err != nil {
				t.Fatalf("uadd alice: %v", err)
			}
			if tc.enroll {
				// A reset needs a factor to remove (without one it is ERR notfound).
				alice := srv.Login("alice", "alice-password")
				en, err := alice.Enroll(ctx, "")
				if err != nil {
					t.Fatalf("qr alice: %v", err)
				}
				code := testenv.OathCode(t, testenv.OTPSecret(t, en.URI, "alice", alice.ServerID()), testenv.CurrentTOTPStep(time.Now()))
				if err := alice.TwoFA(ctx, code); err != nil {
					t.Fatalf("twofa alice: %v", err)
				}
				alice.Close()
			}
			c := lcDialFrom(t, srv, net.IPv4(127, 0, 2, byte(i+1)).String())
			lcUser(t, c, "alice")
			_, wait := lcBusyHasher(t, srv, 1, 4)
			before := len(lcQueuedLines(srv))
			res := lcPassAsync(c, "alice-password")
			// pass has read the account and waits for a slot behind the
			// guesses still in line.
			lcWaitQueued(t, srv, before+1)
			if err := tc.change(ctx, admin); err != nil {
				t.Fatalf("%s alice: %v", tc.name, err)
			}
			err := <-res
			// Before the fix the login completed with the account as it was
			// before the change.
			testenv.WantAuthFailed(t, err, "pass waiting for a hashing slot during "+tc.name)
			if _, err := c.Call(ctx, "mkdir", "x"); !errors.Is(err, client.ErrState) {
				t.Fatalf("mkdir after the refused login: err = %v, want ERR state (not logged in)", err)
			}
			wait()
			if tc.name != "udel" {
				if err := admin.DeleteUser(ctx, "alice"); err != nil {
					t.Fatalf("udel alice: %v", err)
				}
			}
			if _, err := os.Stat(filepath.Join(srv.DataRoot, "files", "alice", "x")); err == nil {
				t.Fatal("the refused login created files/alice/x")
			}
		})
	}
}

func TestHashQueueFullIsLimit(t *testing.T) {
	srv := lcStart(t, testenv.WithRealKDF(), testenv.WithArgs("-v"))
	srv.AddUser("alice", "alice-password", false)
	// Eight logins from eight addresses fill the queue (two hashing, six
	// waiting); a ninth address is refused at once rather than queued. The
	// server's debug log says when all eight are in line; on a loaded
	// machine the first hashes may end before the last guess arrives, or
	// before the ninth does, and then the round is tried again.
	const full = "logins=8 "
	for round := 1; ; round++ {
		c := lcDialFrom(t, srv, "127.0.0.2")
		lcUser(t, c, "alice")
		// Fresh addresses each round, so that no backoff of earlier
		// rounds' wrong guesses holds these back.
		queued, wait := lcBusyHasher(t, srv, byte(10+round), 8)
		// Lines may reach the log out of order: any of them may hold the
		// count of eight.
		holdsEight := slices.ContainsFunc(queued, func(l string) bool { return strings.Contains(l, full) })
		if !holdsEight && round < 10 {
			t.Logf("round %d: the queue never held eight (%q); again", round, queued)
			wait()
			c.Close()
			continue
		}
		before := len(lcQueuedLines(srv))
		start := time.Now()
		_, err := c.Call(context.Background(), "pass", "alice-password")
		took := time.Since(start)
		if err == nil && round < 10 {
			// Admitted: only right if the line had moved on, which the
			// server's count for this login shows (at most eight).
			line := lcWaitQueued(t, srv, before+1)[before]
			if strings.Contains(line, "logins=9") {
				t.Fatalf("a ninth login was queued: %s", line)
			}
			t.Logf("round %d: a hash ended before the ninth login arrived (%s); again", round, line)
			wait()
			c.Close()
			continue
		}
		we := testenv.WantCode(t, err, wire.CodeLimit, "pass while eight logins are hashed or queued")
		if we.Text == "" {
			t.Fatal("ERR limit with an empty text")
		}
		if took > time.Second {
			t.Fatalf("the refusal took %v: it was queued", took)
		}
		wait()
		break
	}
	// The refusal counted nothing toward the backoff.
	lcTimedLogin(t, srv, "127.0.0.2", "alice", "alice-password")
}

func TestProductionWriteGrantEndsSessionWithoutSecondFactor(t *testing.T) {
	srv := testenv.StartTwoFA(t, testenv.WithRealKDF(), testenv.WithArgs("-P"))
	ctx := context.Background()
	const name, pass = testenv.AdminName, testenv.AdminPass
	code, err := srv.Dial().InitAdmin(ctx, name, pass, srv.SetupToken())
	if err != nil {
		t.Fatalf("uini: %v", err)
	}
	admin, _ := testenv.LoginPassword(t, srv, name, pass)
	en, err := admin.Enroll(ctx, code)
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	totp := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, name, admin.ServerID())}
	if err := admin.TwoFA(ctx, totp.Next()); err != nil {
		t.Fatalf("twofa: %v", err)
	}
	if err := admin.MakeChain(ctx, "notes", client.ChainOptions{Public: true}); err != nil {
		t.Fatalf("mkchain: %v", err)
	}
	if _, err := admin.AddUser(ctx, "bob", "bob-password-1", false); err != nil {
		t.Fatalf("uadd bob: %v", err)
	}
	// Without a write right bob owes no factor and logs in with the
	// password alone.
	bob, owed := testenv.LoginPassword(t, srv, "bob", "bob-password-1")
	if owed {
		t.Fatal("needs2fa = true for a user without rights")
	}
	if err := admin.Grant(ctx, "bob", "notes", "read"); err != nil {
		t.Fatalf("grant read: %v", err)
	}
	helloID(t, bob) // a read grant owes no factor: the session goes on
	if err := admin.Grant(ctx, "bob", "notes", "write"); err != nil {
		t.Fatalf("grant write: %v", err)
	}
	// Before the fix bob kept writing without a second factor.
	_, err = bob.PutRecords(ctx, "notes", [][]byte{testenv.NewRecord(t, "no factor")}, false)
	testenv.WantAuthFailed(t, err, "rput by a session that logged in without a factor, after a write grant")
	if st := testenv.SessionState(t, bob); st != "session" {
		t.Fatalf("after the refused rput, state %s, want session (logged out)", st)
	}
	if n := testenv.ChainSize(t, admin, "notes"); n != 0 {
		t.Fatalf("notes has %d entries, want 0", n)
	}
	if _, owed := testenv.LoginPassword(t, srv, "bob", "bob-password-1"); !owed {
		t.Fatal("after the write grant, needs2fa = false, want true")
	}
}

func TestRevokeTakesEffectOnTheNextCommandOfAnOpenSession(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"notes"})
	e.Srv.AddUser("bob", "bob-password", false)
	if err := e.Admin.Grant(e.Ctx, "bob", "notes", "write"); err != nil {
		t.Fatalf("grant write: %v", err)
	}
	bob := e.Srv.Login("bob", "bob-password")
	testenv.Put(t, bob, "notes", false, testenv.NewRecord(t, 1))
	if err := e.Admin.Revoke(e.Ctx, "bob", "notes", "write"); err != nil {
		t.Fatalf("revoke write: %v", err)
	}
	_, err := bob.PutRecords(e.Ctx, "notes", [][]byte{testenv.NewRecord(t, 2)}, false)
	testenv.WantCode(t, err, wire.CodePerm, "rput after revoke")
	if n := testenv.ChainSize(t, bob, "notes"); n != 1 {
		t.Fatalf("notes has %d entries, want 1", n)
	}
}

// lcAudit returns the payloads of every entry of the audit chain.
func lcAudit(t testing.TB, admin *client.Client) []map[string]any {
	t.Helper()
	ctx := context.Background()
	n := testenv.ChainSize(t, admin, "audit")
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = int64(i)
	}
	entries, err := admin.AbsRecords(ctx, "audit", seqs)
	if err != nil {
		t.Fatalf("rabs audit: %v", err)
	}
	out := make([]map[string]any, len(entries))
	for i, b := range entries {
		_, raw := entryRecord(t, b)
		var rec struct {
			Payload map[string]any `cbor:"payload"`
		}
		if err := wire.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("audit entry %d: %v", i, err)
		}
		out[i] = rec.Payload
	}
	return out
}

func TestAuditRecordsUiniAndRefusedAdministrativeCommands(t *testing.T) {
	srv := lcStart(t)
	ctx := context.Background()
	if _, err := srv.Dial().InitAdmin(ctx, testenv.AdminName, testenv.AdminPass, "not-the-token"); !errors.Is(err, client.ErrPerm) {
		t.Fatalf("uini with a wrong setup token: err = %v, want ERR perm", err)
	}
	admin := srv.AdminClient()
	if _, err := admin.AddUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatalf("uadd bob: %v", err)
	}
	bob := srv.Login("bob", "bob-password")
	refused := [][]any{
		{"udel", testenv.AdminName},
		{"uadd", "mallory", "mallory-password"},
		{"chpass", testenv.AdminName, nil, "stolen-password"},
		{"grant", "bob", "audit", "read"},
		{"ulist"},
		{"ls", map[string]any{"as": testenv.AdminName}},
	}
	for _, r := range refused {
		_, err := bob.Call(ctx, r[0].(string), r[1:]...)
		testenv.WantCode(t, err, wire.CodePerm, "bob: "+r[0].(string))
	}
	got := lcAudit(t, admin)
	type want struct{ actor, action, target, outcome string }
	wants := []want{
		{"", "uini", testenv.AdminName, "refused: wrong setup token"},
		{testenv.AdminName, "uini", testenv.AdminName, "ok"},
		{"bob", "udel", testenv.AdminName, "refused: not an admin"},
		{"bob", "uadd", "mallory", "refused: not an admin"},
		{"bob", "chpass", testenv.AdminName, "refused: not an admin"},
		{"bob", "grant", "bob", "refused: not an admin"},
		{"bob", "ulist", "", "refused: not an admin"},
		{"bob", "ls", "", "refused: not an admin"},
	}
	for _, w := range wants {
		found := false
		for _, p := range got {
			if p["actor"] == w.actor && p["action"] == w.action && p["target"] == w.target && p["outcome"] == w.outcome {
				found = true
			}
		}
		if !found {
			t.Errorf("the audit chain has no entry %+v; it has %v", w, got)
		}
	}
	for _, p := range got {
		for _, v := range p {
			if s, _ := v.(string); s == "mallory-password" || s == "stolen-password" || s == "bob-password" {
				t.Errorf("the audit chain holds a password: %v", p)
			}
		}
	}
}
