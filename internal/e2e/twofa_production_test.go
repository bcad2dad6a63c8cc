package e2e_test

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
)

// Production mode (-P) refuses --test-kdf, so every login here costs a real
// argon2id hash (t=3, 64 MiB): this file keeps to one server and about ten
// logins.

var enrollCodeRE = regexp.MustCompile(`^[a-z2-7]{16}$`)

func TestProductionAdminEnrollsThroughVcliBeforeAdministering(t *testing.T) {
	srv := testenv.StartTwoFA(t, testenv.WithRealKDF(), testenv.WithArgs("-P"))
	ctx := context.Background()
	const admin, pass = testenv.AdminName, testenv.AdminPass
	adminEnv := []string{"VSERV_PASSWORD=" + pass}

	c := srv.Dial()
	if dev, err := c.DevMode(ctx); err != nil || dev {
		t.Fatalf("dmode: developer = %v, err = %v; want production", dev, err)
	}
	code, err := c.InitAdmin(ctx, admin, pass, srv.SetupToken())
	if err != nil {
		t.Fatalf("uini: %v", err)
	}
	if !enrollCodeRE.MatchString(code) {
		t.Fatalf("uini in production answered enrollment code %q, want 16 lowercase base32 characters", code)
	}

	// Without a factor the admin stops in state user, where only the
	// enrollment runs, and only with the enrollment code.
	c, owed := testenv.LoginPassword(t, srv, admin, pass)
	if !owed {
		t.Fatal("production: needs2fa = false for an admin without a second factor")
	}
	if _, err := c.AddUser(ctx, "bob", "bob-password-1", false); !errors.Is(err, client.ErrState) {
		t.Fatalf("uadd by an admin in state user: err = %v, want ERR state", err)
	}
	if _, err := c.ListUsers(ctx, "all"); !errors.Is(err, client.ErrState) {
		t.Fatalf("ulist by an admin in state user: err = %v, want ERR state", err)
	}
	_, err = c.Enroll(ctx, "")
	testenv.WantAuthFailed(t, err, "qr without the enrollment code")
	_, err = c.Enroll(ctx, strings.Repeat("a", 16))
	testenv.WantAuthFailed(t, err, "qr with a wrong enrollment code")
	if st := testenv.SessionState(t, c); st != "user" {
		t.Fatalf("after refused enrollment codes, state %s, want user", st)
	}
	pending, err := c.Enroll(ctx, code)
	if err != nil {
		t.Fatalf("qr with the enrollment code: %v", err)
	}

	// Ending the connection discards the unconfirmed enrollment: its codes
	// must not complete a later login.
	c.Close()
	waitForLog(t, srv, `msg="unconfirmed second-factor enrollment discarded"`, "account="+admin)
	c, _ = testenv.LoginPassword(t, srv, admin, pass)
	stale := &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, pending.URI, admin, c.ServerID())}
	testenv.WantAuthFailed(t, c.TwoFA(ctx, stale.Next()), "twofa with a code of an enrollment whose connection ended")
	if st := testenv.SessionState(t, c); st != "session" {
		t.Fatalf("after a refused twofa, state %s, want session", st)
	}

	// The enrollment code was not used up; vcli enrolls with it.
	serverID := c.ServerID()
	png := filepath.Join(t.TempDir(), "qr.png")
	var o *testenv.TOTP
	stdout, stderr, exit := testenv.VcliAnswering(t, srv, adminEnv, func(uri string) string {
		o = &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, uri, admin, serverID)} // the refused code moved nothing
		return o.Next()
	}, "-u", admin, "user", "2fa", "--code", code, "-o", png)
	if exit != 0 {
		t.Fatalf("vcli user 2fa: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	uri := regexp.MustCompile(`(?m)^otpauth://\S+$`).FindString(stdout)
	if got := testenv.Zbar(t, png); got != uri {
		t.Errorf("zbarimg reads %q from vcli's PNG, want the printed URI %q", got, uri)
	}
	if got := testenv.Zbar(t, testenv.TerminalQRToPNG(t, stdout)); got != uri {
		t.Errorf("zbarimg reads %q from the terminal QR code, want the printed URI %q", got, uri)
	}
	recovery := regexp.MustCompile(`(?m)^  ([a-z2-7]{16})$`).FindAllStringSubmatch(stdout, -1)
	if len(recovery) != 10 {
		t.Fatalf("vcli printed %d recovery codes, want 10:\n%s", len(recovery), stdout)
	}
	if !strings.Contains(stdout, "second factor active for "+admin) {
		t.Errorf("vcli user 2fa did not confirm:\n%s", stdout)
	}

	// Logging in now takes the second factor ($VSERV_OTP is exercised by
	// the developer-mode vcli test: logins here are expensive).
	stdout, stderr, exit = srv.Vcli("", adminEnv, "-u", admin, "--otp", o.Next(), "hello")
	if exit != 0 || !strings.HasPrefix(stdout, "hello from ") {
		t.Fatalf("vcli -u admin --otp CODE hello: exit %d\n%s%s", exit, stdout, stderr)
	}

	// Verified through a recovery code, the admin administers; production
	// refuses demo passwords and answers enrollment codes.
	c = testenv.Login2FA(t, srv, admin, pass, recovery[0][1])
	if !testenv.Has2FA(t, c, admin) {
		t.Fatal("has2fa = false for the admin after vcli user 2fa")
	}
	if _, err := c.AddUser(ctx, "bob", "1234", false); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("uadd with the demo password 1234: err = %v, want ERR invalid", err)
	}
	if _, err := c.AddUser(ctx, "bob", "passwordpassword", false); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("uadd with a well-known password: err = %v, want ERR invalid", err)
	}
	bobCode, err := c.AddUser(ctx, "bob", "bob-password-1", false)
	if err != nil || !enrollCodeRE.MatchString(bobCode) {
		t.Fatalf("uadd in production: code %q, err %v; want an enrollment code", bobCode, err)
	}
	resetCode, err := c.Reset2FA(ctx, "bob")
	if err != nil || !enrollCodeRE.MatchString(resetCode) || resetCode == bobCode {
		t.Fatalf("u2fa bob reset in production: code %q, err %v; want a new enrollment code", resetCode, err)
	}

	// bob holds no write right, so no factor is owed; enrolling still needs
	// the current enrollment code (the reset replaced the first one).
	bob, owed := testenv.LoginPassword(t, srv, "bob", "bob-password-1")
	if owed {
		t.Fatal("production: needs2fa = true for a plain user without a factor")
	}
	_, err = bob.Enroll(ctx, bobCode)
	testenv.WantAuthFailed(t, err, "qr with the enrollment code the reset replaced")
	if _, err := bob.Enroll(ctx, resetCode); err != nil {
		t.Fatalf("qr with the enrollment code of the reset: %v", err)
	}
	if _, err := bob.Call(ctx, "u2fa", admin, "reset"); !errors.Is(err, client.ErrPerm) {
		t.Fatalf("u2fa by a plain user: err = %v, want ERR perm", err)
	}
}

// waitForLog waits until the server's stderr has a line with every part.
func waitForLog(t testing.TB, srv *testenv.Server, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(srv.Stderr(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within 10 s", parts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
