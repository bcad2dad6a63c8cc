package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/testenv"
)

// TestLogsNeverCarrySecrets drives every path that handles a secret — the
// setup token, passwords (right, wrong, changed), a TOTP enrollment with its
// secret and recovery codes, its confirmation — at debug level, then
// searches the log file and stderr for each secret.
func TestLogsNeverCarrySecrets(t *testing.T) {
	srv := testenv.StartTwoFA(t, testenv.WithArgs("-l", "debug"))
	ctx := context.Background()
	token := srv.SetupToken()
	const (
		adminPass = "admin-secret-Passw0rd"
		bobPass   = "bob-secret-Passw0rd"
		bobNew    = "bob-new-secret-Passw0rd"
		wrongPass = "wrong-secret-Passw0rd"
	)
	c := srv.Dial()
	if _, err := c.InitAdmin(ctx, "admin", adminPass, token); err != nil {
		t.Fatalf("uini: %v", err)
	}
	admin := srv.Login("admin", adminPass)
	if _, err := admin.AddUser(ctx, "bob", bobPass, false); err != nil {
		t.Fatalf("uadd: %v", err)
	}
	if _, err := srv.Dial().Login(ctx, "bob", wrongPass); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	bob := srv.Login("bob", bobPass)
	if err := bob.ChangePassword(ctx, bobPass, bobNew); err != nil {
		t.Fatalf("chpass: %v", err)
	}
	bob = srv.Login("bob", bobNew)
	enr, err := bob.Enroll(ctx, "")
	if err != nil {
		t.Fatalf("qr: %v", err)
	}
	secret := testenv.OTPSecret(t, enr.URI, "bob", bob.ServerID())
	code := testenv.OathCode(t, secret, uint64(time.Now().Unix())/testenv.TOTPStep)
	if err := bob.TwoFA(ctx, code); err != nil {
		t.Fatalf("twofa confirming the enrollment: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	logFile, err := os.ReadFile(filepath.Join(srv.DataRoot, "log", "vserv.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logFile), "logged in") {
		t.Fatalf("the log has no login records at all; the test would prove nothing:\n%s", logFile)
	}
	secrets := map[string]string{
		"setup token": token, "admin password": adminPass, "bob's password": bobPass,
		"bob's new password": bobNew, "wrong password": wrongPass, "TOTP secret": secret,
		// The 6-digit code itself is left out: digits like it occur by chance
		// in timestamps and ids.
	}
	for i, rc := range enr.Recovery {
		secrets["recovery code "+string(rune('0'+i))] = rc
	}
	for where, text := range map[string]string{"log/vserv.log": string(logFile), "stderr": srv.Stderr()} {
		for what, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the %s", where, what)
			}
		}
	}
}
