package server_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// The command matrix of DESIGN.md §3.1 and the account commands of §3.2, in
// every state these tests can reach, over real connections to a real vserv.
// Every request is followed by a `hello` whose answer must be hello's on the
// same connection: a handler that answered twice, or not at all, shifts that
// answer and fails the test (the pyvserv lesson "exactly one reply per
// request, including error paths").

// level is a connection state the tests reach. State `user` (password
// accepted, second factor owed) needs an enrolled second factor, so this
// matrix leaves it out; the second-factor tests (twofa_*_test.go) cover what
// that state allows. lvUser and lvAdmin are both `verified`.
type level int

const (
	lvInitial level = iota // connected, clear text
	lvSession              // encrypted, not logged in
	lvUser                 // verified, role user
	lvAdmin                // verified, role admin
)

func (l level) String() string {
	return [...]string{"initial", "session", "verified-user", "verified-admin"}[l]
}

// badUTF8 is a CBOR text string whose bytes are not UTF-8.
var badUTF8 = wire.RawMessage(cborText([]byte{'a', 0xff, 0xfe}))

// cmdSpec describes one command for the matrix: where it may run, well-formed
// arguments (for the state probes) and malformed ones (ERR proto wherever the
// command may run).
type cmdSpec struct {
	name     string
	min      level
	sessOnly bool // only in state session (uini, user, pass)
	valid    []any
	bad      [][]any
}

func (s cmdSpec) allowedIn(l level) bool {
	if s.sessOnly {
		return l == lvSession
	}
	return l >= s.min
}

var (
	ct1088 = make([]byte, secure.MLKEMCTSize)
	msg48  = make([]byte, secure.HandshakeMsgLen)
)

var cmdSpecs = []cmdSpec{
	{name: "hello", bad: [][]any{{"x"}}},
	{name: "ver", bad: [][]any{{"x"}}},
	{name: "vers", bad: [][]any{{uint64(1)}}},
	{name: "id", bad: [][]any{{"x"}}},
	{name: "help", bad: [][]any{{"a", "b"}, {uint64(5)}, {nil}, {[]byte("hello")}, {badUTF8}, {[]any{"hello"}}}},
	{name: "dmode", bad: [][]any{{"x"}}},
	{name: "akey", bad: [][]any{{"x"}}},
	{name: "sess", valid: []any{"0123456789abcdef", ct1088, msg48}, bad: [][]any{
		{}, {"0123456789abcdef"}, {"0123456789abcdef", ct1088},
		{"0123456789abcdef", ct1088, msg48, msg48},
		{uint64(5), ct1088, msg48}, {nil, ct1088, msg48}, {badUTF8, ct1088, msg48},
		{"0123456789abcdef", "ct", msg48}, {"0123456789abcdef", ct1088, uint64(7)},
		{"0123456789abcdef", nil, msg48},
	}},
	{name: "quit", bad: [][]any{{"x"}}},
	{name: "exit", bad: [][]any{{"now"}}},
	{name: "rekey", min: lvSession, bad: [][]any{{"x"}}},
	{name: "tout", min: lvSession, valid: []any{uint64(60)}, bad: [][]any{
		{uint64(1), uint64(2)}, {"60"}, {-5}, {nil}, {1.5}, {true}, {[]byte{60}},
	}},
	{name: "uini", min: lvSession, sessOnly: true, valid: []any{"root", "root-password", strings.Repeat("0", 32)}, bad: [][]any{
		{}, {"a", "b"}, {"a", "b", "c", "d"}, {uint64(5), "b", "c"}, {"a", []byte("b"), "c"},
		{"a", "b", nil}, {nil, "b", "c"}, {badUTF8, "b", "c"}, {"a", badUTF8, "c"},
	}},
	{name: "user", min: lvSession, sessOnly: true, valid: []any{"bob"}, bad: [][]any{
		{}, {"a", "b"}, {uint64(5)}, {[]byte("bob")}, {nil}, {badUTF8}, {true},
	}},
	{name: "pass", min: lvSession, sessOnly: true, valid: []any{"pw"}, bad: [][]any{
		{}, {"a", "b"}, {uint64(5)}, {nil}, {badUTF8}, {[]byte("pw")},
	}},
	{name: "logout", min: lvUser, bad: [][]any{{"x"}}},
	{name: "chpass", min: lvUser, valid: []any{"old", "new"}, bad: [][]any{
		{}, {"a"}, {"a", "b", "c", "d"}, {uint64(5), "b"}, {"a", uint64(5)}, {nil, "new"},
		{"bob", "notnull", "c"}, {"bob", nil, uint64(5)}, {"bob", nil, nil}, {badUTF8, "new"},
	}},
	{name: "uadd", min: lvUser, valid: []any{"zed", "zed-password"}, bad: [][]any{
		{}, {"a"}, {"a", "b", "c"}, {uint64(5), "b"}, {"a", uint64(5)}, {nil, "b"}, {"a", nil},
		{badUTF8, "pw"}, {"a", badUTF8}, {[]byte("a"), "b"},
	}},
	{name: "aadd", min: lvUser, valid: []any{"zed", "zed-password"}, bad: [][]any{
		{}, {"a"}, {"a", "b", "c"}, {uint64(5), "b"}, {"a", nil}, {badUTF8, "pw"},
	}},
	{name: "udel", min: lvUser, valid: []any{"zed"}, bad: [][]any{
		{}, {"a", "b"}, {uint64(5)}, {nil}, {badUTF8},
	}},
	{name: "uena", min: lvUser, valid: []any{"zed", "disable"}, bad: [][]any{
		{"a"}, {"a", "enable", "c"}, {uint64(5), "enable"}, {"a", uint64(5)}, {"a", true}, {"a", nil}, {"a", badUTF8},
	}},
	{name: "ulist", min: lvUser, bad: [][]any{{"a", "b"}, {uint64(5)}, {nil}, {true}}},
	{name: "throt", min: lvUser, bad: [][]any{{"a", "b"}, {uint64(5)}, {nil}, {true}}},
}

