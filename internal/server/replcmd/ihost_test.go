package replcmd_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

var ctx = context.Background()

// peerKey is a peer's identity key, as a second server's would be.
func peerKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv, secure.PublicKeyText(pub)
}

// mirrorSpec is a valid `ihost add` of a mirror whose peer account is
// account.
func mirrorSpec(key, account string) map[string]any {
	return map[string]any{"role": "mirror", "key": key, "chains": []string{"vote"}, "account": account, "user": "peer-here", "pass": "there-password-1"}
}

func TestIhostAddRefusesBadArgumentsWithTheirCode(t *testing.T) {
	srv := testenv.Start(t)
	srv.AddUser("peer-b", "peer-b-password", false)
	c := srv.AdminClient()
	_, _, key := peerKey(t)
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range m {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	mirror := mirrorSpec(key, "peer-b")
	witness := map[string]any{"role": "witness", "key": key, "name": "vserv/0123456789abcdef0123456789abcdef"}
	log := map[string]any{"role": "log", "key": key}
	badUTF8 := wire.RawMessage{0x62, 'a', 0xff}
	cases := []struct {
		name string
		args []any
		code wire.Code
	}{
		{"no operation", []any{}, wire.CodeProto},
		{"unknown operation", []any{"put", "b:1", mirror}, wire.CodeProto},
		{"operation not text", []any{uint64(1)}, wire.CodeProto},
		{"add without fields", []any{"add", "b:1"}, wire.CodeProto},
		{"add with one argument too many", []any{"add", "b:1", mirror, "x"}, wire.CodeProto},
		{"list with an argument", []any{"list", "x"}, wire.CodeProto},
		{"del without peer", []any{"del"}, wire.CodeProto},
		{"peer not text", []any{"add", []byte("b:1"), mirror}, wire.CodeProto},
		{"fields not a map", []any{"add", "b:1", []string{"mirror"}}, wire.CodeProto},
		{"role not text", []any{"add", "b:1", with(mirror, "role", uint64(1))}, wire.CodeProto},
		{"chains not an array", []any{"add", "b:1", with(mirror, "chains", "vote")}, wire.CodeProto},
		{"chain not text", []any{"add", "b:1", with(mirror, "chains", []any{uint64(1)})}, wire.CodeProto},
		{"pass null", []any{"add", "b:1", with(mirror, "pass", wire.RawMessage{0xf6})}, wire.CodeProto},
		{"peer invalid UTF-8", []any{"add", badUTF8, mirror}, wire.CodeProto},
		{"pass invalid UTF-8", []any{"add", "b:1", with(mirror, "pass", badUTF8)}, wire.CodeProto},
		{"unknown field", []any{"add", "b:1", with(mirror, "hops", "1")}, wire.CodeInvalid},
		{"no role", []any{"add", "b:1", with(mirror, "role", nil)}, wire.CodeInvalid},
		{"unknown role", []any{"add", "b:1", with(mirror, "role", "friend")}, wire.CodeInvalid},
		{"no key", []any{"add", "b:1", with(mirror, "key", nil)}, wire.CodeInvalid},
		{"key not base64", []any{"add", "b:1", with(mirror, "key", "not a key")}, wire.CodeInvalid},
		{"key of 31 bytes", []any{"add", "b:1", with(mirror, "key", secure.PublicKeyText(make([]byte, 31)))}, wire.CodeInvalid},
		{"key a fingerprint", []any{"add", "b:1", with(mirror, "key", secure.Fingerprint(make([]byte, 32)))}, wire.CodeInvalid},
		{"mirror without port", []any{"add", "b", mirror}, wire.CodeInvalid},
		{"mirror port 0", []any{"add", "b:0", mirror}, wire.CodeInvalid},
		{"mirror port 65536", []any{"add", "b:65536", mirror}, wire.CodeInvalid},
		{"mirror host with a space", []any{"add", "b c:1", mirror}, wire.CodeInvalid},
		{"mirror a URL", []any{"add", "http://b:1", mirror}, wire.CodeInvalid},
		{"mirror without chains", []any{"add", "b:1", with(mirror, "chains", nil)}, wire.CodeInvalid},
		{"mirror bad chain name", []any{"add", "b:1", with(mirror, "chains", []string{"Vote"})}, wire.CodeInvalid},
		{"mirror of a chain not here", []any{"add", "b:1", with(mirror, "chains", []string{"nochain"})}, wire.CodeNotFound},
		{"mirror without account", []any{"add", "b:1", with(mirror, "account", nil)}, wire.CodeInvalid},
		{"mirror without user", []any{"add", "b:1", with(mirror, "user", nil)}, wire.CodeInvalid},
		{"mirror without pass", []any{"add", "b:1", with(mirror, "pass", nil)}, wire.CodeInvalid},
		{"mirror with a name", []any{"add", "b:1", with(mirror, "name", "w")}, wire.CodeInvalid},
		{"mirror bad user name", []any{"add", "b:1", with(mirror, "user", "a b")}, wire.CodeInvalid},
		{"mirror account missing", []any{"add", "b:1", with(mirror, "account", "nobody")}, wire.CodeNotFound},
		{"mirror account an admin", []any{"add", "b:1", with(mirror, "account", testenv.AdminName)}, wire.CodeInvalid},
		{"witness not a URL", []any{"add", "w:80", witness}, wire.CodeInvalid},
		{"witness ftp URL", []any{"add", "ftp://w/witness", witness}, wire.CodeInvalid},
		{"witness URL with query", []any{"add", "http://w/witness?x=1", witness}, wire.CodeInvalid},
		{"witness URL with credentials", []any{"add", "http://u:p@w/witness", witness}, wire.CodeInvalid},
		{"witness without name", []any{"add", "http://w/witness", with(witness, "name", nil)}, wire.CodeInvalid},
		{"witness name with a space", []any{"add", "http://w/witness", with(witness, "name", "a b")}, wire.CodeInvalid},
		{"witness with an account", []any{"add", "http://w/witness", with(witness, "account", "peer-b")}, wire.CodeInvalid},
		{"log origin with a space", []any{"add", "vserv/x y", log}, wire.CodeInvalid},
		{"log origin with a plus", []any{"add", "example.com/log+1", log}, wire.CodeInvalid},
		{"log bad vserv origin", []any{"add", "vserv/nothex/vote", log}, wire.CodeInvalid},
		{"log vserv origin bad chain", []any{"add", "vserv/0123456789abcdef0123456789abcdef/Vote", log}, wire.CodeInvalid},
		{"log empty origin", []any{"add", "", log}, wire.CodeInvalid},
		{"log with chains", []any{"add", "example.com/log", with(log, "chains", []string{"vote"})}, wire.CodeInvalid},
		{"peer over 512 bytes", []any{"add", strings.Repeat("a", 520) + ":1", mirror}, wire.CodeLimit},
		{"pass over 1024 bytes", []any{"add", "b:1", with(mirror, "pass", strings.Repeat("p", 1025))}, wire.CodeLimit},
		{"over 100 chains", []any{"add", "b:1", with(mirror, "chains", slices.Repeat([]string{"vote"}, 101))}, wire.CodeLimit},
		{"del unknown peer", []any{"del", "b:1"}, wire.CodeNotFound},
		{"del unknown role", []any{"del", "b:1", "friend"}, wire.CodeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Call(ctx, "ihost", tc.args...)
			we := testenv.WantCode(t, err, tc.code, "ihost")
			if we.Text == "" {
				t.Error("the ERR text is empty")
			}
		})
	}
	hosts, err := c.ListHosts(ctx)
	if err != nil || len(hosts) != 0 {
		t.Fatalf("after the refusals, ihost list = %+v, %v; want no peer", hosts, err)
	}
	if _, err := c.Hello(ctx); err != nil {
		t.Fatalf("the connection did not survive the refusals: %v", err)
	}
}

