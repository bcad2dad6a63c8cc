package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/wire"
)

// Helpers of the second-factor tests, in internal/server and internal/e2e.
// Codes come from Debian's oathtool and QR codes are read by Debian's
// zbarimg: implementations that share nothing with pquerna/otp, so a bug
// there cannot hide in the test's expectations.

// TOTPStep is the seconds per TOTP step (RFC 6238 default, what every app
// speaks).
const TOTPStep = 30

// StartTwoFA starts a developer-mode server for these tests. Each login is a
// new connection with its own handshake, so the per-IP handshake rate is
// raised (the backoff under test is separate from it).
func StartTwoFA(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return Start(t, append([]Option{WithArgs("--rate-ip", "1000")}, opts...)...)
}

// NeedTool returns a tool's path, failing (never skipping) when it is not
// installed: these tests are the acceptance criteria.
func NeedTool(t testing.TB, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is missing: run `make test-deps` as root (or apt-get install %s); the 2FA tests check vserv against it", tool, pkg)
	}
	return path
}

// OathCode is oathtool's TOTP code for a time step.
func OathCode(t testing.TB, secret string, step uint64) string {
	t.Helper()
	tool := NeedTool(t, "oathtool", "oathtool")
	out, err := exec.Command(tool, "--totp", "-b", secret, fmt.Sprintf("--now=@%d", step*TOTPStep)).CombinedOutput()
	if err != nil {
		t.Fatalf("oathtool: %v\n%s", err, out)
	}
	code := strings.TrimSpace(string(out))
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
		t.Fatalf("oathtool printed %q, want 6 digits", code)
	}
	return code
}

