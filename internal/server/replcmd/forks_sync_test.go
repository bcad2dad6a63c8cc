package replcmd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/ledger"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

func TestIhostForksAndSyncRefuseBadArgumentsWithTheirCode(t *testing.T) {
	srv := testenv.Start(t)
	srv.AddUser("peer-b", "peer-b-password", false)
	srv.AddUser("ann", "ann-password-1", false)
	c := srv.AdminClient()
	_, _, key := peerKey(t)
	if err := c.AddHost(ctx, "127.0.0.1:7001", client.HostSpec{Role: "mirror", Key: key, Chains: []string{"vote"},
		Account: "peer-b", User: "peer-a", Pass: "p-at-b-1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddHost(ctx, "example.com/log", client.HostSpec{Role: "log", Key: key}); err != nil {
		t.Fatal(err)
	}
	badUTF8 := wire.RawMessage{0x62, 'a', 0xff}
	cases := []struct {
		name string
		args []any
		code wire.Code
		text string
	}{
		{"forks with an argument", []any{"forks", "x"}, wire.CodeProto, ""},
		{"sync with two peers", []any{"sync", "a:1", "b:1"}, wire.CodeProto, ""},
		{"sync peer not text", []any{"sync", uint64(1)}, wire.CodeProto, ""},
		{"sync peer bytes", []any{"sync", []byte("127.0.0.1:7001")}, wire.CodeProto, ""},
		{"sync peer invalid UTF-8", []any{"sync", badUTF8}, wire.CodeProto, ""},
		{"sync empty peer", []any{"sync", ""}, wire.CodeInvalid, "empty"},
		{"sync unknown peer", []any{"sync", "127.0.0.1:7999"}, wire.CodeNotFound, "not a mirror or home peer"},
		{"sync a log entry", []any{"sync", "example.com/log"}, wire.CodeNotFound, "not a mirror or home peer"},
		{"unknown operation", []any{"fork"}, wire.CodeProto, "forks or sync"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Call(ctx, "ihost", tc.args...)
			we := testenv.WantCode(t, err, tc.code, "ihost")
			if we.Text == "" || !strings.Contains(we.Text, tc.text) {
				t.Errorf("ERR text %q, want it to say %q", we.Text, tc.text)
			}
		})
	}
	// The node runs the replication workers: a round with a mirror that
	// nobody listens at ends with its connect error.
	vals, err := c.Call(ctx, "ihost", "sync", "127.0.0.1:7001")
	if err != nil {
		t.Fatalf("ihost sync of a known mirror: %v", err)
	}
	var rows []map[string]any
	if err := wire.Unmarshal(vals[0], &rows); err != nil || len(rows) != 1 || !strings.Contains(fmt.Sprint(rows[0]["last_error"]), "connect") {
		t.Fatalf("ihost sync of a mirror nobody listens at = %v, %v; want one row with its connect error", rows, err)
	}
	forks, err := c.HostForks(ctx)
	if err != nil || forks == nil || len(forks) != 0 {
		t.Fatalf("ihost forks on a server without forks = %#v, %v; want an empty list", forks, err)
	}
	ann := srv.Login("ann", "ann-password-1")
	for _, op := range [][]any{{"forks"}, {"sync"}, {"sync", "127.0.0.1:7999"}} {
		_, err := ann.Call(ctx, "ihost", op...)
		testenv.WantCode(t, err, wire.CodePerm, "ihost "+op[0].(string)+" by a user")
	}
	_, err = srv.Dial().Call(ctx, "ihost", "forks")
	testenv.WantCode(t, err, wire.CodeState, "ihost forks without login")

	// vcli replicate answers the same.
	admin := []string{"VSERV_PASSWORD=" + testenv.AdminPass}
	as := func(args ...string) []string { return append([]string{"-q", "-u", testenv.AdminName}, args...) }
	out, errOut, code := srv.Vcli("", admin, as("replicate", "127.0.0.1:7999")...)
	testenv.WantExit(t, "vcli replicate unknown peer", code, 1, out, errOut)
	if !strings.Contains(errOut, "ERR notfound") {
		t.Errorf("vcli replicate unknown peer: stderr %q", errOut)
	}
	// The node runs the replication workers: with no mirror or home entry
	// a round with all of them is one with none.
	out, errOut, code = srv.Vcli("", admin, as("replicate")...)
	testenv.WantExit(t, "vcli replicate without mirror or home entries", code, 0, out, errOut)
	out, errOut, code = srv.Vcli("", admin, as("replicate", "a:1", "b:1")...)
	testenv.WantExit(t, "vcli replicate with two peers", code, 2, out, errOut)
}