func TestIhostNeedsAnAdmin(t *testing.T) {
	srv := testenv.Start(t)
	srv.AddUser("ann", "ann-password-1", false)
	_, _, key := peerKey(t)
	anon := srv.Dial()
	_, err := anon.Call(ctx, "ihost", "list")
	testenv.WantCode(t, err, wire.CodeState, "ihost list without login")
	ann := srv.Login("ann", "ann-password-1")
	_, err = ann.Call(ctx, "ihost", "list")
	testenv.WantCode(t, err, wire.CodePerm, "ihost list by a user")
	err = ann.AddHost(ctx, "example.com/log", client.HostSpec{Role: "log", Key: key})
	testenv.WantCode(t, err, wire.CodePerm, "ihost add by a user")
}

func TestIhostAddListDelRoundTripSurvivesRestart(t *testing.T) {
	srv := testenv.Start(t)
	srv.AddUser("peer-b", "peer-b-password", false)
	c := srv.AdminClient()
	_, _, keyB := peerKey(t)
	_, _, keyW := peerKey(t)
	_, _, keyL := peerKey(t)
	origin := "vserv/0123456789abcdef0123456789abcdef/vote"
	adds := []struct {
		peer string
		spec client.HostSpec
	}{
		{"127.0.0.1:7001", client.HostSpec{Role: "mirror", Key: keyB, Chains: []string{"vote", "donation", "vote"}, Account: "peer-b", User: "peer-a", Pass: "p-at-b-1"}},
		{"127.0.0.1:7001", client.HostSpec{Role: "home", Key: keyB, Chains: []string{"theirs"}, Account: "peer-b", User: "peer-a", Pass: "p-at-b-1"}},
		{"https://w.example/witness", client.HostSpec{Role: "witness", Key: keyW, Name: "w.example/witness"}},
		{origin, client.HostSpec{Role: "log", Key: keyL}},
	}
	for _, a := range adds {
		if err := c.AddHost(ctx, a.peer, a.spec); err != nil {
			t.Fatalf("ihost add %s %s: %v", a.spec.Role, a.peer, err)
		}
	}
	err := c.AddHost(ctx, adds[0].peer, adds[0].spec)
	testenv.WantCode(t, err, wire.CodeExists, "the same mirror again")
	want := []client.HostInfo{
		{Peer: "127.0.0.1:7001", Role: "home", Key: keyB, Chains: []string{"theirs"}, Account: "peer-b"},
		{Peer: origin, Role: "log", Key: keyL, Chains: []string{}},
		{Peer: "127.0.0.1:7001", Role: "mirror", Key: keyB, Chains: []string{"donation", "vote"}, Account: "peer-b"},
		{Peer: "https://w.example/witness", Role: "witness", Key: keyW, Name: "w.example/witness", Chains: []string{}},
	}
	check := func(c *client.Client, want []client.HostInfo, when string) {
		t.Helper()
		got, err := c.ListHosts(ctx)
		if err != nil {
			t.Fatalf("%s: ihost list: %v", when, err)
		}
		// The replication workers dial the mirror and home entries (nobody
		// listens there: their last_error says so); the others have no
		// status.
		if !slices.EqualFunc(got, want, func(a, b client.HostInfo) bool {
			return a.Peer == b.Peer && a.Role == b.Role && a.Key == b.Key && a.Name == b.Name && slices.Equal(a.Chains, b.Chains) &&
				a.Account == b.Account && a.Hops == 0 && a.Size == 0 && a.LagEntries == 0 && a.LagSeconds == 0 &&
				(a.LastError == "" || a.Role == "mirror" || a.Role == "home") && a.Forks == 0
		}) {
			t.Fatalf("%s: ihost list =\n%+v\nwant\n%+v", when, got, want)
		}
	}
	check(c, want, "after add")
	// The raw row has exactly the keys of the protocol.
	vals, err := c.Call(ctx, "ihost", "list")
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	if err := wire.Unmarshal(vals[0], &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if wantKeys := []string{"account", "chains", "forks", "hops", "key", "lag_entries", "lag_seconds", "last_error", "name", "peer", "role", "size"}; !slices.Equal(keys, wantKeys) {
		t.Errorf("an ihost list row has keys %v, want %v (and never the password)", keys, wantKeys)
	}
	c.Close()

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	srv = testenv.Start(t, testenv.WithDataRoot(srv.DataRoot))
	c = srv.Login(testenv.AdminName, testenv.AdminPass)
	check(c, want, "after a restart")

	if err := c.DeleteHost(ctx, "127.0.0.1:7001", "home"); err != nil {
		t.Fatalf("ihost del home: %v", err)
	}
	check(c, []client.HostInfo{want[1], want[2], want[3]}, "after del of one role")
	if err := c.DeleteHost(ctx, origin, ""); err != nil {
		t.Fatalf("ihost del log: %v", err)
	}
	check(c, []client.HostInfo{want[2], want[3]}, "after del of the log")
	err = c.DeleteHost(ctx, origin, "")
	testenv.WantCode(t, err, wire.CodeNotFound, "ihost del again")
}

func TestIhostPeerPasswordIsSealedInTheDatabase(t *testing.T) {
	srv := testenv.Start(t)
	srv.AddUser("peer-b", "peer-b-password", false)
	c := srv.AdminClient()
	_, _, key := peerKey(t)
	const pass = "pass-we-use-at-b-Zq7xW"
	spec := client.HostSpec{Role: "mirror", Key: key, Chains: []string{"vote"}, Account: "peer-b", User: "peer-a", Pass: pass}
	if err := c.AddHost(ctx, "127.0.0.1:7001", spec); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(filepath.Join(srv.DataRoot, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(pass)) {
		t.Fatal("the peer password is in ledger.db in clear")
	}
	if !bytes.Contains(db, []byte("127.0.0.1:7001")) {
		t.Fatal("the peer is not in ledger.db at all: the check above proves nothing")
	}
	if log, _ := os.ReadFile(filepath.Join(srv.DataRoot, "log", "vserv.log")); bytes.Contains(log, []byte(pass)) {
		t.Fatal("the peer password is in the server log")
	}
	if strings.Contains(srv.Stderr(), pass) {
		t.Fatal("the peer password is on the server's stderr")
	}
}
