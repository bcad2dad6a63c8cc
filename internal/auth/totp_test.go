package auth

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// setActiveSecret installs a confirmed TOTP secret directly, as a confirmed
// enrollment would.
func setActiveSecret(t *testing.T, env *testEnv, name string, secret []byte) {
	t.Helper()
	home := HomeName(name)
	sealed, err := env.store.sealer.seal(secret, totpAD(home))
	if err != nil {
		t.Fatal(err)
	}
	err = env.st.Update(t.Context(), func(tx store.WriteTx) error {
		return saveTwoFA(tx, home, &twofaRecord{Secret: sealed})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// codeAt is the 6-digit code of secret (base32) for the step containing t.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := hotp.GenerateCodeCustom(secret, uint64(at.Unix())/30, hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func check2FA(t *testing.T, env *testEnv, what, name, code string, wantOK bool) FactorResult {
	t.Helper()
	res, err := env.store.CheckSecondFactor(t.Context(), name, code)
	if wantOK {
		if err != nil {
			t.Fatalf("%s: CheckSecondFactor(%q) = %v, want success", what, code, err)
		}
	} else {
		wantAuthFailed(t, what, err)
	}
	return res
}

// RFC 6238 appendix B, SHA-1: the 8-digit values, of which a 6-digit code is
// the last six digits (the same truncated value mod 10^6).
func TestTOTPRFC6238Vectors(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	secret := []byte("12345678901234567890")
	setActiveSecret(t, env, "alice", secret)
	vectors := []struct {
		unix  int64
		eight string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
	}
	for _, v := range vectors {
		got8, err := hotp.GenerateCodeCustom(b32.EncodeToString(secret), uint64(v.unix)/30,
			hotp.ValidateOpts{Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
		if err != nil || got8 != v.eight {
			t.Fatalf("8-digit code at %d = %q, %v; want %s", v.unix, got8, err, v.eight)
		}
		env.clock.Set(time.Unix(v.unix, 0))
		check2FA(t, env, "RFC 6238 vector", "alice", v.eight[2:], true)
		check2FA(t, env, "wrong code", "alice", wrongDigits(v.eight[2:]), false)
	}
}

func wrongDigits(code string) string {
	b := []byte(code)
	b[5] = '0' + (b[5]-'0'+1)%10
	return string(b)
}

func TestTOTPStepRules(t *testing.T) {
	secret := []byte("12345678901234567890")
	enc := b32.EncodeToString(secret)
	t0 := time.Unix(1_900_000_005, 0)
	step := 30 * time.Second
	type try struct {
		at   time.Duration // code of t0+at, checked at t0
		ok   bool
		what string
	}
	tests := []struct {
		name  string
		tries []try
	}{
		{"current once", []try{{0, true, "current"}, {0, false, "same code again"}}},
		{"two steps ago", []try{{-2 * step, false, "t-2"}}},
		{"two steps ahead", []try{{2 * step, false, "t+2"}}},
		{"skew", []try{{-step, true, "t-1"}, {step, true, "t+1"}, {0, false, "t after t+1"}}},
		{"older after newer", []try{{0, true, "t"}, {-step, false, "t-1 after t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, false)
			env.mustAdd(t, "alice", "alice password", RoleUser)
			setActiveSecret(t, env, "alice", secret)
			env.clock.Set(t0)
			for _, tr := range tt.tries {
				check2FA(t, env, tr.what, "alice", codeAt(t, enc, t0.Add(tr.at)), tr.ok)
			}
		})
	}
}

func TestSecondFactorRefusesWithoutAFactor(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	env.mustAdd(t, "dora", "dora password", RoleUser)
	secret := []byte("12345678901234567890")
	setActiveSecret(t, env, "alice", secret)
	setActiveSecret(t, env, "dora", secret)
	if err := env.store.SetEnabled(t.Context(), "dora", false); err != nil {
		t.Fatal(err)
	}
	good := codeAt(t, b32.EncodeToString(secret), env.clock.Now())
	cases := []struct{ what, name, code string }{
		{"empty code", "alice", ""},
		{"spaces", "alice", "      "},
		{"letters", "alice", "abcdef"},
		{"7 digits", "alice", good + "0"},
		{"no factor enrolled", "nobody", good},
		{"disabled account", "dora", good},
		{"malformed name", "../x", good},
	}
	for _, c := range cases {
		check2FA(t, env, c.what, c.name, c.code, false)
	}
	env.mustAdd(t, "bob", "bob password", RoleUser)
	check2FA(t, env, "account without 2FA, empty code", "bob", "", false)
}

func TestSecondFactorLockout(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	secret := []byte("12345678901234567890")
	enc := b32.EncodeToString(secret)
	setActiveSecret(t, env, "alice", secret)

	// Nine failures and a success: the count starts again.
	for range 9 {
		check2FA(t, env, "wrong", "alice", "000000", false)
	}
	check2FA(t, env, "right after nine failures", "alice", codeAt(t, enc, env.clock.Now()), true)
	for i := range maxFailures2FA {
		res := check2FA(t, env, "wrong", "alice", "000000", false)
		if res.LockedNow != (i == maxFailures2FA-1) {
			t.Fatalf("failure %d: LockedNow = %v", i+1, res.LockedNow)
		}
		if res.LockedNow && !res.LockedUntil.Equal(env.clock.Now().Add(15*time.Minute)) {
			t.Fatalf("LockedUntil = %v, want now + 15 min", res.LockedUntil)
		}
	}
	env.clock.Advance(time.Minute)
	res := check2FA(t, env, "right code while locked", "alice", codeAt(t, enc, env.clock.Now()), false)
	if res.LockedNow {
		t.Fatal("a refusal during the lock reported LockedNow again")
	}
	env.clock.Advance(14 * time.Minute)
	check2FA(t, env, "right code after 15 min", "alice", codeAt(t, enc, env.clock.Now()), true)
}

// enroll runs BeginEnroll and confirms it with the current code.
func enroll(t *testing.T, env *testEnv, name string) (*Enrollment, string) {
	t.Helper()
	en, err := env.store.BeginEnroll(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(en.URI)
	if err != nil {
		t.Fatal(err)
	}
	res := check2FA(t, env, "confirming code", name, codeAt(t, key.Secret(), env.clock.Now()), true)
	if !res.Confirmed {
		t.Fatal("the first code did not report Confirmed")
	}
	return en, key.Secret()
}

func TestBeginEnroll(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "Alice", "alice password", RoleUser)
	first, err := env.store.BeginEnroll(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	uri := regexp.MustCompile(`^otpauth://totp/vserv:Alice@srv1\?algorithm=SHA1&digits=6&issuer=vserv&period=30&secret=[A-Z2-7]{32}$`)
	if !uri.MatchString(first.URI) {
		t.Fatalf("URI %q does not match %v", first.URI, uri)
	}
	img, err := png.Decode(bytes.NewReader(first.PNG))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 256 {
		t.Fatalf("PNG: %v, %v; want a 256x256 image", img.Bounds(), err)
	}
	codeRE := regexp.MustCompile(`^[a-z2-7]{16}$`)
	seen := map[string]bool{}
	for _, c := range first.Recovery {
		if !codeRE.MatchString(c) || seen[c] {
			t.Fatalf("recovery code %q malformed or repeated", c)
		}
		seen[c] = true
	}
	if len(first.Recovery) != 10 {
		t.Fatalf("%d recovery codes, want 10", len(first.Recovery))
	}
	if a, _ := env.store.Get(t.Context(), "alice"); a.Has2FA {
		t.Fatal("Has2FA is true before the enrollment is confirmed")
	}
	check2FA(t, env, "pending recovery code", "alice", first.Recovery[0], false)

	// A second BeginEnroll replaces the first.
	firstKey, _ := otp.NewKeyFromURL(first.URI)
	second, secret := enroll(t, env, "alice")
	if second.URI == first.URI {
		t.Fatal("BeginEnroll reused the secret")
	}
	env.clock.Advance(30 * time.Second)
	check2FA(t, env, "code of the replaced enrollment", "alice", codeAt(t, firstKey.Secret(), env.clock.Now()), false)
	if a, _ := env.store.Get(t.Context(), "alice"); !a.Has2FA {
		t.Fatal("Has2FA is false after confirmation")
	}

	// Re-enrolling while active: the old factor works until the new one is
	// confirmed, then only the new one.
	third, err := env.store.BeginEnroll(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	thirdKey, _ := otp.NewKeyFromURL(third.URI)
	res := check2FA(t, env, "old factor during re-enrollment", "alice", codeAt(t, secret, env.clock.Now()), true)
	if res.Confirmed {
		t.Fatal("a code of the active factor confirmed the pending one")
	}
	env.clock.Advance(30 * time.Second)
	if res := check2FA(t, env, "new factor", "alice", codeAt(t, thirdKey.Secret(), env.clock.Now()), true); !res.Confirmed {
		t.Fatal("new factor not confirmed")
	}
	env.clock.Advance(30 * time.Second)
	check2FA(t, env, "old factor after re-enrollment", "alice", codeAt(t, secret, env.clock.Now()), false)
	check2FA(t, env, "old recovery code after re-enrollment", "alice", second.Recovery[0], false)
	check2FA(t, env, "new recovery code", "alice", third.Recovery[0], true)
}

func TestCancelEnroll(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	en, err := env.store.BeginEnroll(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.store.CancelEnroll(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	key, _ := otp.NewKeyFromURL(en.URI)
	check2FA(t, env, "code of a cancelled enrollment", "alice", codeAt(t, key.Secret(), env.clock.Now()), false)
}

func TestRecoveryCodesWorkOnce(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	en, _ := enroll(t, env, "alice")
	for i, code := range en.Recovery {
		if i%2 == 1 {
			code = strings.ToUpper(code) // typed in capitals
		}
		res := check2FA(t, env, "recovery code", "alice", code, true)
		if !res.RecoveryUsed || res.RecoveryLeft != 9-i {
			t.Fatalf("code %d: %+v, want RecoveryUsed and %d left", i, res, 9-i)
		}
		check2FA(t, env, "recovery code reused", "alice", code, false)
	}
	check2FA(t, env, "made-up recovery code", "alice", "aaaaaaaaaaaaaaaa", false)
}

func TestReset2FA(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	en, secret := enroll(t, env, "alice")
	if _, err := env.store.Reset2FA(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if a, _ := env.store.Get(t.Context(), "alice"); a.Has2FA {
		t.Fatal("Has2FA after Reset2FA")
	}
	env.clock.Advance(30 * time.Second)
	check2FA(t, env, "TOTP after reset", "alice", codeAt(t, secret, env.clock.Now()), false)
	check2FA(t, env, "recovery after reset", "alice", en.Recovery[1], false)
	_, err := env.store.Reset2FA(t.Context(), "nobody")
	testenv.WantCode(t, err, wire.CodeNotFound, "Reset2FA unknown")
}

// A copy of the database must not reveal TOTP secrets or recovery codes.
func TestSecretsNotStoredInClear(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	en, secret := enroll(t, env, "alice")
	pending, err := env.store.BeginEnroll(t.Context(), "alice") // a pending one too
	if err != nil {
		t.Fatal(err)
	}
	pendingKey, _ := otp.NewKeyFromURL(pending.URI)
	data, err := os.ReadFile(env.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, pendingKey.Secret()} {
		raw, err := b32.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range [][]byte{[]byte(s), []byte(strings.ToLower(s)), raw} {
			if bytes.Contains(data, needle) {
				t.Fatalf("database file contains the TOTP secret %q", needle)
			}
		}
	}
	for _, c := range append(en.Recovery, pending.Recovery...) {
		if bytes.Contains(data, []byte(c)) {
			t.Fatalf("database file contains recovery code %s", c)
		}
	}
	// The same file with another key cannot open the secret.
	other, err := New(env.st, Options{Argon: TestArgon2, SecretKey: bytes.Repeat([]byte{7}, 32), Now: env.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(30 * time.Second)
	if _, err := other.CheckSecondFactor(t.Context(), "alice", codeAt(t, secret, env.clock.Now())); wire.CodeOf(err) != wire.CodeInternal {
		t.Fatalf("CheckSecondFactor under the wrong secret key: %v, want an internal error", err)
	}
}

func TestEnrollmentCodes(t *testing.T) {
	env := newTestEnv(t, true)
	env.mustAdd(t, "alice", "alice long password", RoleUser)
	env.mustAdd(t, "bob", "bob long password", RoleUser)
	wantAuthFailed(t, "no code issued", env.store.CheckEnrollmentCode(t.Context(), "alice", ""))
	code, err := env.store.IssueEnrollmentCode(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z2-7]{16}$`).MatchString(code) {
		t.Fatalf("enrollment code %q malformed", code)
	}
	testenv.WantCode(t, env.store.CheckEnrollmentCode(t.Context(), "ALICE", code), "", "right code")
	testenv.WantCode(t, env.store.CheckEnrollmentCode(t.Context(), "alice", code), "", "checking does not use it up")
	wantAuthFailed(t, "empty code", env.store.CheckEnrollmentCode(t.Context(), "alice", ""))
	wantAuthFailed(t, "another account", env.store.CheckEnrollmentCode(t.Context(), "bob", code))
	wantAuthFailed(t, "unknown account", env.store.CheckEnrollmentCode(t.Context(), "nobody", code))
	wantAuthFailed(t, "wrong code", env.store.CheckEnrollmentCode(t.Context(), "alice", "aaaaaaaaaaaaaaaa"))

	enroll(t, env, "alice")
	wantAuthFailed(t, "code after a confirmed enrollment", env.store.CheckEnrollmentCode(t.Context(), "alice", code))

	bobCode, err := env.store.IssueEnrollmentCode(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(24*time.Hour - time.Second)
	testenv.WantCode(t, env.store.CheckEnrollmentCode(t.Context(), "bob", bobCode), "", "code just before 24 h")
	env.clock.Advance(time.Second)
	wantAuthFailed(t, "code after 24 h", env.store.CheckEnrollmentCode(t.Context(), "bob", bobCode))
	newCode, _ := env.store.IssueEnrollmentCode(t.Context(), "bob")
	wantAuthFailed(t, "replaced code", env.store.CheckEnrollmentCode(t.Context(), "bob", bobCode))
	testenv.WantCode(t, env.store.CheckEnrollmentCode(t.Context(), "bob", newCode), "", "new code")
}

func TestDeleteRemovesSecondFactor(t *testing.T) {
	env := newTestEnv(t, false)
	env.mustAdd(t, "admin", "admin password", RoleAdmin)
	env.mustAdd(t, "alice", "alice password", RoleUser)
	_, secret := enroll(t, env, "alice")
	if err := env.store.Delete(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	env.mustAdd(t, "alice", "alice password", RoleUser)
	if a, _ := env.store.Get(t.Context(), "alice"); a.Has2FA {
		t.Fatal("re-created account inherited the second factor")
	}
	env.clock.Advance(30 * time.Second)
	check2FA(t, env, "old secret on re-created account", "alice", codeAt(t, secret, env.clock.Now()), false)
}