// homeLedger is a home's ledger on a store of its own, with chain m.
func homeLedger(t *testing.T, priv ed25519.PrivateKey, records int, tag string) *ledger.Ledger {
	t.Helper()
	st, err := bolt.OpenFile(ctx, filepath.Join(t.TempDir(), "home.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id := verify.ServerIDFromKey(priv.Public().(ed25519.PublicKey))
	l, err := ledger.Open(ctx, st, ledger.Config{ServerID: id, Signer: priv, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateChain(ctx, "m", true, 0, ""); err != nil {
		t.Fatal(err)
	}
	for i := range records {
		if _, err := l.Append(ctx, "m", [][]byte{testenv.NewRecord(t, map[string]any{"n": i, "tag": tag})}, ledger.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func batch(t *testing.T, l *ledger.Ledger, origin string, pub ed25519.PublicKey, n int) ledger.MirrorBatch {
	t.Helper()
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = int64(i)
	}
	entries, err := l.AbsMany(ctx, "m", seqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	proof, head, err := l.Consistency(ctx, "m", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.MirrorBatch{Meta: store.ChainMeta{Origin: origin, Name: "m", Public: true},
		Entries: entries, Checkpoint: head, Proof: proof, HomeKeys: []ed25519.PublicKey{pub}}
}

// TestIhostForksShowsMirrorAndWitnessForksAndVcliRaisesTheAlarm: a mirror
// that holds home A's chain m and was then offered another history of it,
// signed by A too, and a witness endpoint offered two checkpoints of the
// same size with other roots by one log key: `ihost forks` lists both with
// both notes verbatim; `vcli host forks` finds both notes signed by the
// pinned keys (the home entry, the log entry) and says so.
func TestIhostForksShowsMirrorAndWitnessForksAndVcliRaisesTheAlarm(t *testing.T) {
	_, aPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	aPub := aPriv.Public().(ed25519.PublicKey)
	aID := verify.ServerIDFromKey(aPub)
	one, two := homeLedger(t, aPriv, 3, "one"), homeLedger(t, aPriv, 3, "two")

	srv := testenv.Start(t)
	srv.InitAdmin()
	dir := srv.DataRoot
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	var offered []byte
	func() {
		id, _, err := secure.LoadOrCreateIdentity(dir)
		if err != nil {
			t.Fatal(err)
		}
		bst, err := bolt.OpenFile(ctx, datadir.New(dir).DBPath(), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer bst.Close()
		b, err := ledger.Open(ctx, bst, ledger.Config{ServerID: id.ServerID, Signer: id.Key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Mirror(ctx, batch(t, one, aID, aPub, 3)); err != nil {
			t.Fatal(err)
		}
		other := batch(t, two, aID, aPub, 3)
		offered = other.Checkpoint
		_, err = b.Mirror(ctx, other)
		testenv.WantCode(t, err, wire.CodeConflict, "the other history of m")
	}()
	srv = testenv.Start(t, testenv.WithDataRoot(dir), testenv.WithHTTP())
	srv.AddUser("peer-a", "peer-a-password", false)
	srv.AddUser("peer-c", "peer-c-password", false)
	c := srv.AdminClient()
	full := verify.OriginLine(aID, "m")
	held, err := c.Head(ctx, full)
	if err != nil {
		t.Fatal(err)
	}

	// A log L signs two checkpoints of size 5 with other roots.
	_, lPriv, _ := ed25519.GenerateKey(rand.Reader)
	lPub := lPriv.Public().(ed25519.PublicKey)
	lOrigin := verify.OriginLine(verify.ServerIDFromKey(lPub), "c")
	if err := c.AddHost(ctx, lOrigin, client.HostSpec{Role: "log", Key: secure.PublicKeyText(lPub)}); err != nil {
		t.Fatal(err)
	}
	var lNotes []string
	for i, old := range []int{0, 5} {
		cp := verify.Checkpoint{Origin: lOrigin, Size: 5}
		cp.Root[0] = byte(i + 1)
		n, err := verify.SignCheckpoint(cp, verify.NewNoteSigner(lOrigin, lPriv))
		if err != nil {
			t.Fatal(err)
		}
		lNotes = append(lNotes, string(n))
		body := "old " + map[int]string{0: "0", 5: "5"}[old] + "\n\n" + string(n)
		resp, err := http.Post("http://"+srv.HTTPAddr+"/witness/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[int]int{0: 200, 5: 409}[old]; resp.StatusCode != want {
			t.Fatalf("add-checkpoint %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}

	forks, err := c.HostForks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(forks) != 2 {
		t.Fatalf("ihost forks = %+v, want a mirror fork and a witness fork", forks)
	}
	m, w := forks[0], forks[1]
	if m.Kind != "mirror" || m.Chain != full || m.Held != held || m.Offered != string(offered) || m.Reason == "" || m.Ms == 0 {
		t.Errorf("mirror fork = %+v, want held %q and offered %q of %s", m, held, offered, full)
	}
	if w.Kind != "witness" || w.Chain != lOrigin || w.Held != lNotes[0] || w.Offered != lNotes[1] || w.Reason != "same size, other root" {
		t.Errorf("witness fork = %+v", w)
	}

	admin := []string{"VSERV_PASSWORD=" + testenv.AdminPass}
	as := func(args ...string) []string { return append([]string{"-q", "-u", testenv.AdminName}, args...) }
	out, errOut, code := srv.Vcli("", admin, as("host", "forks")...)
	testenv.WantExit(t, "vcli host forks without a home entry", code, 0, out, errOut)
	if !strings.Contains(out, "no peer entry pins a key for "+full) || !strings.Contains(out, "ALARM: both signed by the log") {
		t.Errorf("vcli host forks without a home entry:\n%s", out)
	}
	if !strings.Contains(out, held) || !strings.Contains(out, string(offered)) {
		t.Errorf("vcli host forks does not print both notes verbatim:\n%s", out)
	}
	if err := c.AddHost(ctx, "127.0.0.1:7002", client.HostSpec{Role: "home", Key: secure.PublicKeyText(aPub), Chains: []string{"m"},
		Account: "peer-a", User: "peer-b", Pass: "p-at-a-1"}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = srv.Vcli("", admin, as("host", "forks")...)
	testenv.WantExit(t, "vcli host forks", code, 0, out, errOut)
	if !strings.Contains(out, "ALARM: both signed by the home: the home signed two inconsistent histories of "+full) ||
		!strings.Contains(out, "held checkpoint, signed by the pinned key, verbatim:\n"+held) {
		t.Errorf("vcli host forks with the home pinned:\n%s", out)
	}
	out, errOut, code = srv.Vcli("", admin, as("--json", "host", "forks")...)
	testenv.WantExit(t, "vcli --json host forks", code, 0, out, errOut)
	var doc struct {
		OK    bool `json:"ok"`
		Forks []struct {
			Kind, Chain, Held, Offered, Pinned string
			Alarm                              bool
		} `json:"forks"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Forks) != 2 || !doc.Forks[0].Alarm || !doc.Forks[1].Alarm ||
		doc.Forks[0].Pinned != "home 127.0.0.1:7002" || doc.Forks[1].Pinned != "log "+lOrigin || doc.Forks[0].Held != held {
		t.Errorf("vcli --json host forks = %s (%v)", out, err)
	}

	// Re-pin the home with another key: neither note is its, no alarm.
	_, _, otherKey := peerKey(t)
	if _, err := c.Call(context.Background(), "ihost", "del", "127.0.0.1:7002"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddHost(ctx, "127.0.0.1:7002", client.HostSpec{Role: "home", Key: otherKey, Chains: []string{"m"},
		Account: "peer-c", User: "peer-b", Pass: "p-at-a-1"}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = srv.Vcli("", admin, as("host", "forks")...)
	testenv.WantExit(t, "vcli host forks, home with another key", code, 0, out, errOut)
	if strings.Contains(out, "ALARM: both signed by the home") || !strings.Contains(out, "held checkpoint, NOT signed by the pinned key") {
		t.Errorf("vcli host forks with another home key:\n%s", out)
	}
}
