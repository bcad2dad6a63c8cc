package e2e_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

// vcli user 2fa through the binaries in developer mode: a first enrollment,
// then replacing the factor, which takes the old factor's code at login and
// the new one's to confirm.
func TestVcliUser2faEnrollsAndReenrollsWithTheLoginCode(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	ctx := context.Background()
	const name, pass = "gina", "gina-password"
	srv.AddUser(name, pass, false)
	env := []string{"VSERV_PASSWORD=" + pass}
	serverID := srv.Dial().ServerID()

	if _, stderr, exit := srv.Vcli("", env, "user", "2fa"); exit != 2 || !strings.Contains(stderr, "-u USER") {
		t.Fatalf("vcli user 2fa without -u: exit %d, stderr %q; want exit 2 asking for -u", exit, stderr)
	}

	var first *testenv.TOTP
	stdout, stderr, exit := testenv.VcliAnswering(t, srv, env, func(uri string) string {
		first = &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, uri, name, serverID)}
		return first.Next()
	}, "-u", name, "user", "2fa")
	if exit != 0 {
		t.Fatalf("vcli user 2fa: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	for _, want := range []string{"Scan this QR code", "▀", "▄", "█", "second factor active for " + name} {
		if !strings.Contains(stdout, want) {
			t.Errorf("vcli user 2fa output lacks %q:\n%s", want, stdout)
		}
	}
	uri := regexp.MustCompile(`(?m)^otpauth://\S+$`).FindString(stdout)
	if got := testenv.Zbar(t, testenv.TerminalQRToPNG(t, stdout)); got != uri {
		t.Errorf("zbarimg reads %q from the terminal QR code, want %q", got, uri)
	}

	// Replacing the factor: $VSERV_OTP answers the login, the confirmation
	// comes from standard input (a code works only once).
	var second *testenv.TOTP
	loginCode := first.Next()
	stdout, stderr, exit = testenv.VcliAnswering(t, srv, append(env, "VSERV_OTP="+loginCode), func(uri string) string {
		second = &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, uri, name, serverID), Last: first.Last}
		return second.Next()
	}, "-u", name, "user", "2fa")
	if exit != 0 {
		t.Fatalf("vcli user 2fa replacing the factor: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if second.Secret == first.Secret {
		t.Fatal("re-enrollment kept the secret")
	}
	c, _ := testenv.LoginPassword(t, srv, name, pass)
	testenv.WantAuthFailed(t, c.TwoFA(ctx, first.Code(second.Last+1)), "twofa with the replaced secret")

	// A wrong confirmation code discards the new enrollment and leaves the
	// factor in force (logins here use the recovery codes vcli printed).
	recovery := regexp.MustCompile(`(?m)^  ([a-z2-7]{16})$`).FindAllStringSubmatch(stdout, -1)
	if len(recovery) != 10 {
		t.Fatalf("vcli printed %d recovery codes, want 10:\n%s", len(recovery), stdout)
	}
	stdout, stderr, exit = testenv.VcliAnswering(t, srv, env, func(string) string { return "000000" },
		"-u", name, "--otp", recovery[0][1], "user", "2fa")
	if exit != 1 || !strings.Contains(stderr, "ERR auth") || !strings.Contains(stderr, "new enrollment is discarded") {
		t.Fatalf("vcli user 2fa with a wrong confirmation code: exit %d, want 1, ERR auth and a hint\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	testenv.Login2FA(t, srv, name, pass, recovery[1][1])
}

func TestVcliUser2faJSON(t *testing.T) {
	srv := testenv.StartTwoFA(t)
	srv.AddUser("hank", "hank-password", false)
	serverID := srv.Dial().ServerID()
	var o *testenv.TOTP
	stdout, stderr, exit := testenv.VcliAnswering(t, srv, []string{"VSERV_PASSWORD=hank-password"}, func(uri string) string {
		o = &testenv.TOTP{T: t, Secret: testenv.OTPSecret(t, uri, "hank", serverID)}
		return o.Next()
	}, "--json", "-u", "hank", "user", "2fa")
	if exit != 0 {
		t.Fatalf("vcli --json user 2fa: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var doc struct {
		OK       bool     `json:"ok"`
		Name     string   `json:"name"`
		URI      string   `json:"uri"`
		Recovery []string `json:"recovery_codes"`
	}
	if err := dec.Decode(&doc); err != nil || !doc.OK || doc.Name != "hank" {
		t.Fatalf("JSON document %+v, err %v; want the enrollment of hank", doc, err)
	}
	testenv.CheckRecoveryCodes(t, doc.Recovery)
	if dec.More() {
		t.Errorf("vcli --json user 2fa printed more than one document:\n%s", stdout)
	}
	if !testenv.Has2FA(t, srv.AdminClient(), "hank") {
		t.Fatal("has2fa = false after vcli --json user 2fa")
	}
}