// Zbar decodes the QR code in an image file with zbarimg.
func Zbar(t testing.TB, path string) string {
	t.Helper()
	tool := NeedTool(t, "zbarimg", "zbar-tools")
	out, err := exec.Command(tool, "--raw", "-q", path).Output()
	if err != nil {
		t.Fatalf("zbarimg %s: %v (no QR code found?)", path, err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// OTPSecret checks an otpauth URI against what authenticator apps and the
// issue expect, and returns its base32 secret.
func OTPSecret(t testing.TB, uri, account, serverID string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("otpauth URI %q: %v", uri, err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("URI %q: want otpauth://totp/...", uri)
	}
	if want := "/vserv:" + account + "@" + serverID; u.Path != want {
		t.Errorf("URI label = %q, want %q", u.Path, want)
	}
	q := u.Query()
	for key, want := range map[string]string{"issuer": "vserv", "algorithm": "SHA1", "digits": "6", "period": "30"} {
		if got := q.Get(key); got != want {
			t.Errorf("URI %s = %q, want %q", key, got, want)
		}
	}
	secret := q.Get("secret")
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(secret) { // 160 bits
		t.Fatalf("URI secret %q: want 32 base32 characters (160 bits)", secret)
	}
	return secret
}

// CheckRecoveryCodes checks the ten recovery codes' form and that they differ.
func CheckRecoveryCodes(t testing.TB, codes []string) {
	t.Helper()
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes, want 10", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !regexp.MustCompile(`^[a-z2-7]{16}$`).MatchString(c) {
			t.Errorf("recovery code %q: want 16 lowercase base32 characters", c)
		}
		if seen[c] {
			t.Errorf("recovery code %q appears twice", c)
		}
		seen[c] = true
	}
}

// TOTP hands out codes the server must accept, in increasing time steps,
// as an authenticator app would. The server accepts the current step ±1 and
// only steps after the last accepted one, so at most three logins fit in one
// 30-second step; Next waits for the clock only beyond that.
type TOTP struct {
	T      testing.TB
	Secret string // base32, as OTPSecret returns it
	Last   uint64 // the last step handed out; 0 before the first
}

// CurrentTOTPStep is the TOTP step of a moment.
func CurrentTOTPStep(now time.Time) uint64 { return uint64(now.Unix()) / TOTPStep }

// Next returns the code of the earliest step the server accepts now and has
// not seen.
func (o *TOTP) Next() string {
	o.T.Helper()
	for {
		now := time.Now()
		cur := CurrentTOTPStep(now)
		step := max(o.Last+1, cur-1)
		if now.Unix()%TOTPStep >= TOTPStep-3 {
			// cur-1 could fall out of the window before the server sees it.
			step = max(step, cur)
		}
		if step <= cur+1 {
			o.Last = step
			return OathCode(o.T, o.Secret, step)
		}
		wait := time.Until(time.Unix(int64((step-1)*TOTPStep), 0)) + 50*time.Millisecond
		o.T.Logf("waiting %v for TOTP step %d", wait.Round(time.Millisecond), step)
		time.Sleep(wait)
	}
}

// Code returns the code of an explicit step (for refusals).
func (o *TOTP) Code(step uint64) string { return OathCode(o.T, o.Secret, step) }

// LoginPassword dials and sends user + pass; it reports whether a factor is owed.
func LoginPassword(t testing.TB, srv *Server, name, pass string) (*client.Client, bool) {
	t.Helper()
	c := srv.Dial()
	l, err := c.Login(context.Background(), name, pass)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return c, l.Needs2FA
}

// Login2FA logs in with a second factor and fails unless both steps pass.
func Login2FA(t testing.TB, srv *Server, name, pass, code string) *client.Client {
	t.Helper()
	c, owed := LoginPassword(t, srv, name, pass)
	if !owed {
		t.Fatalf("login %s: needs2fa = false, want true", name)
	}
	if err := c.TwoFA(context.Background(), code); err != nil {
		t.Fatalf("login %s: twofa %q: %v", name, code, err)
	}
	return c
}

// SessionState finds a connection's state without changing it: `user NAME` runs
// only in session (and only remembers a name), `ulist` only in verified.
func SessionState(t testing.TB, c *client.Client) string {
	t.Helper()
	ctx := context.Background()
	_, err := c.Call(ctx, "user", "state-probe")
	if err == nil {
		return "session"
	}
	if !errors.Is(err, client.ErrState) {
		t.Fatalf("state probe `user`: %v", err)
	}
	_, err = c.Call(ctx, "ulist")
	switch {
	case errors.Is(err, client.ErrState):
		return "user"
	case err == nil, errors.Is(err, client.ErrPerm):
		return "verified"
	}
	t.Fatalf("state probe `ulist`: %v", err)
	return ""
}

// WantAuthFailed fails unless err is the one login-failure reply.
func WantAuthFailed(t testing.TB, err error, what string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeAuth || we.Text != wire.AuthFailedText {
		t.Fatalf("%s: err = %v, want ERR auth %q", what, err, wire.AuthFailedText)
	}
}

// Has2FA reads an account's has2fa flag through an admin session.
func Has2FA(t testing.TB, admin *client.Client, name string) bool {
	t.Helper()
	users, err := admin.ListUsers(context.Background(), "all")
	if err != nil {
		t.Fatalf("ulist: %v", err)
	}
	for _, u := range users {
		if u.Name == name {
			return u.Has2FA
		}
	}
	t.Fatalf("ulist has no %s: %+v", name, users)
	return false
}

// WriteTemp writes data to a file in a fresh temporary directory.
func WriteTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var otpauthRE = regexp.MustCompile(`otpauth://[^"\s]+`)

// VcliAnswering runs vcli against srv like a person at a terminal would:
// it reads standard output until an otpauth URI appears (alone on its line
// or inside JSON), then types
// answer(URI) and a newline on standard input.
func VcliAnswering(t testing.TB, srv *Server, env []string, answer func(uri string) string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	host, port, _ := strings.Cut(srv.Addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin(t, "vcli"), append([]string{"-n", host, "-p", port}, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "VSERV_PASSWORD=", "VSERV_OTP="), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vcli: %v", err)
	}
	var outBuf strings.Builder
	sc := bufio.NewScanner(out)
	answered := false
	for sc.Scan() {
		line := sc.Text()
		outBuf.WriteString(line + "\n")
		if uri := otpauthRE.FindString(line); !answered && uri != "" {
			answered = true
			fmt.Fprintln(stdin, answer(uri))
			stdin.Close()
		}
	}
	if !answered {
		stdin.Close()
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("run vcli: %v", err)
	}
	return outBuf.String(), errBuf.String(), exit
}

// TerminalQRToPNG turns the half-block QR code that vcli prints back into
// an image (each cell is two modules stacked: █ light over light, ' ' dark
// over dark, ▀ light over dark, ▄ dark over light), so that zbarimg can
// check that a camera would read the same URI from the terminal.
func TerminalQRToPNG(t testing.TB, out string) string {
	t.Helper()
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		if strings.ContainsAny(line, "█▀▄") && strings.Trim(line, "█▀▄ ") == "" {
			rows = append(rows, line)
		}
	}
	if len(rows) < 10 {
		t.Fatalf("no half-block QR code in the output:\n%s", out)
	}
	const scale = 6
	width := 0
	for _, r := range rows {
		width = max(width, len([]rune(r)))
	}
	img := image.NewGray(image.Rect(0, 0, (width+8)*scale, (2*len(rows)+8)*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff // a light margin around whatever vcli printed
	}
	set := func(x, y int, light bool) {
		v := color.Gray{Y: 0}
		if light {
			v.Y = 0xff
		}
		for dy := range scale {
			for dx := range scale {
				img.SetGray((x+4)*scale+dx, (y+4)*scale+dy, v)
			}
		}
	}
	for y, r := range rows {
		for x, ch := range []rune(r) {
			top, bottom := ch == '█' || ch == '▀', ch == '█' || ch == '▄'
			set(x, 2*y, top)
			set(x, 2*y+1, bottom)
		}
	}
	path := filepath.Join(t.TempDir(), "terminal-qr.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}
