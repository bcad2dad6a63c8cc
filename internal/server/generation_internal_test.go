package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// An account change ends the account's sessions through the generation
// check alone (docs/protocol.md, "Login concurrency and account changes"):
// the change is made through one front end, the session lives on another
// front end on the same store, whose connections the first one's
// endSessions never sees. Two vserv processes cannot share a bbolt file, so
// the two front ends are two Servers in this process on one set of parts,
// as the node runs its TCP and HTTP front ends, each serving real TCP.

// frontEnds starts a server and a second front end beside it, both serving
// on loopback, with a clock the test can move (for TOTP codes).
func frontEnds(t *testing.T) (a, b *Server, addrA, addrB string, clock *testClock) {
	t.Helper()
	clock = &testClock{now: time.Now()}
	base := newTestServer(t, t.TempDir(), Config{Now: clock.Now, RateIP: 10000, Logger: slog.New(slog.DiscardHandler)})
	// Both front ends run the core's commands and "pwd", registered here
	// as a command package registers its own (the file commands cannot be
	// imported by this package's tests): the generation check covers
	// registered commands as it covers the core's.
	probe := NewTable()
	probe.Handle("pwd", Command{
		Spec: cmdspec.Spec{Min: stateVerified, Usage: "pwd — this test's stand-in for a registered command"},
		Run:  func(context.Context, *Session, *wire.Request) (*Reply, error) { return OK("/") },
	})
	frontEnd := func() *Server {
		s, err := New(base.cfg, Parts{
			Identity: base.id, Pool: base.pool, Accounts: base.accounts, Files: base.files, Ledger: base.ledger,
			SetupToken: base.setup, KeyRotations: base.keyRotations, Commands: probe,
		})
		if err != nil {
			t.Fatalf("front end: %v", err)
		}
		return s
	}
	a, b = frontEnd(), frontEnd()
	return a, b, serveForTest(t, a), serveForTest(t, b), clock
}

