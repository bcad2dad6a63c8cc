package replic_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
)

// TestRestoredDataDirectoryIsHeldUntilItsMirrorAgrees runs home A and
// mirror B, real servers, with A's entries pushed to B by hand (as A's
// peer account, signed in with A's key): a start of A whose size B holds is
// released; with an older backup of A restored, B's ihave answer of 20
// holds the chain, and `vserv resume` says behind.
func TestRestoredDataDirectoryIsHeldUntilItsMirrorAgrees(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	aID, _, err := secure.LoadOrCreateIdentity(home.Srv.DataRoot)
	if err != nil {
		t.Fatal(err)
	}
	mir := testenv.Start(t, testenv.WithArgs("--rate-ip", "1000"))
	bc := mir.Dial()
	bKey := secure.PublicKeyText(bc.Identity())
	bc.Close()
	const aAtB, aAtBPass, bAtA, bAtAPass = "peer-a", "peer-a-password", "peer-b", "peer-b-password"
	mir.AddUser(aAtB, aAtBPass, false)
	bAdmin := mir.AdminClient()
	defer bAdmin.Close()
	if err := bAdmin.AddHost(t.Context(), home.Srv.Addr, client.HostSpec{Role: "home", Key: home.KeyText(), Chains: []string{"c"},
		Account: aAtB, User: bAtA, Pass: bAtAPass}); err != nil {
		t.Fatalf("mirror: ihost add home: %v", err)
	}
	home.Srv.AddUser(bAtA, bAtAPass, false)
	if err := home.Admin.AddHost(t.Context(), mir.Addr, client.HostSpec{Role: "mirror", Key: bKey, Chains: []string{"c"},
		Account: bAtA, User: aAtB, Pass: aAtBPass}); err != nil {
		t.Fatalf("home: ihost add mirror: %v", err)
	}
	pusher, _ := testenv.LoginPassword(t, mir, aAtB, aAtBPass)
	defer pusher.Close()
	if err := pusher.PeerAuth(t.Context(), aID.Key); err != nil {
		t.Fatalf("pauth at the mirror: %v", err)
	}
	push := func(a *client.Client, from, to uint64) {
		t.Helper()
		entries, err := a.Entries(t.Context(), "c", from, to)
		if err != nil {
			t.Fatal(err)
		}
		proof, cp, err := a.Consistency(t.Context(), "c", from, to)
		if err != nil {
			t.Fatal(err)
		}
		b := client.PushBatch{Origin: aID.ServerID, Chain: "c", From: from, Entries: entries, Checkpoint: cp, Proof: proof}
		if from == 0 {
			b.Desc = &client.ChainDesc{Public: true, Authority: []string{}}
		}
		if size, _, err := pusher.Push(t.Context(), b); err != nil || size != to {
			t.Fatalf("rpush %d..%d to the mirror: size %d, %v", from, to, size, err)
		}
	}
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "a", 0, 10)...)
	push(home.Admin, 0, 10)
	data := home.Srv.DataRoot
	home.Admin.Close()
	if err := home.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(t, data, backup)

	srv := testenv.Start(t, testenv.WithDataRoot(data))
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	testenv.WaitLog(t, srv, "chain released")
	testenv.Put(t, admin, "c", false, testenv.Numbered(t, "b", 10, 10)...)
	push(admin, 10, 20)
	admin.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	copyDir(t, backup, data)
	srv = testenv.Start(t, testenv.WithDataRoot(data))
	admin = srv.Login(testenv.AdminName, testenv.AdminPass)
	defer admin.Close()
	testenv.WaitLog(t, srv, "chain held")
	_, err = admin.PutRecords(t.Context(), "c", testenv.Numbered(t, "x", 10, 1), false)
	if e := testenv.WantCode(t, err, "conflict", "rput on the restored chain"); !strings.Contains(e.Text, "mirror "+mir.Addr+" holds size 20, this data directory only 10") {
		t.Errorf("rput refusal %q does not name the mirror and both sizes", e.Text)
	}
	admin.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := testenv.RunCmd(t, testenv.Bin(t, "vserv"), "resume", "-r", data)
	if code == 0 || !strings.Contains(out, "behind") || !strings.Contains(out, "mirror "+mir.Addr+" holds size 20") {
		t.Errorf("vserv resume: exit %d, want non-zero saying the mirror is ahead; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
