package replic_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// copyDir copies a stopped server's data directory as a backup would.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.RemoveAll(to); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", from, to, err, out)
	}
}

// putWhenReleased appends records once the check at start has released
// the chain: until then rput is ERR conflict "held".
func putWhenReleased(t *testing.T, c *client.Client, chain string, recs [][]byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.PutRecords(t.Context(), chain, recs, false)
		if err == nil {
			return
		}
		if !errors.Is(err, client.ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("rput %s after the start: %v", chain, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func headSize(t *testing.T, c *client.Client, chain string) (uint64, string) {
	t.Helper()
	head, err := c.Head(t.Context(), chain)
	if err != nil {
		t.Fatalf("rhead %s: %v", chain, err)
	}
	cp, err := verify.ParseLogCheckpoint(strings.SplitN(head, "\n\n", 2)[0] + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size, head
}

// TestRestoredDataDirectoryIsHeldUntilItsWitnessAgrees runs home A and
// witness W, real servers: A writes 10 (W cosigns), a backup is taken, A
// writes 10 more (W cosigns 20); with the backup restored in place A
// refuses writes on the chain saying W holds 20 and this directory only 10,
// still serves reads, and signs nothing W would call a fork; `vserv resume`
// on it says "behind" and exits 1; with the newest directory restored
// instead A is released within seconds and takes writes.
func TestRestoredDataDirectoryIsHeldUntilItsWitnessAgrees(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	head, err := home.Admin.Head(home.Ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	origin := verify.CheckpointOrigin([]byte(head))
	wit, wname := witnessOf(t, "", origin, home.KeyText())
	wc := wit.Dial()
	wpub := wc.Identity()
	wc.Close()
	wurl := "http://" + wit.HTTPAddr + "/witness"
	if err := home.Admin.AddHost(home.Ctx, wurl, client.HostSpec{Role: "witness", Key: secure.PublicKeyText(wpub), Name: wname, Chains: []string{"c"}}); err != nil {
		t.Fatalf("home: ihost add witness: %v", err)
	}
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "a", 0, 10)...)
	waitCosigned(t, home.Admin, 10, wname)
	data := home.Srv.DataRoot
	home.Admin.Close()
	if err := home.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(t, data, backup)

	start := func() (*testenv.Server, *client.Client) {
		srv := testenv.Start(t, testenv.WithDataRoot(data))
		return srv, srv.Login(testenv.AdminName, testenv.AdminPass)
	}
	srv, admin := start()
	putWhenReleased(t, admin, "c", testenv.Numbered(t, "b", 10, 10))
	waitCosigned(t, admin, 20, wname)
	admin.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	newest := filepath.Join(t.TempDir(), "newest")
	copyDir(t, data, newest)

	// The old backup restored in place, the heads file with it.
	copyDir(t, backup, data)
	srv, admin = start()
	testenv.WaitLog(t, srv, "chain held")
	_, err = admin.PutRecords(t.Context(), "c", testenv.Numbered(t, "x", 10, 1), false)
	e := testenv.WantCode(t, err, "conflict", "rput on the restored chain")
	if !strings.Contains(e.Text, "holds size 20, this data directory only 10") {
		t.Errorf("rput refusal %q does not say why", e.Text)
	}
	if n, _ := headSize(t, admin, "c"); n != 10 {
		t.Errorf("rhead on the held chain: size %d, want 10", n)
	}
	if !strings.Contains(srv.Stderr(), "level=ERROR") || !strings.Contains(srv.Stderr(), "restored from an older copy") {
		t.Errorf("the restored server logged no ERROR saying why; stderr:\n%s", srv.Stderr())
	}
	admin.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(wit.Stderr(), "FORK") {
		t.Errorf("the witness saw a fork: the restored server signed a conflicting checkpoint; witness stderr:\n%s", wit.Stderr())
	}

	out, errOut, code := testenv.RunCmd(t, testenv.Bin(t, "vserv"), "resume", "-r", data)
	t.Logf("vserv resume (restored):\n%s%s", out, errOut)
	if code == 0 || !strings.Contains(out, "behind") || !strings.Contains(out, "holds size 20") {
		t.Errorf("vserv resume on the restored directory: exit %d, want non-zero saying behind; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// resume itself signed nothing either.
	if strings.Contains(wit.Stderr(), "FORK") {
		t.Errorf("the witness saw a fork after vserv resume; witness stderr:\n%s", wit.Stderr())
	}

	// The newest directory restored instead: released, writes go on.
	copyDir(t, newest, data)
	out, errOut, code = testenv.RunCmd(t, testenv.Bin(t, "vserv"), "resume", "-r", data)
	if code != 0 || !strings.Contains(out, "consistent") {
		t.Errorf("vserv resume on the newest directory: exit %d, want 0 saying consistent; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	srv, admin = start()
	defer admin.Close()
	testenv.WaitLog(t, srv, "chain released")
	testenv.Put(t, admin, "c", false, testenv.Numbered(t, "c", 20, 1)...)
	waitCosigned(t, admin, 21, wname)
}

// TestPeerCheckReleasesAfterTheTimeoutWhenAWitnessIsUnreachable: a witness
// on a closed port holds the chain at start for --peer-check-timeout, then
// the chain takes writes again with a WARN naming the witness.
func TestPeerCheckReleasesAfterTheTimeoutWhenAWitnessIsUnreachable(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	pub, _, _ := ed25519.GenerateKey(nil)
	wurl := "http://" + freeAddr(t) + "/witness"
	if err := home.Admin.AddHost(home.Ctx, wurl, client.HostSpec{Role: "witness", Key: secure.PublicKeyText(pub), Name: "w.example/w", Chains: []string{"c"}}); err != nil {
		t.Fatalf("ihost add witness: %v", err)
	}
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "a", 0, 2)...)
	home.Admin.Close()
	if err := home.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	srv := testenv.Start(t, testenv.WithDataRoot(home.Srv.DataRoot), testenv.WithArgs("--peer-check-timeout", "2s"))
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	defer admin.Close()
	_, err := admin.PutRecords(context.Background(), "c", testenv.Numbered(t, "b", 2, 1), false)
	if e := testenv.WantCode(t, err, "conflict", "rput while checking with peers"); !strings.Contains(e.Text, "checking with peers") {
		t.Errorf("refusal %q does not say the chain is being checked", e.Text)
	}
	testenv.WaitLog(t, srv, "released after --peer-check-timeout")
	if d := time.Since(started); d < 2*time.Second {
		t.Errorf("released after %v, before the 2 s timeout", d)
	}
	if !strings.Contains(srv.Stderr(), "level=WARN") || !strings.Contains(srv.Stderr(), wurl) {
		t.Errorf("no WARN naming the witness; stderr:\n%s", srv.Stderr())
	}
	testenv.Put(t, admin, "c", false, testenv.Numbered(t, "b", 2, 1)...)
}

// TestRestoredHomeReleasedDuringAPartitionIsReportedAsAFork: the witness
// is down when the restored home starts, so the peer check releases the
// chain after its timeout and the home writes a history of its own; when
// the witness is back, it keeps the conflicting checkpoint as a fork and
// the home holds the chain again, saying so.
func TestRestoredHomeReleasedDuringAPartitionIsReportedAsAFork(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	head, err := home.Admin.Head(home.Ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	origin := verify.CheckpointOrigin([]byte(head))
	waddr := freeAddr(t)
	wit, wname := witnessOf(t, waddr, origin, home.KeyText())
	wc := wit.Dial()
	wpub := wc.Identity()
	wc.Close()
	if err := home.Admin.AddHost(home.Ctx, "http://"+waddr+"/witness", client.HostSpec{Role: "witness", Key: secure.PublicKeyText(wpub), Name: wname, Chains: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "a", 0, 2)...)
	waitCosigned(t, home.Admin, 2, wname)
	data := home.Srv.DataRoot
	home.Admin.Close()
	if err := home.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(t, data, backup)
	srv := testenv.Start(t, testenv.WithDataRoot(data))
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	putWhenReleased(t, admin, "c", testenv.Numbered(t, "b", 2, 2))
	waitCosigned(t, admin, 4, wname)
	admin.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	// The witness is down; the old backup is restored and started.
	if err := wit.Stop(); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, data)
	srv = testenv.Start(t, testenv.WithDataRoot(data), testenv.WithArgs("--peer-check-timeout", "1s"))
	admin = srv.Login(testenv.AdminName, testenv.AdminPass)
	defer admin.Close()
	testenv.WaitLog(t, srv, "released after --peer-check-timeout")
	testenv.Put(t, admin, "c", false, testenv.Numbered(t, "other", 2, 2)...) // size 4, another root

	wit2, _ := witnessOf(t, waddr, origin, home.KeyText(), testenv.WithDataRoot(wit.DataRoot))
	testenv.WaitLog(t, wit2, "FORK")
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := admin.PutRecords(t.Context(), "c", testenv.Numbered(t, "more", 4, 1), false)
		if err != nil {
			e := testenv.WantCode(t, err, "conflict", "rput after the witness saw the fork")
			if !strings.Contains(e.Text, "another history") {
				t.Errorf("refusal %q does not say the witness holds another history", e.Text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chain takes writes 20 s after the witness saw the fork; stderr:\n%s", srv.Stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
