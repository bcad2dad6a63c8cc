package replic_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// logVerifierKey is the signed-note vkey of a vserv chain's checkpoints:
// key name the origin line, type 0x01 (DESIGN §4.4).
func logVerifierKey(origin string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", origin, verify.KeyID(origin, 0x01, pub),
		base64.StdEncoding.EncodeToString(append([]byte{0x01}, pub...)))
}

func postCheckpoint(t *testing.T, url string, old uint64, proof [][]byte, checkpoint string) (int, string, string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n" + checkpoint)
	resp, err := http.Post(url, "text/plain", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(got)
}

// TestVservWitnessCosignsAHomesCheckpointsAndTorchwoodVerifies runs two real
// servers: a home with chain c, and a witness told to witness c's origin
// (--witness-log). The home's checkpoints, fetched over the protocol, are
// submitted over HTTP; torchwood's policy verifier (a C2SP client nobody
// here wrote) accepts the checkpoint with our cosignature; the witness keeps
// its size across a restart.
func TestVservWitnessCosignsAHomesCheckpointsAndTorchwoodVerifies(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "w", 0, 3)...)
	cp3, err := home.Admin.Head(home.Ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	origin := verify.CheckpointOrigin([]byte(cp3))
	args := testenv.WithArgs("--witness-log", origin+"="+home.KeyText())
	wit := testenv.Start(t, testenv.WithHTTP(), args)
	url := "http://" + wit.HTTPAddr + "/witness/add-checkpoint"
	wc := wit.Dial()
	wkey := wc.Identity()
	wc.Close()
	wname := verify.WitnessName(verify.ServerIDFromKey(wkey))
	wvkey := verify.CosignatureVerifierKey(wname, wkey)
	if !strings.Contains(wit.Stderr(), "witness_vkey="+wvkey) {
		t.Errorf("the witness's start log does not give its vkey %s:\n%s", wvkey, wit.Stderr())
	}

	status, ctype, line := postCheckpoint(t, url, 0, nil, cp3)
	if status != 200 || ctype != "text/plain; charset=utf-8" || !strings.HasPrefix(line, "— "+wname+" ") {
		t.Fatalf("first submission: %d %q %q, want 200 and a line by %s", status, ctype, line, wname)
	}
	text, _, _ := strings.Cut(cp3, "\n\n")
	tm, err := verify.VerifyCosignatureLine(text+"\n", line, wname, wkey)
	if err != nil {
		t.Fatalf("our verifier refuses the cosignature: %v", err)
	}
	if now := uint64(time.Now().Unix()); tm+60 < now || tm > now+60 {
		t.Errorf("cosignature time %d, want about now (%d)", tm, now)
	}

	// torchwood: the log's key, our witness as the quorum.
	policy, err := torchwood.ParsePolicy([]byte(fmt.Sprintf("log %s\nwitness w %s\nquorum w\n",
		logVerifierKey(origin, home.Key), wvkey)))
	if err != nil {
		t.Fatal(err)
	}
	cosigned := cp3 + line
	c, n, err := torchwood.VerifyCheckpoint([]byte(cosigned), policy)
	if err != nil {
		t.Fatalf("torchwood refuses the cosigned checkpoint: %v\n%s", err, cosigned)
	}
	if c.Origin != origin || c.N != 3 {
		t.Errorf("torchwood read origin %q size %d, want %q 3", c.Origin, c.N, origin)
	}
	var found bool
	for _, s := range n.Sigs {
		if s.Name == wname {
			found = true
			if ts, err := torchwood.CosignatureTimestamp(s); err != nil || uint64(ts) != tm {
				t.Errorf("torchwood reads time %d (%v), want %d", ts, err, tm)
			}
		}
	}
	if !found {
		t.Errorf("torchwood verified no signature by %s: %+v", wname, n.Sigs)
	}
	// Without our line the policy's quorum is not met.
	if _, _, err := torchwood.VerifyCheckpoint([]byte(cp3), policy); err == nil {
		t.Errorf("torchwood accepts the checkpoint without the witness's cosignature")
	}

	// The home grows; its rcons proof takes the witness from 3 to 5.
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "w", 3, 2)...)
	proof, cp5, err := home.Admin.Consistency(home.Ctx, "c", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := postCheckpoint(t, url, 3, proof, cp5); status != 200 {
		t.Fatalf("old 3 → 5: %d %q, want 200", status, body)
	}
	if status, ctype, body := postCheckpoint(t, url, 3, proof, cp5); status != 409 || ctype != "text/x.tlog.size" || body != "5\n" {
		t.Errorf("stale old 3: %d %q %q, want 409 text/x.tlog.size \"5\\n\"", status, ctype, body)
	}

	// Restarted on the same data directory, it still holds 5.
	if err := wit.Stop(); err != nil {
		t.Fatalf("stop witness: %v", err)
	}
	wit = testenv.Start(t, testenv.WithHTTP(), testenv.WithDataRoot(wit.DataRoot), args)
	url = "http://" + wit.HTTPAddr + "/witness/add-checkpoint"
	if status, ctype, body := postCheckpoint(t, url, 0, nil, cp5); status != 409 || ctype != "text/x.tlog.size" || body != "5\n" {
		t.Errorf("after restart, old 0: %d %q %q, want 409 \"5\\n\"", status, ctype, body)
	}
	if status, _, body := postCheckpoint(t, url, 5, nil, cp5); status != 200 {
		t.Errorf("after restart, old 5 again: %d %q, want 200", status, body)
	}
}

// A log added with `ihost add ORIGIN {role: log, key}` is witnessed without
// any --witness-log flag, and one removed with `ihost del` is unknown again
// (404): the witness endpoint reads the peer table.
func TestVservWitnessesTheLogsOfItsPeerTable(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "p", 0, 2)...)
	cp, err := home.Admin.Head(home.Ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	origin := verify.CheckpointOrigin([]byte(cp))
	wit := testenv.Start(t, testenv.WithHTTP())
	url := "http://" + wit.HTTPAddr + "/witness/add-checkpoint"
	if status, _, body := postCheckpoint(t, url, 0, nil, cp); status != 404 || body != "unknown log origin\n" {
		t.Fatalf("before ihost add: %d %q, want 404 unknown log origin", status, body)
	}
	wit.InitAdmin()
	admin := wit.Login(testenv.AdminName, testenv.AdminPass)
	if err := admin.AddHost(home.Ctx, origin, client.HostSpec{Role: "log", Key: home.KeyText()}); err != nil {
		t.Fatalf("ihost add %s {role: log}: %v", origin, err)
	}
	status, _, line := postCheckpoint(t, url, 0, nil, cp)
	wkey := admin.Identity()
	wname := verify.WitnessName(verify.ServerIDFromKey(wkey))
	if status != 200 {
		t.Fatalf("after ihost add: %d %q, want 200", status, line)
	}
	text, _, _ := strings.Cut(cp, "\n\n")
	if _, err := verify.VerifyCosignatureLine(text+"\n", line, wname, wkey); err != nil {
		t.Fatalf("cosignature of a log from the peer table: %v (%q)", err, line)
	}
	if err := admin.DeleteHost(home.Ctx, origin, "log"); err != nil {
		t.Fatalf("ihost del: %v", err)
	}
	if status, _, body := postCheckpoint(t, url, 2, nil, cp); status != 404 || body != "unknown log origin\n" {
		t.Fatalf("after ihost del: %d %q, want 404 unknown log origin", status, body)
	}
}
