package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Second factor in developer mode (DESIGN.md §2.5, §3.2 qr/twofa/u2fa): the
// account protocol, checked against oathtool and zbarimg.

func TestTwoFAEnrollWithOathtoolCodesReplaysAndReenrollment(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	ctx := context.Background()
	admin := srv.AdminClient()
	const name, pass = "bob", "bob-password"
	if _, err := admin.AddUser(ctx, name, pass, false); err != nil {
		t.Fatalf("uadd: %v", err)
	}

	// Developer mode: no factor enrolled, none owed.
	c, owed := testenv.LoginPassword(t, srv, name, pass)
	if owed {
		t.Fatal("needs2fa = true for an account without a second factor in developer mode")
	}
	if _, err := c.Call(ctx, "twofa", "123456"); err == nil || !errors.Is(err, client.ErrState) {
		t.Fatalf("twofa in verified without an enrollment: err = %v, want ERR state", err)
	}
	en, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	secret := testenv.OTPSecret(t, en.URI, name, c.ServerID())
	testenv.CheckRecoveryCodes(t, en.Recovery)
	if got := testenv.Zbar(t, testenv.WriteTemp(t, "qr.png", en.PNG)); got != en.URI {
		t.Fatalf("zbarimg reads %q from the PNG, want the URI %q", got, en.URI)
	}

	// A code from two steps ago is outside the ±1 window. Nothing was
	// accepted yet, so the window is the only reason to refuse it.
	cur := testenv.CurrentTOTPStep(time.Now())
	o := &testenv.TOTP{T: t, Secret: secret}
	window := map[string]bool{o.Code(cur - 1): true, o.Code(cur): true, o.Code(cur + 1): true}
	old := cur - 2
	for window[o.Code(old)] { // a 1-in-10⁶ collision would make the code valid
		old--
	}
	testenv.WantAuthFailed(t, c.TwoFA(ctx, o.Code(old)), "twofa with the code of two steps ago")
	if st := testenv.SessionState(t, c); st != "session" {
		t.Fatalf("after a refused twofa the connection is in state %s, want session", st)
	}
	if testenv.Has2FA(t, admin, name) {
		t.Fatal("has2fa = true before any code was accepted")
	}

	// Enroll again; the first oathtool code confirms.
	c, _ = testenv.LoginPassword(t, srv, name, pass)
	en, err = c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr again: %v", err)
	}
	if s2 := testenv.OTPSecret(t, en.URI, name, c.ServerID()); s2 == secret {
		t.Fatal("a second enrollment reused the secret")
	} else {
		secret = s2
	}
	o = &testenv.TOTP{T: t, Secret: secret}
	if err := c.TwoFA(ctx, o.Next()); err != nil {
		t.Fatalf("twofa confirming the enrollment with oathtool's code: %v", err)
	}
	if st := testenv.SessionState(t, c); st != "verified" {
		t.Fatalf("after confirming, state %s, want verified", st)
	}
	if !testenv.Has2FA(t, admin, name) {
		t.Fatal("has2fa = false after the enrollment was confirmed")
	}
	recovery := en.Recovery

	// From now on the factor is owed: state user allows only its commands.
	c, owed = testenv.LoginPassword(t, srv, name, pass)
	if !owed {
		t.Fatal("needs2fa = false for an account with an active factor")
	}
	if _, err := c.Call(ctx, "chpass", pass, "another-password"); !errors.Is(err, client.ErrState) {
		t.Fatalf("chpass in state user: err = %v, want ERR state", err)
	}
	if _, err := c.Enroll(ctx, ""); !errors.Is(err, client.ErrState) {
		t.Fatalf("qr in state user with an active factor: err = %v, want ERR state (re-enrolling needs verified)", err)
	}
	if _, err := c.Call(ctx, "twofa"); !errors.Is(err, client.ErrProto) {
		t.Fatalf("twofa without a code: err = %v, want ERR proto", err)
	}
	if st := testenv.SessionState(t, c); st != "user" {
		t.Fatalf("after twofa without a code, state %s, want user (never a pass)", st)
	}
	used := o.Next()
	if err := c.TwoFA(ctx, used); err != nil {
		t.Fatalf("twofa with oathtool's next code: %v", err)
	}
	if st := testenv.SessionState(t, c); st != "verified" {
		t.Fatalf("after twofa, state %s, want verified", st)
	}

	refusals := []struct{ what, code string }{
		{"the code just used (replay)", used},
		{"the code of the step before the last accepted one", o.Code(o.Last - 1)},
		{"an empty code", ""},
	}
	for _, r := range refusals {
		c, _ := testenv.LoginPassword(t, srv, name, pass)
		testenv.WantAuthFailed(t, c.TwoFA(ctx, r.code), "twofa with "+r.what)
		if st := testenv.SessionState(t, c); st != "session" {
			t.Fatalf("after twofa with %s, state %s, want session", r.what, st)
		}
	}

	// Re-enrolling needs verified: here through a recovery code. The old
	// factor stays in force until the new one is confirmed.
	c = testenv.Login2FA(t, srv, name, pass, recovery[0])
	en, err = c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr in verified with an active factor: %v", err)
	}
	o2 := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, name, c.ServerID()), Last: o.Last}
	if err := c.TwoFA(ctx, o2.Next()); err != nil {
		t.Fatalf("twofa confirming the new enrollment: %v", err)
	}
	c, _ = testenv.LoginPassword(t, srv, name, pass)
	testenv.WantAuthFailed(t, c.TwoFA(ctx, o.Code(o2.Last+1)), "twofa with the replaced secret's code")
	c, _ = testenv.LoginPassword(t, srv, name, pass)
	testenv.WantAuthFailed(t, c.TwoFA(ctx, recovery[1]), "twofa with a recovery code of the replaced enrollment")
	c = testenv.Login2FA(t, srv, name, pass, en.Recovery[0])
	if st := testenv.SessionState(t, c); st != "verified" {
		t.Fatalf("after a new recovery code, state %s, want verified", st)
	}
}