// foundationCommands are the names §3.1 and §3.2 give that this version
// implements; `help` must list at least these.
var foundationCommands = []string{
	"aadd", "akey", "chpass", "dmode", "exit", "hello", "help", "id", "logout", "pass",
	"quit", "rekey", "sess", "throt", "tout", "uadd", "udel", "uena", "uini", "ulist",
	"user", "ver", "vers",
}

// callArgs sends [cmd, args...] with each argument encoded by the project's
// codec, except RawMessage arguments, which go as they are (invalid UTF-8).
func callArgs(t testing.TB, c *client.Client, cmd string, args []any) ([]wire.RawMessage, error) {
	t.Helper()
	enc := make([][]byte, len(args))
	for i, a := range args {
		if raw, ok := a.(wire.RawMessage); ok {
			enc[i] = raw
		} else {
			enc[i] = mustCBOR(t, a)
		}
	}
	return c.CallRaw(context.Background(), rawRequest(cmd, enc...))
}

// step is one request and what it must get.
type step struct {
	cmd   string
	args  []any
	want  wire.Code                                  // "" = OK
	check func(t *testing.T, vals []wire.RawMessage) // for OK replies
}

func (s step) String() string { return fmt.Sprintf("%s %v", s.cmd, shortArgs(s.args)) }

