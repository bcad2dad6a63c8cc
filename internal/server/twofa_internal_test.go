package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// Unit tests of the second-factor handlers on a server with a controlled
// clock: what the integration tests cannot reach in reasonable time (the
// 15-minute lock after 10 failures, which the backoff spreads over minutes).

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// lockedBuffer collects log output from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newClockedServer(t *testing.T) (*Server, *testClock, *lockedBuffer) {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	logs := &lockedBuffer{}
	s := newTestServer(t, t.TempDir(), Config{
		Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	return s, clock, logs
}

// loggedInConn is a connection as cmdPass leaves it, without a socket.
func loggedInConn(s *Server, name string, st state) *conn {
	c := &conn{srv: s, addr: netip.MustParseAddr("192.0.2.7"), log: s.log, id: "test"}
	c.setLoggedIn(name, st)
	c.gen, _ = s.accounts.Generation(context.Background(), name) // as pass records it
	return c
}

func request(t *testing.T, cmd string, args ...any) *wire.Request {
	t.Helper()
	msg, err := wire.EncodeRequest(cmd, args...)
	if err != nil {
		t.Fatal(err)
	}
	req, err := wire.DecodeRequest(msg)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// enrolled creates an account with a confirmed factor and returns its secret.
func enrolled(t *testing.T, s *Server, clock *testClock, name string) string {
	t.Helper()
	if _, err := s.accounts.Add(t.Context(), name, name+"-password", auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	c := loggedInConn(s, name, stateVerified)
	r, err := cmdQr(context.Background(), c, request(t, "qr"))
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	u, err := url.Parse(r.vals[0].(string))
	if err != nil {
		t.Fatal(err)
	}
	secret := u.Query().Get("secret")
	if _, err := cmdTwofa(context.Background(), c, request(t, "twofa", code(t, secret, clock.Now()))); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if c.enrolling != "" {
		t.Fatalf("enrolling = %q after the confirmation, want empty", c.enrolling)
	}
	return secret
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTenSecondFactorFailuresLockTheAccountAndAreAudited(t *testing.T) {
	s, clock, logs := newClockedServer(t)
	ctx := context.Background()
	secret := enrolled(t, s, clock, "ivy")
	for i := 1; i <= 10; i++ {
		// A minute apart: past the backoff, well within the lock's memory.
		clock.advance(time.Minute)
		c := loggedInConn(s, "ivy", stateUser)
		_, err := cmdTwofa(ctx, c, request(t, "twofa", "000000"))
		if !errors.Is(err, wire.ErrAuth) {
			t.Fatalf("failure %d: err = %v, want ERR auth", i, err)
		}
		if c.state != stateSession || c.account != "" || c.loggedInAs() != "" {
			t.Fatalf("failure %d: state %s, account %q: want session with the login forgotten", i, c.state, c.account)
		}
		locks := strings.Count(logs.String(), `msg=audit actor=ivy action="2fa lock" target=ivy`)
		if want := 0; i == 10 {
			want = 1
			if locks != want {
				t.Fatalf("after 10 failures the audit has %d lock records, want 1:\n%s", locks, logs)
			}
		} else if locks != want {
			t.Fatalf("after %d failures the audit has %d lock records, want 0", i, locks)
		}
	}
	clock.advance(time.Minute)
	c := loggedInConn(s, "ivy", stateUser)
	if _, err := cmdTwofa(ctx, c, request(t, "twofa", code(t, secret, clock.Now()))); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("the right code during the lock: err = %v, want ERR auth", err)
	}
	clock.advance(15 * time.Minute)
	c = loggedInConn(s, "ivy", stateUser)
	if _, err := cmdTwofa(ctx, c, request(t, "twofa", code(t, secret, clock.Now()))); err != nil {
		t.Fatalf("the right code after the lock expired: %v", err)
	}
	if c.state != stateVerified {
		t.Fatalf("state %s after an accepted code, want verified", c.state)
	}
}

func TestBackoffRefusesTwofaUnseenAndForgetsTheLogin(t *testing.T) {
	s, clock, _ := newClockedServer(t)
	ctx := context.Background()
	secret := enrolled(t, s, clock, "jo")
	// Three failures are free; the fourth imposes 100 ms. A step apart, so
	// that the code below is one the account has not used.
	for range 4 {
		clock.advance(30 * time.Second)
		c := loggedInConn(s, "jo", stateUser)
		if _, err := cmdTwofa(ctx, c, request(t, "twofa", "000000")); !errors.Is(err, wire.ErrAuth) {
			t.Fatalf("wrong code: err = %v, want ERR auth", err)
		}
	}
	right := code(t, secret, clock.Now())
	c := loggedInConn(s, "jo", stateUser)
	if _, err := cmdTwofa(ctx, c, request(t, "twofa", right)); !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("right code within the backoff delay: err = %v, want ERR auth", err)
	}
	if c.state != stateSession {
		t.Fatalf("state %s after a refusal by the backoff, want session", c.state)
	}
	clock.advance(time.Second) // past the delay, same time step
	c = loggedInConn(s, "jo", stateUser)
	if _, err := cmdTwofa(ctx, c, request(t, "twofa", right)); err != nil {
		t.Fatalf("the same code after the delay: %v (the backoff must refuse unseen, not spend the code)", err)
	}
}

func TestStateUserRunsTheSessionCommandsAndOnlyTheFactorCommands(t *testing.T) {
	s, clock, _ := newClockedServer(t)
	ctx := context.Background()
	enrolled(t, s, clock, "kim")
	// Every command whose minimum is user must be one §2.5 lets state user
	// add; a new one would otherwise be refused there (see conn.run).
	for name, cmd := range s.cmds.cmds {
		if cmd.Min == stateUser && cmd.Flags&cmdspec.UserState == 0 {
			t.Errorf("command %s has min user but not the flag UserState", name)
		}
	}
	// The table belongs to this test's server alone, so adding an entry
	// here is safe.
	const probe = "zz-probe"
	s.cmds.cmds[probe] = &Command{Spec: cmdspec.Spec{Min: stateUser, Usage: "probe"},
		run: func(context.Context, *conn, *wire.Request) (*reply, error) { return ok() }}

	cases := []struct {
		cmd  string
		st   state
		code wire.Code // "" = runs
	}{
		{probe, stateUser, wire.CodeState},
		{probe, stateVerified, ""},
		{"hello", stateUser, ""},
		{"tout", stateUser, ""},
		{"user", stateUser, wire.CodeState},
		{"pass", stateUser, wire.CodeState},
		{"ulist", stateUser, wire.CodeState},
		{"u2fa", stateUser, wire.CodeState},
		{"qr", stateUser, wire.CodeState}, // the account has an active factor
		{"twofa", stateVerified, wire.CodeState},
		{"logout", stateUser, ""},
	}
	for _, tc := range cases {
		c := loggedInConn(s, "kim", tc.st)
		c.timeout = time.Minute
		args := map[string][]any{"user": {"kim"}, "pass": {"x"}, "u2fa": {"kim", "reset"}, "twofa": {"123456"}}[tc.cmd]
		_, err := c.run(ctx, request(t, tc.cmd, args...))
		var we *wire.Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s in state %s: %v, want it to run", tc.cmd, tc.st, err)
		case tc.code != "" && (!errors.As(err, &we) || we.Code != tc.code):
			t.Errorf("%s in state %s: err = %v, want ERR %s", tc.cmd, tc.st, err, tc.code)
		}
	}
}