func TestRecoveryCodesWorkOnceEach(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	ctx := context.Background()
	srv.AddUser("carol", "carol-password", false)
	c := srv.Login("carol", "carol-password")
	en, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	o := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, "carol", c.ServerID())}
	if err := c.TwoFA(ctx, o.Next()); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	steps := []struct {
		code string
		ok   bool
	}{
		{en.Recovery[0], true},
		{en.Recovery[0], false},
		{strings.ToUpper(en.Recovery[1]), true}, // typed from paper in capitals
		{en.Recovery[1], false},
		{en.Recovery[0][:15] + "a", false},
		{en.Recovery[9], true},
	}
	for i, s := range steps {
		c, _ := testenv.LoginPassword(t, srv, "carol", "carol-password")
		err := c.TwoFA(ctx, s.code)
		if s.ok && err != nil {
			t.Fatalf("step %d: recovery code %q refused: %v", i, s.code, err)
		}
		if !s.ok {
			testenv.WantAuthFailed(t, err, fmt.Sprintf("step %d: recovery code %q used again or wrong", i, s.code))
		}
	}
}

func TestTwoFAFailuresReturnToSessionAndCountTowardBackoff(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	ctx := context.Background()
	const name, pass = "dave", "dave-password"
	srv.AddUser(name, pass, false)
	c := srv.Login(name, pass)
	en, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	o := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, name, c.ServerID())}
	if err := c.TwoFA(ctx, o.Next()); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	wrong := func() string { // a code of none of the accepted steps
		cur := testenv.CurrentTOTPStep(time.Now())
		valid := map[string]bool{o.Code(cur - 1): true, o.Code(cur): true, o.Code(cur + 1): true}
		for _, w := range []string{"000000", "111111", "222222", "333333"} {
			if !valid[w] {
				return w
			}
		}
		panic("unreachable")
	}()
	// loginEventually retries while the backoff refuses the right password.
	loginEventually := func() *client.Client {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c := srv.Dial()
			l, err := c.Login(ctx, name, pass)
			if err == nil {
				if !l.Needs2FA {
					t.Fatal("needs2fa = false with an active factor")
				}
				return c
			}
			testenv.WantAuthFailed(t, err, "login during backoff")
			if time.Now().After(deadline) {
				t.Fatal("the backoff kept refusing the right password for 10 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The per-(account, address) backoff lets 3 failures pass free, then
	// doubles from 100 ms: after the 6th failure it waits 400 ms. A right
	// password in between must not wipe out the count.
	for i := 1; i <= 6; i++ {
		c := loginEventually()
		testenv.WantAuthFailed(t, c.TwoFA(ctx, wrong), "twofa with a wrong code")
		if st := testenv.SessionState(t, c); st != "session" {
			t.Fatalf("failure %d: state %s after a refused twofa, want session", i, st)
		}
		if _, err := c.Call(ctx, "logout"); !errors.Is(err, client.ErrState) {
			t.Fatalf("failure %d: logout after a refused twofa: err = %v, want ERR state (the login is forgotten)", i, err)
		}
	}
	start := time.Now()
	_, err = srv.Dial().Login(ctx, name, pass)
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		testenv.WantAuthFailed(t, err, "the right password right after 6 second-factor failures")
	} else {
		t.Logf("the login took %v, past most of the 400 ms backoff; not checking the refusal", elapsed)
	}
	c = loginEventually()
	if err := c.TwoFA(ctx, o.Next()); err != nil {
		t.Fatalf("twofa after the backoff: %v", err)
	}
	// The success cleared the record: one more failure is free again.
	c = loginEventually()
	testenv.WantAuthFailed(t, c.TwoFA(ctx, wrong), "twofa with a wrong code")
	if _, err := srv.Dial().Login(ctx, name, pass); err != nil {
		t.Fatalf("login right after one failure that followed a success: %v, want no backoff", err)
	}
}

func TestU2faResetEndsSessionsAndNeedsReenrollment(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	ctx := context.Background()
	admin := srv.AdminClient()
	const name, pass = "erin", "erin-password"
	if _, err := admin.AddUser(ctx, name, pass, false); err != nil {
		t.Fatal(err)
	}
	c := srv.Login(name, pass)
	en, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	o := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, name, c.ServerID())}
	if err := c.TwoFA(ctx, o.Next()); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	session := testenv.Login2FA(t, srv, name, pass, o.Next())

	srv.AddUser("frank", "frank-password", false)
	frank := srv.Login("frank", "frank-password")
	checks := []struct {
		who  *client.Client
		args []any
		code wire.Code
	}{
		{frank, []any{name, "reset"}, wire.CodePerm},
		{admin, []any{name, "remove"}, wire.CodeInvalid},
		{admin, []any{"nobody", "reset"}, wire.CodeNotFound},
		{admin, []any{name}, wire.CodeProto},
	}
	for _, ch := range checks {
		_, err := ch.who.Call(ctx, "u2fa", ch.args...)
		testenv.WantCode(t, err, ch.code, fmt.Sprint("u2fa ", ch.args))
	}
	if !testenv.Has2FA(t, admin, name) {
		t.Fatal("a refused u2fa removed the factor")
	}

	stdout, stderr, code := srv.Vcli("", []string{"VSERV_PASSWORD=" + testenv.AdminPass}, "-u", testenv.AdminName, "user", "reset2fa", name)
	if code != 0 {
		t.Fatalf("vcli user reset2fa: exit %d\n%s%s", code, stdout, stderr)
	}
	if want := "second factor of " + name + " removed"; !strings.Contains(stdout, want) {
		t.Errorf("vcli user reset2fa printed %q, want it to say %q", stdout, want)
	}
	if _, err := session.Hello(ctx); err == nil || errors.As(err, new(*wire.Error)) {
		t.Fatalf("hello on the reset account's session: err = %v, want the connection closed", err)
	}
	if testenv.Has2FA(t, admin, name) {
		t.Fatal("has2fa = true after u2fa reset")
	}
	if !strings.Contains(srv.Stderr(), `msg=audit actor=admin action="u2fa reset" target=erin`) {
		t.Errorf("the reset is not in the audit log:\n%s", srv.Stderr())
	}

	// The factor is gone: no factor owed, the old codes mean nothing, and
	// enrolling starts over.
	c, owed := testenv.LoginPassword(t, srv, name, pass)
	if owed {
		t.Fatal("needs2fa = true after the reset")
	}
	if _, err := c.Call(ctx, "twofa", en.Recovery[0]); !errors.Is(err, client.ErrState) {
		t.Fatalf("twofa in verified after the reset: err = %v, want ERR state", err)
	}
	en2, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr after the reset: %v", err)
	}
	if testenv.OTPSecret(t, en2.URI, name, c.ServerID()) == o.Secret {
		t.Fatal("re-enrollment after a reset reused the old secret")
	}
}

func TestLogoutDiscardsAnUnconfirmedEnrollment(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	ctx := context.Background()
	const name, pass = "lena", "lena-password"
	srv.AddUser(name, pass, false)
	c := srv.Login(name, pass)
	en, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	o := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, en.URI, name, c.ServerID())}
	if err := c.TwoFA(ctx, o.Next()); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	// Start replacing the factor, then log out before confirming: the
	// pending secret must not complete a later login (twofa in state user
	// would otherwise confirm it).
	c = testenv.Login2FA(t, srv, name, pass, en.Recovery[0])
	pending, err := c.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr in verified: %v", err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	p := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, pending.URI, name, c.ServerID()), Last: o.Last}
	if _, err := c.Login(ctx, name, pass); err != nil {
		t.Fatalf("login again on the same connection: %v", err)
	}
	testenv.WantAuthFailed(t, c.TwoFA(ctx, p.Next()), "twofa with the code of an enrollment discarded by logout")
	testenv.Login2FA(t, srv, name, pass, o.Code(p.Last)) // the old factor is still in force
	if !testenv.Has2FA(t, srv.AdminClient(), name) {
		t.Fatal("has2fa = false: the discarded enrollment took the active factor along")
	}
}