func shortArgs(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			if len(v) > 12 {
				v = fmt.Sprintf("%.12s…(%d bytes)", v, len(v))
			}
			parts[i] = fmt.Sprintf("%q", v)
		case []byte:
			parts[i] = fmt.Sprintf("bytes(%d)", len(v))
		case wire.RawMessage:
			parts[i] = "raw:" + hex.EncodeToString(v)
		default:
			parts[i] = fmt.Sprintf("%v", v)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// runSteps runs each step on c and proves, after each, that c is still in
// step with the server.
func runSteps(t *testing.T, c *client.Client, connID string, steps []step) {
	t.Helper()
	for _, s := range steps {
		vals, err := callArgs(t, c, s.cmd, s.args)
		if s.want == "" {
			if err != nil {
				t.Fatalf("%s: %v, want OK", s, err)
			}
			if s.check != nil {
				s.check(t, vals)
			}
		} else {
			testenv.WantCode(t, err, s.want, s.String())
		}
		expectInSync(t, c, connID, s.String())
	}
}

// okWith checks an OK reply's values against want, each decoded generically.
func okWith(want ...any) func(t *testing.T, vals []wire.RawMessage) {
	return func(t *testing.T, vals []wire.RawMessage) {
		t.Helper()
		wantEnc, err := wire.Marshal(want)
		if err != nil {
			t.Fatalf("encode want: %v", err)
		}
		got := make([]any, len(vals))
		for i, v := range vals {
			if err := wire.Unmarshal(v, &got[i]); err != nil {
				t.Fatalf("reply value %d: %v", i, err)
			}
		}
		gotEnc, _ := wire.Marshal(got)
		if string(gotEnc) != string(wantEnc) {
			t.Fatalf("reply %s, want %v", showVals(vals), want)
		}
	}
}

// matrixSteps are the generic cases for level l: unknown commands, every
// command below its state, and malformed arguments of every command allowed
// in l.
func matrixSteps(l level) []step {
	steps := []step{
		{cmd: "nosuch", want: wire.CodeProto},
		{cmd: "", want: wire.CodeProto},
		{cmd: strings.Repeat("x", 200), want: wire.CodeProto},
		{cmd: "nosuch", args: []any{"a", uint64(1)}, want: wire.CodeProto},
		{cmd: "xyzzy", args: []any{"x"}, want: wire.CodeProto},
	}
	for _, s := range cmdSpecs {
		if !s.allowedIn(l) {
			if s.name != "quit" && s.name != "exit" {
				steps = append(steps, step{cmd: s.name, args: s.valid, want: wire.CodeState})
			}
			continue
		}
		for _, b := range s.bad {
			steps = append(steps, step{cmd: s.name, args: b, want: wire.CodeProto})
		}
	}
	return steps
}

// rawProtoCases sends messages that are not well-formed requests: ERR proto, and
// the connection stays in step.
func rawProtoCases(t *testing.T, c *client.Client, connID string) {
	t.Helper()
	cases := map[string][]byte{
		"command name not UTF-8":   append(cborHead(4, 1), cborText([]byte{0xc3, 0x28})...),
		"array headed by a number": {0x82, 0x01, 0x02},
		"not an array":             mustCBOR(t, "hello"),
		"empty array":              {0x80},
		"trailing bytes":           append(mustCBOR(t, []any{"hello"}), 0x00),
		"truncated":                {0x82, 0x65, 'h', 'e'},
		"a map":                    mustCBOR(t, map[string]any{"hello": uint64(1)}),
		"break byte":               {0xff},
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		_, err := c.CallRaw(context.Background(), cases[n])
		testenv.WantCode(t, err, wire.CodeProto, n)
		expectInSync(t, c, connID, n)
	}
}

// checkID checks an `id` reply against the client's view of the server.
func checkID(c *client.Client) func(t *testing.T, vals []wire.RawMessage) {
	return func(t *testing.T, vals []wire.RawMessage) {
		t.Helper()
		var sid, site, fp, pub string
		if len(vals) < 4 || wire.Unmarshal(vals[0], &sid) != nil || wire.Unmarshal(vals[1], &site) != nil ||
			wire.Unmarshal(vals[2], &fp) != nil || wire.Unmarshal(vals[3], &pub) != nil {
			t.Fatalf("id reply %s, want server-id, site, fingerprint, public key", showVals(vals))
		}
		key, err := secure.ParsePublicKey(pub)
		if err != nil {
			t.Fatalf("id: public key: %v", err)
		}
		if sid != c.ServerID() || fp != secure.Fingerprint(key) || site == "" {
			t.Fatalf("id = %s %q %s %s; want server-id %s and the fingerprint of the key", sid, site, fp, pub, c.ServerID())
		}
		if id := c.Identity(); id != nil && !key.Equal(id) {
			t.Fatalf("id shows key %s, the handshake verified %s", pub, secure.PublicKeyText(id))
		}
	}
}

func checkHelpList(t *testing.T, vals []wire.RawMessage) {
	t.Helper()
	var names []string
	if len(vals) != 1 || wire.Unmarshal(vals[0], &names) != nil {
		t.Fatalf("help reply %s, want one array of names", showVals(vals))
	}
	if !slices.IsSorted(names) {
		t.Errorf("help lists %v, not sorted", names)
	}
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("help lists a name twice: %v", names)
	}
	for _, want := range foundationCommands {
		if !slices.Contains(names, want) {
			t.Errorf("help does not list %s: %v", want, names)
		}
	}
}

func checkUsageMentions(word string) func(t *testing.T, vals []wire.RawMessage) {
	return func(t *testing.T, vals []wire.RawMessage) {
		t.Helper()
		var usage string
		if len(vals) != 1 || wire.Unmarshal(vals[0], &usage) != nil || !strings.Contains(usage, word) {
			t.Fatalf("help %s = %s, want one usage text naming it", word, showVals(vals))
		}
	}
}

func checkVer(t *testing.T, vals []wire.RawMessage) {
	t.Helper()
	var text string
	var proto uint64
	if len(vals) != 2 || wire.Unmarshal(vals[0], &text) != nil || wire.Unmarshal(vals[1], &proto) != nil || text == "" || proto != 1 {
		t.Fatalf("ver reply %s, want a version text and protocol 1", showVals(vals))
	}
}