// serveForTest serves s on a loopback port until the test ends.
func serveForTest(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialLogin opens a session to addr and logs in, passing the second factor
// with secret when there is one.
func dialLogin(t *testing.T, addr, name, pass, secret string, clock *testClock) *client.Client {
	t.Helper()
	ctx := t.Context()
	c, err := client.Dial(ctx, addr, client.Options{NoKnownHosts: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	l, err := c.Login(ctx, name, pass)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	if l.Needs2FA != (secret != "") {
		t.Fatalf("login %s: needs2fa = %v with secret %q", name, l.Needs2FA, secret)
	}
	if secret != "" {
		clock.advance(30 * time.Second) // each code works once: the next step's
		if err := c.TwoFA(ctx, code(t, secret, clock.Now())); err != nil {
			t.Fatalf("twofa %s: %v", name, err)
		}
	}
	return c
}

func TestAccountChangeOnOneFrontEndEndsTheSessionOnAnotherAtItsNextCommand(t *testing.T) {
	a, _, addrA, addrB, clock := frontEnds(t)
	ctx := t.Context()
	if _, err := a.accounts.Add(ctx, "root", "root-password", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin := dialLogin(t, addrA, "root", "root-password", "", clock)
	cases := []struct {
		name   string
		enroll bool // bob has a second factor (a reset needs one)
		// change is made on front end A, by the admin or by bob's session there.
		change func(bobA *client.Client) error
		// bobAStays: the change was bob's own, on bobA, which stays logged in.
		bobAStays bool
	}{
		{name: "udel", change: func(*client.Client) error { return admin.DeleteUser(ctx, "bob") }},
		{name: "uena disable", change: func(*client.Client) error { return admin.EnableUser(ctx, "bob", false) }},
		{name: "chpass by an admin", change: func(*client.Client) error { return admin.SetPassword(ctx, "bob", "bob-password-2") }},
		{name: "chpass of one's own", bobAStays: true, change: func(bobA *client.Client) error {
			return bobA.ChangePassword(ctx, "bob-password", "bob-password-2")
		}},
		{name: "u2fa reset", enroll: true, change: func(*client.Client) error { _, err := admin.Reset2FA(ctx, "bob"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret := ""
			if tc.enroll {
				secret = enrolled(t, a, clock, "bob") // password bob-password
			} else if _, err := a.accounts.Add(ctx, "bob", "bob-password", auth.RoleUser); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.accounts.Delete(context.Background(), "bob") })
			bobA := dialLogin(t, addrA, "bob", "bob-password", secret, clock)
			bobB := dialLogin(t, addrB, "bob", "bob-password", secret, clock)
			if _, err := bobB.Call(ctx, "pwd"); err != nil {
				t.Fatalf("pwd on B before the change: %v", err)
			}
			if err := tc.change(bobA); err != nil {
				t.Fatalf("%s on A: %v", tc.name, err)
			}
			// B's session learns of the change from the store only, at its
			// next command: the fixed ERR auth, and it is logged out.
			_, err := bobB.Call(ctx, "pwd")
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeAuth || we.Text != wire.AuthFailedText {
				t.Fatalf("pwd on B after %s on A: err = %v, want ERR auth %q", tc.name, err, wire.AuthFailedText)
			}
			if _, err := bobB.Call(ctx, "pwd"); !errors.Is(err, client.ErrState) {
				t.Fatalf("pwd on B once refused: err = %v, want ERR state (back in state session)", err)
			}
			if _, err := bobB.Hello(ctx); err != nil {
				t.Fatalf("hello on B in state session: %v (the connection must stay open)", err)
			}
			// On A itself the change also closed bob's other connection at
			// once, or kept the one that made it.
			_, err = bobA.Call(ctx, "pwd")
			switch {
			case tc.bobAStays && err != nil:
				t.Fatalf("pwd on the session that changed its own account: %v, want OK", err)
			case !tc.bobAStays && (err == nil || errors.As(err, &we)):
				t.Fatalf("pwd on bob's session on A after %s: err = %v, want the connection closed", tc.name, err)
			}
		})
	}
}

// Every command of a session in state user or verified, whatever it is and
// whatever its arguments, first checks the generation: once the account
// changed on another front end, each one answers the fixed ERR auth without
// running. quit, exit and logout end the login anyway.
func TestEveryCommandOfASessionWhoseAccountChangedElsewhereIsERRAuth(t *testing.T) {
	a, _, addrA, addrB, clock := frontEnds(t)
	ctx := t.Context()
	if _, err := a.accounts.Add(ctx, "root", "root-password", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin := dialLogin(t, addrA, "root", "root-password", "", clock)
	if _, err := a.accounts.Add(ctx, "bob", "bob-password", auth.RoleUser); err != nil {
		t.Fatal(err)
	}
	enrolled(t, a, clock, "carol") // owes a factor: pass leaves it in state user
	sessions := []struct {
		name, state string
	}{
		{"bob", "verified"},
		{"carol", "user"},
	}
	conns := map[string]*client.Client{}
	for _, s := range sessions {
		c, err := client.Dial(ctx, addrB, client.Options{NoKnownHosts: true, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[s.name] = c
	}
	passwords := map[string]string{"bob": "bob-password", "carol": "carol-password"}
	for i, cmd := range a.cmds.Names() {
		if cmd == "quit" || cmd == "exit" || cmd == "logout" {
			continue
		}
		for _, s := range sessions {
			c := conns[s.name]
			l, err := c.Login(ctx, s.name, passwords[s.name])
			if err != nil || l.Needs2FA != (s.state == "user") {
				t.Fatalf("%s: login %s: %+v, %v; want state %s", cmd, s.name, l, err, s.state)
			}
			passwords[s.name] = fmt.Sprintf("%s-password-%d", s.name, i)
			if err := admin.SetPassword(ctx, s.name, passwords[s.name]); err != nil {
				t.Fatalf("chpass %s null new on A: %v", s.name, err)
			}
			_, err = c.Call(ctx, cmd)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeAuth || we.Text != wire.AuthFailedText {
				t.Fatalf("%s by %s's session in state %s on B, after a password change on A: err = %v, want ERR auth %q",
					cmd, s.name, s.state, err, wire.AuthFailedText)
			}
		}
	}
}
