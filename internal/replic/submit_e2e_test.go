package replic_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// witnessOf starts a vserv with --http on addr ("" for a free port) that
// witnesses origin (ihost role log, key homeKey) and returns it with its
// cosignature key name.
func witnessOf(t *testing.T, addr, origin, homeKey string, opts ...testenv.Option) (*testenv.Server, string) {
	t.Helper()
	opts = append([]testenv.Option{testenv.WithHTTP()}, opts...)
	if addr != "" {
		opts = append(opts, testenv.WithArgs("--http", addr))
	}
	w := testenv.Start(t, opts...)
	admin := w.AdminClient()
	defer admin.Close()
	if err := admin.AddHost(t.Context(), origin, client.HostSpec{Role: "log", Key: homeKey}); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatalf("witness: ihost add %s {role: log}: %v", origin, err)
	}
	return w, verify.WitnessName(verify.ServerIDFromKey(admin.Identity()))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitCosigned polls rhead c until it is of size want and carries a line by
// name, and returns it.
func waitCosigned(t *testing.T, c *client.Client, want uint64, name string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		head, err := c.Head(t.Context(), "c")
		if err != nil {
			t.Fatal(err)
		}
		cp, err := verify.ParseLogCheckpoint(strings.SplitN(head, "\n\n", 2)[0] + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size == want && strings.Contains(head, "\n— "+name+" ") {
			return head
		}
		if time.Now().After(deadline) {
			t.Fatalf("rhead c after 60 s: %q, want size %d cosigned by %s", head, want, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cosignatureLine is the line by name of a cosigned note.
func cosignatureLine(note, name string) string {
	for l := range strings.Lines(note) {
		if strings.HasPrefix(l, "— "+name+" ") {
			return strings.TrimSuffix(l, "\n")
		}
	}
	return ""
}

// TestHomeSubmitsItsCheckpointsToItsWitnessesAndServesTheCosignatures runs
// a home A and witness W, real servers: A's rhead soon carries W's
// cosignature, which our verifier and torchwood's policy accept; with W
// down A keeps serving; after W and A restart (A no longer knows the size W
// holds: a 409 tells it) A catches up; a witness whose key is not the
// pinned one gets no line kept.
func TestHomeSubmitsItsCheckpointsToItsWitnessesAndServesTheCosignatures(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "s", 0, 3)...)
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
	// A liar: a vserv witnessing c too, pinned on A with W's key under its own name.
	liar, lname := witnessOf(t, "", origin, home.KeyText())
	for _, h := range []struct {
		url, name string
	}{{"http://" + waddr + "/witness", wname}, {"http://" + liar.HTTPAddr + "/witness", lname}} {
		if err := home.Admin.AddHost(home.Ctx, h.url, client.HostSpec{Role: "witness", Key: secure.PublicKeyText(wpub), Name: h.name}); err != nil {
			t.Fatalf("home: ihost add %s {role: witness}: %v", h.url, err)
		}
	}

	note := waitCosigned(t, home.Admin, 3, wname)
	text, _, _ := strings.Cut(note, "\n\n")
	line := cosignatureLine(note, wname)
	if _, err := verify.VerifyCosignatureLine(text+"\n", line, wname, wpub); err != nil {
		t.Fatalf("our verifier refuses the served cosignature: %v\n%s", err, note)
	}
	policy, err := torchwood.ParsePolicy([]byte(fmt.Sprintf("log %s\nwitness w %s\nquorum w\n",
		logVerifierKey(origin, home.Key), verify.CosignatureVerifierKey(wname, wpub))))
	if err != nil {
		t.Fatal(err)
	}
	if c, _, err := torchwood.VerifyCheckpoint([]byte(note), policy); err != nil || c.N != 3 {
		t.Fatalf("torchwood refuses rhead's cosigned checkpoint: %v\n%s", err, note)
	}
	// Existing clients: our checkpoint verifier ignores the cosignature
	// line, and a receipt written after it verifies.
	if c, err := verify.OpenCheckpoint([]byte(note), origin, home.Key); err != nil || c.Size != 3 {
		t.Fatalf("verify.OpenCheckpoint refuses the cosigned rhead: %v\n%s", err, note)
	}
	res := testenv.Put(t, home.Admin, "c", true, testenv.Numbered(t, "s", 3, 1)...)
	if _, err := verify.VerifyReceipt([]byte(res[0].Receipt), home.ReceiptOptions()); err != nil {
		t.Fatalf("rput receipt: %v", err)
	}
	note = waitCosigned(t, home.Admin, 4, wname)
	if _, _, err := torchwood.VerifyCheckpoint([]byte(note), policy); err != nil {
		t.Fatalf("torchwood refuses checkpoint 4: %v", err)
	}
	if strings.Contains(note, "— "+lname+" ") {
		t.Errorf("a cosignature by the witness with the wrong key was kept:\n%s", note)
	}
	if !strings.Contains(home.Srv.Stderr(), "does not verify with the pinned key") {
		t.Errorf("home did not log the refused cosignature; stderr:\n%s", home.Srv.Stderr())
	}

	// W down: A keeps working. Then A restarts (its submitter forgets
	// what W holds), W restarts on the same address: A catches up to 7.
	if err := wit.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "s", 4, 3)...)
	home.Admin.Close()
	if err := home.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	srv := testenv.Start(t, testenv.WithDataRoot(home.Srv.DataRoot))
	admin := srv.Login(testenv.AdminName, testenv.AdminPass)
	defer admin.Close()
	witnessOf(t, waddr, origin, home.KeyText(), testenv.WithDataRoot(wit.DataRoot))
	note = waitCosigned(t, admin, 7, wname)
	if _, _, err := torchwood.VerifyCheckpoint([]byte(note), policy); err != nil {
		t.Fatalf("torchwood refuses checkpoint 7 after the restarts: %v\n%s", err, note)
	}
}