func checkAkey(c *client.Client) func(t *testing.T, vals []wire.RawMessage) {
	return func(t *testing.T, vals []wire.RawMessage) {
		t.Helper()
		if len(vals) != 1 {
			t.Fatalf("akey reply has %d values, want 1", len(vals))
		}
		ki, err := secure.ParseKeyInfo(vals[0])
		if err != nil {
			t.Fatalf("akey keyinfo: %v", err)
		}
		if id := c.Identity(); id != nil && !ki.ID.Equal(id) {
			t.Fatalf("akey signed by %s, the session's identity is %s", secure.Fingerprint(ki.ID), secure.Fingerprint(id))
		}
		if _, err := hex.DecodeString(ki.KID); err != nil || len(ki.KID) != 16 {
			t.Fatalf("akey kid %q, want 16 hex characters", ki.KID)
		}
	}
}

// commonSteps run in every state: the commands of `initial`.
func commonSteps(c *client.Client) []step {
	return []step{
		{cmd: "hello", check: func(t *testing.T, vals []wire.RawMessage) {
			t.Helper()
			if len(vals) != 3 {
				t.Fatalf("hello reply %s", showVals(vals))
			}
		}},
		{cmd: "ver", check: checkVer},
		{cmd: "vers", check: checkVer},
		{cmd: "id", check: checkID(c)},
		{cmd: "help", check: checkHelpList},
		{cmd: "help", args: []any{"hello"}, check: checkUsageMentions("hello")},
		{cmd: "help", args: []any{"vers"}, check: checkUsageMentions("ver")},
		{cmd: "help", args: []any{"uadd"}, check: checkUsageMentions("uadd")},
		{cmd: "help", args: []any{"nosuch"}, want: wire.CodeNotFound},
		{cmd: "help", args: []any{""}, want: wire.CodeNotFound},
		{cmd: "dmode", check: okWith(uint64(1))},
		{cmd: "akey", check: checkAkey(c)},
		// An akey is pending now, but with another kid: ERR state, and the
		// connection stays open.
		{cmd: "sess", args: []any{"0123456789abcdef", ct1088, msg48}, want: wire.CodeState},
	}
}

// mustRun runs a subtest that later ones build on and stops the test if it
// fails.
func mustRun(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

func TestCommandsInEveryState(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	ctx := context.Background()

	mustRun(t, lvInitial.String(), func(t *testing.T) {
		c := srv.DialClear()
		id := helloID(t, c)
		runSteps(t, c, id, commonSteps(c))
		runSteps(t, c, id, matrixSteps(lvInitial))
		rawProtoCases(t, c, id)
		// The clear-text messages above, malformed ones included, are in
		// both sides' transcripts: the handshake still agrees.
		if err := c.Handshake(ctx); err != nil {
			t.Fatalf("handshake after malformed clear-text messages: %v", err)
		}
		expectInSync(t, c, id, "handshake")
	})

	// Runs before any account exists: it creates the initial admin with uini.
	mustRun(t, lvSession.String(), func(t *testing.T) {
		c := srv.Dial()
		id := helloID(t, c)
		runSteps(t, c, id, commonSteps(c))
		runSteps(t, c, id, matrixSteps(lvSession))
		rawProtoCases(t, c, id)
		name64 := "a" + strings.Repeat("b", 63)
		token := srv.SetupToken()
		runSteps(t, c, id, []step{
			{cmd: "tout", check: okWith(uint64(60))},
			{cmd: "tout", args: []any{uint64(4)}, want: wire.CodeInvalid},
			{cmd: "tout", args: []any{uint64(3601)}, want: wire.CodeInvalid},
			{cmd: "tout", args: []any{uint64(0)}, want: wire.CodeInvalid},
			{cmd: "tout", args: []any{uint64(1) << 40}, want: wire.CodeInvalid},
			{cmd: "tout", args: []any{uint64(5)}, check: okWith(uint64(5))},
			{cmd: "tout", args: []any{uint64(3600)}, check: okWith(uint64(3600))},
			{cmd: "tout", check: okWith(uint64(3600))},

			{cmd: "pass", args: []any{"pw"}, want: wire.CodeState}, // no user yet
			{cmd: "user", args: []any{""}, want: wire.CodeInvalid},
			{cmd: "user", args: []any{".."}, want: wire.CodeInvalid},
			{cmd: "user", args: []any{name64 + "c"}, want: wire.CodeInvalid},
			{cmd: "user", args: []any{"a/b"}, want: wire.CodeInvalid},
			{cmd: "user", args: []any{".hidden"}, want: wire.CodeInvalid},
			{cmd: "user", args: []any{"José"}, want: wire.CodeInvalid},
			{cmd: "pass", args: []any{"pw"}, want: wire.CodeState}, // a refused name is not remembered
			{cmd: "user", args: []any{name64}},
			{cmd: "pass", args: []any{"pw"}, want: wire.CodeAuth},  // no such account
			{cmd: "pass", args: []any{"pw"}, want: wire.CodeState}, // a failed pass forgets the name

			{cmd: "uini", args: []any{"admin", "admin-password", strings.Repeat("0", 32)}, want: wire.CodePerm},
			{cmd: "uini", args: []any{"admin", "admin-password", ""}, want: wire.CodePerm},
			{cmd: "uini", args: []any{"admin", "admin-password", token + "\n"}, want: wire.CodePerm},
			{cmd: "uini", args: []any{"..", "admin-password", token}, want: wire.CodeInvalid},
			{cmd: "uini", args: []any{"", "admin-password", token}, want: wire.CodeInvalid},
			{cmd: "uini", args: []any{name64 + "c", "admin-password", token}, want: wire.CodeInvalid},
			{cmd: "uini", args: []any{"admin", strings.Repeat("p", 1025), token}, want: wire.CodeInvalid},
			{cmd: "uini", args: []any{"admin", "", token}, want: wire.CodeInvalid},
			{cmd: "uini", args: []any{testenv.AdminName, testenv.AdminPass, token}},
			{cmd: "uini", args: []any{"other", "other-password", token}, want: wire.CodeState},
			{cmd: "uini", args: []any{"other", "other-password", strings.Repeat("0", 32)}, want: wire.CodeState},
			{cmd: "ulist", want: wire.CodeState}, // uini does not log in
		})
		for i := range 3 {
			if err := c.Rekey(ctx); err != nil {
				t.Fatalf("rekey %d: %v", i, err)
			}
			expectInSync(t, c, id, "rekey")
		}
		if err := c.Handshake(ctx); err != nil {
			t.Fatalf("handshake inside the session: %v", err)
		}
		expectInSync(t, c, id, "handshake inside the session")
	})

	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	if _, err := admin.AddUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatalf("uadd bob: %v", err)
	}

	mustRun(t, lvUser.String(), func(t *testing.T) {
		c := srv.Login("bob", "bob-password")
		id := helloID(t, c)
		runSteps(t, c, id, commonSteps(c))
		runSteps(t, c, id, matrixSteps(lvUser))
		rawProtoCases(t, c, id)
		runSteps(t, c, id, []step{
			{cmd: "user", args: []any{"bob"}, want: wire.CodeState},
			{cmd: "pass", args: []any{"bob-password"}, want: wire.CodeState},
			{cmd: "ulist", want: wire.CodePerm},
			{cmd: "ulist", args: []any{"all"}, want: wire.CodePerm},
			{cmd: "uadd", args: []any{"eve", "eve-password"}, want: wire.CodePerm},
			{cmd: "aadd", args: []any{"eve", "eve-password"}, want: wire.CodePerm},
			{cmd: "udel", args: []any{"admin"}, want: wire.CodePerm},
			{cmd: "uena", args: []any{"admin", "disable"}, want: wire.CodePerm},
			{cmd: "chpass", args: []any{"admin", nil, "taken-over"}, want: wire.CodePerm},
			{cmd: "throt", check: okWith("on")},
			{cmd: "throt", args: []any{"off"}, want: wire.CodePerm},
			{cmd: "throt", args: []any{"maybe"}, want: wire.CodeInvalid},
			{cmd: "tout", args: []any{uint64(120)}, check: okWith(uint64(120))},
			{cmd: "chpass", args: []any{"wrong-password", "bob-password-2"}, want: wire.CodeAuth},
			{cmd: "chpass", args: []any{"bob-password", strings.Repeat("p", 1025)}, want: wire.CodeInvalid},
			{cmd: "chpass", args: []any{"bob-password", ""}, want: wire.CodeInvalid},
			{cmd: "chpass", args: []any{"bob-password", strings.Repeat("p", 1024)}},
			{cmd: "chpass", args: []any{strings.Repeat("p", 1024), "bob-password-2"}},
		})
		// The login survives rekeying and a new handshake.
		if err := c.Rekey(ctx); err != nil {
			t.Fatalf("rekey: %v", err)
		}
		if err := c.Handshake(ctx); err != nil {
			t.Fatalf("handshake inside the session: %v", err)
		}
		runSteps(t, c, id, []step{
			{cmd: "throt", check: okWith("on")},
			{cmd: "logout"},
			{cmd: "throt", want: wire.CodeState},
			{cmd: "logout", want: wire.CodeState},
			{cmd: "user", args: []any{"bob"}},
			{cmd: "pass", args: []any{"bob-password-2"}, check: okWith("authenticated", "bob", "user", false)},
			{cmd: "throt", check: okWith("on")},
		})
	})

	mustRun(t, lvAdmin.String(), func(t *testing.T) {
		c := srv.Login(testenv.AdminName, testenv.AdminPass)
		id := helloID(t, c)
		runSteps(t, c, id, commonSteps(c))
		runSteps(t, c, id, matrixSteps(lvAdmin))
		rawProtoCases(t, c, id)
		name64 := "Z" + strings.Repeat("z", 63)
		user := func(name, role string, enabled bool) map[string]any {
			return map[string]any{"name": name, "role": role, "enabled": enabled, "has2fa": false}
		}
		runSteps(t, c, id, []step{
			{cmd: "ulist", check: okWith([]any{user("admin", "admin", true), user("bob", "user", true)})},
			{cmd: "ulist", args: []any{"user"}, check: okWith([]any{user("bob", "user", true)})},
			{cmd: "ulist", args: []any{"admin"}, check: okWith([]any{user("admin", "admin", true)})},
			{cmd: "ulist", args: []any{"disabled"}, check: okWith([]any{})},
			{cmd: "ulist", args: []any{"bogus"}, want: wire.CodeInvalid},

			{cmd: "uadd", args: []any{"carol", "carol-password"}},
			{cmd: "uadd", args: []any{"carol", "carol-password"}, want: wire.CodeExists},
			{cmd: "aadd", args: []any{"CAROL", "carol-password"}, want: wire.CodeExists},
			{cmd: "aadd", args: []any{"dave", "dave-password"}},
			{cmd: "uadd", args: []any{"", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{"..", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{".", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{"-x", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{"a b", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{"../etc", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{name64 + "z", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "aadd", args: []any{name64 + "z", "pw-pw-pw"}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{name64, "pw-pw-pw"}},
			{cmd: "uadd", args: []any{"erin", strings.Repeat("p", 1025)}, want: wire.CodeInvalid},
			{cmd: "aadd", args: []any{"erin", strings.Repeat("p", 1025)}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{"erin", ""}, want: wire.CodeInvalid},
			{cmd: "uadd", args: []any{"erin", strings.Repeat("p", 1024)}},

			{cmd: "udel", args: []any{"nosuch"}, want: wire.CodeNotFound},
			{cmd: "udel", args: []any{".."}, want: wire.CodeInvalid},
			{cmd: "udel", args: []any{"Carol"}},
			{cmd: "udel", args: []any{"carol"}, want: wire.CodeNotFound},
			{cmd: "udel", args: []any{"admin"}, want: wire.CodePerm}, // the initial admin

			{cmd: "uena", args: []any{"nosuch", "enable"}, want: wire.CodeNotFound},
			{cmd: "uena", args: []any{"dave", "maybe"}, want: wire.CodeInvalid},
			{cmd: "uena", args: []any{"dave", "DISABLE"}, want: wire.CodeInvalid},
			{cmd: "uena", args: []any{"dave", "disable"}},
			{cmd: "ulist", args: []any{"disabled"}, check: okWith([]any{user("dave", "admin", false)})},
			{cmd: "uena", args: []any{"dave", "enable"}},
			{cmd: "ulist", args: []any{"disabled"}, check: okWith([]any{})},

			{cmd: "chpass", args: []any{"bob", nil, "bob-password-3"}},
			{cmd: "chpass", args: []any{"nosuch", nil, "x-password"}, want: wire.CodeNotFound},
			{cmd: "chpass", args: []any{"bob", nil, ""}, want: wire.CodeInvalid},
			{cmd: "chpass", args: []any{"bob", nil, strings.Repeat("p", 1025)}, want: wire.CodeInvalid},

			{cmd: "throt", check: okWith("on")},
			{cmd: "throt", args: []any{"off"}, check: okWith("off")},
			{cmd: "throt", check: okWith("off")},
			{cmd: "throt", args: []any{"on"}, check: okWith("on")},
			{cmd: "throt", args: []any{"maybe"}, want: wire.CodeInvalid},
		})
		// bob's new password, set by the admin, works.
		srv.Login("bob", "bob-password-3").Close()
		srv.Login(name64, "pw-pw-pw").Close()
	})
}

// quitCase checks that quit (or exit) answers "bye" and the connection id,
// then closes the connection with nothing more sent.
func quitCase(t *testing.T, c *client.Client, cmd string) {
	t.Helper()
	id := helloID(t, c)
	vals, err := c.Call(context.Background(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	okWith("bye", id)(t, vals)
	expectClosed(t, c.Conn().NetConn(), 10*time.Second, cmd)
}

func TestQuitSaysByeWithTheConnectionIDAndCloses(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	srv.AddUser("bob", "bob-password", false)
	for _, cmd := range []string{"quit", "exit"} {
		t.Run(cmd+" initial", func(t *testing.T) { quitCase(t, srv.DialClear(), cmd) })
		t.Run(cmd+" session", func(t *testing.T) { quitCase(t, srv.Dial(), cmd) })
		t.Run(cmd+" verified", func(t *testing.T) { quitCase(t, srv.Login("bob", "bob-password"), cmd) })
		t.Run(cmd+" admin", func(t *testing.T) { quitCase(t, srv.AdminClient(), cmd) })
	}
}

func TestLastAdminGuard(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	ctx := context.Background()
	admin := srv.AdminClient()
	id := helloID(t, admin)
	runSteps(t, admin, id, []step{
		{cmd: "udel", args: []any{"admin"}, want: wire.CodePerm},
		{cmd: "uena", args: []any{"admin", "disable"}, want: wire.CodePerm},
		{cmd: "uena", args: []any{"ADMIN", "disable"}, want: wire.CodePerm},
		{cmd: "aadd", args: []any{"dave", "dave-password"}},
		{cmd: "aadd", args: []any{"erin", "erin-password"}},
		{cmd: "uena", args: []any{"erin", "disable"}},
		{cmd: "uena", args: []any{"dave", "disable"}},
		// erin and dave are disabled: admin is the last enabled admin.
		{cmd: "uena", args: []any{"admin", "disable"}, want: wire.CodePerm},
		{cmd: "uena", args: []any{"dave", "enable"}},
		{cmd: "udel", args: []any{"erin"}},
	})
	// Another admin cannot delete the initial admin either.
	dave := srv.Login("dave", "dave-password")
	did := helloID(t, dave)
	runSteps(t, dave, did, []step{
		{cmd: "udel", args: []any{"admin"}, want: wire.CodePerm},
		{cmd: "uena", args: []any{"admin", "disable"}},
		// admin is disabled now: dave is the last enabled admin.
		{cmd: "uena", args: []any{"dave", "disable"}, want: wire.CodePerm},
		{cmd: "uena", args: []any{"admin", "enable"}},
	})
	admin = srv.Login(testenv.AdminName, testenv.AdminPass)
	if err := admin.DeleteUser(ctx, "dave"); err != nil {
		t.Fatalf("udel dave: %v", err)
	}
	id = helloID(t, admin)
	runSteps(t, admin, id, []step{
		{cmd: "uena", args: []any{"admin", "disable"}, want: wire.CodePerm},
		{cmd: "udel", args: []any{"admin"}, want: wire.CodePerm},
		{cmd: "ulist", args: []any{"admin"}, check: okWith([]any{map[string]any{"name": "admin", "role": "admin", "enabled": true, "has2fa": false}})},
	})
}

// loginErr logs in on a fresh session and returns the error.
func loginErr(t *testing.T, srv *testenv.Server, name, pass string) error {
	t.Helper()
	c := srv.Dial()
	defer c.Close()
	_, err := c.Login(context.Background(), name, pass)
	return err
}

func TestDisabledAccountLosesItsSessionAndCannotLogIn(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	ctx := context.Background()
	admin := srv.AdminClient()
	for _, n := range []string{"bob", "carol"} {
		if _, err := admin.AddUser(ctx, n, n+"-password", false); err != nil {
			t.Fatalf("uadd %s: %v", n, err)
		}
	}
	bob := srv.Login("bob", "bob-password")
	carol := srv.Login("carol", "carol-password")
	anon := srv.Dial()
	helloID(t, bob)
	if err := admin.EnableUser(ctx, "bob", false); err != nil {
		t.Fatalf("uena bob disable: %v", err)
	}
	_, err := bob.Hello(ctx)
	wantConnError(t, err, "hello on the disabled account's session")
	helloID(t, carol) // other accounts keep their sessions
	helloID(t, anon)

	disabled := testenv.WantCode(t, loginErr(t, srv, "bob", "bob-password"), wire.CodeAuth, "login to a disabled account")
	wrong := testenv.WantCode(t, loginErr(t, srv, "carol", "not-carols-password"), wire.CodeAuth, "wrong password")
	unknown := testenv.WantCode(t, loginErr(t, srv, "nobody", "bob-password"), wire.CodeAuth, "unknown account")
	if disabled.Text != wrong.Text || wrong.Text != unknown.Text || len(disabled.Extra)+len(wrong.Extra)+len(unknown.Extra) != 0 {
		t.Errorf("login failures differ: disabled %q %v, wrong password %q %v, unknown %q %v; want one text",
			disabled.Text, disabled.Extra, wrong.Text, wrong.Extra, unknown.Text, unknown.Extra)
	}
	if disabled.Text != wire.AuthFailedText {
		t.Errorf("login failure text %q, want %q", disabled.Text, wire.AuthFailedText)
	}

	if err := admin.EnableUser(ctx, "bob", true); err != nil {
		t.Fatalf("uena bob enable: %v", err)
	}
	srv.Login("bob", "bob-password").Close()
}

func TestPasswordChangeEndsTheAccountsOtherSessions(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	ctx := context.Background()
	admin := srv.AdminClient()
	for _, n := range []string{"bob", "carol"} {
		if _, err := admin.AddUser(ctx, n, n+"-password", false); err != nil {
			t.Fatalf("uadd %s: %v", n, err)
		}
	}
	b1 := srv.Login("bob", "bob-password")
	b2 := srv.Login("bob", "bob-password")
	b3 := srv.Login("bob", "bob-password")
	carol := srv.Login("carol", "carol-password")
	b1id := helloID(t, b1)

	if err := b1.ChangePassword(ctx, "bob-password", "bob-password-2"); err != nil {
		t.Fatalf("chpass: %v", err)
	}
	expectInSync(t, b1, b1id, "chpass") // the session that changed it stays
	for i, c := range []*client.Client{b2, b3} {
		_, err := c.Hello(ctx)
		wantConnError(t, err, fmt.Sprintf("hello on bob's other session %d after chpass", i+2))
	}
	helloID(t, carol)
	testenv.WantCode(t, loginErr(t, srv, "bob", "bob-password"), wire.CodeAuth, "login with the old password")

	// An admin setting the password ends every session of the account.
	b4 := srv.Login("bob", "bob-password-2")
	if err := admin.SetPassword(ctx, "bob", "bob-password-3"); err != nil {
		t.Fatalf("chpass bob null new: %v", err)
	}
	for i, c := range []*client.Client{b1, b4} {
		_, err := c.Hello(ctx)
		wantConnError(t, err, fmt.Sprintf("hello on bob's session %d after the admin set the password", i+1))
	}
	helloID(t, admin)
	helloID(t, carol)
	srv.Login("bob", "bob-password-3").Close()
}

func TestDeletedAccountLosesItsSessions(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	ctx := context.Background()
	admin := srv.AdminClient()
	if _, err := admin.AddUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatalf("uadd bob: %v", err)
	}
	bob := srv.Login("bob", "bob-password")
	if err := admin.DeleteUser(ctx, "BOB"); err != nil {
		t.Fatalf("udel BOB: %v", err)
	}
	_, err := bob.Hello(ctx)
	wantConnError(t, err, "hello on the deleted account's session")
	testenv.WantCode(t, loginErr(t, srv, "bob", "bob-password"), wire.CodeAuth, "login to a deleted account")
	// A new account of the same name is a new account.
	if _, err := admin.AddUser(ctx, "bob", "new-bob-password", false); err != nil {
		t.Fatalf("uadd bob again: %v", err)
	}
	srv.Login("bob", "new-bob-password").Close()
}

// An admin who deletes or disables their own account gets exactly one
// answer, OK, and then loses the session like every other session of it.
func TestAdminEndingTheirOwnAccountGetsOneAnswer(t *testing.T) {
	t.Parallel()
	srv := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000")) // many connections in a moment
	ctx := context.Background()
	admin := srv.AdminClient()
	for _, n := range []string{"dave", "erin"} {
		if _, err := admin.AddUser(ctx, n, n+"-password", true); err != nil {
			t.Fatalf("aadd %s: %v", n, err)
		}
	}
	for _, tc := range []struct {
		name string
		args []any
	}{
		{"dave", []any{"udel", "dave"}},
		{"erin", []any{"uena", "erin", "disable"}},
	} {
		c := srv.Login(tc.name, tc.name+"-password")
		_, err := c.Call(ctx, tc.args[0].(string), tc.args[1:]...)
		if err != nil {
			t.Fatalf("%v on one's own account: %v, want OK", tc.args, err)
		}
		expectClosed(t, c.Conn().NetConn(), 10*time.Second, fmt.Sprint(tc.args))
	}
	helloID(t, admin)
}
