package replic_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/crypto/ssh"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// The C2SP witness that is not ours: torchwood's litewitness, pinned by the
// tool directives of go.mod (with witnessctl, which configures its logs).
const (
	litewitnessPkg = "filippo.io/torchwood/cmd/litewitness"
	witnessctlPkg  = "filippo.io/torchwood/cmd/witnessctl"
	litewitnessAs  = "example.com/vserv-test-witness"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// buildTorchwoodTools builds litewitness and witnessctl into dir with the
// go command (the build cache makes every run after the first quick).
func buildTorchwoodTools(t *testing.T, dir string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), litewitnessPkg, witnessctlPkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s %s: %v\n%s", litewitnessPkg, witnessctlPkg, err, out)
	}
	t.Logf("built litewitness and witnessctl in %v", time.Since(start).Round(time.Millisecond))
}

// startSSHAgent runs a dedicated ssh-agent on a socket of its own (killed
// at cleanup), loads a new Ed25519 key into it and returns the socket, the
// key's SHA256 fingerprint and its public key.
func startSSHAgent(t *testing.T, agentPath string) (string, string, ed25519.PublicKey) {
	t.Helper()
	// A short directory: a unix socket path has at most 107 bytes.
	sockDir, err := os.MkdirTemp("", "lw-agent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "agent.sock")
	agent := exec.Command(agentPath, "-D", "-a", sock)
	var agentOut lockedBuffer
	agent.Stdout, agent.Stderr = &agentOut, &agentOut
	if err := agent.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent did not listen on %s within 10 s: %s", sock, agentOut.String())
		}
	}

	keyFile := filepath.Join(t.TempDir(), "witness")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vserv-test-witness", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	authorized, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(authorized)
	if err != nil {
		t.Fatalf("parse %s.pub: %v", keyFile, err)
	}
	pub, ok := pk.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		t.Fatalf("ssh-keygen made a %s key, want ed25519", pk.Type())
	}
	return sock, ssh.FingerprintSHA256(pk), pub
}

// startLitewitness runs litewitness on a free loopback port until cleanup
// and returns its address once it answers.
func startLitewitness(t *testing.T, bin, db, sock, fingerprint string) (string, *lockedBuffer) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "-name", litewitnessAs, "-key", fingerprint, "-ssh-agent", sock, "-listen", addr, "-db", db)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start litewitness: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, out
		}
		select {
		case <-exited:
			t.Fatalf("litewitness exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("litewitness did not listen on %s within 10 s: %s", addr, out.String())
		}
	}
}

// TestLitewitnessCosignsAVservHome runs torchwood's litewitness (a C2SP
// tlog-witness nobody here wrote) for a vserv home's chain: the home's
// submitter gets its cosignature, rhead and rproof receipts carry it, our
// verifier and torchwood's policy accept it, and litewitness keeps
// cosigning as the chain grows (it checks our consistency proofs itself).
func TestLitewitnessCosignsAVservHome(t *testing.T) {
	agentPath, err := exec.LookPath("ssh-agent")
	if err != nil {
		t.Skip("ssh-agent is not installed (make test-deps installs openssh-client): litewitness reads its key only from an ssh-agent, so the interop test cannot run")
	}
	bin := t.TempDir()
	buildTorchwoodTools(t, bin)
	sock, fingerprint, wpub := startSSHAgent(t, agentPath)

	home := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "s", 0, 3)...)
	head, err := home.Admin.Head(home.Ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	origin := verify.CheckpointOrigin([]byte(head))
	if want := "vserv/" + verify.ServerIDFromKey(home.Key) + "/c"; origin != want {
		t.Fatalf("origin %q, want %q", origin, want)
	}
	logVkey := verify.NoteVerifierKey(origin, home.Key)

	// The witness's operator pins the chain: witnessctl add-log, add-key.
	db := filepath.Join(t.TempDir(), "litewitness.db")
	for _, args := range [][]string{
		{"add-log", "-db", db, "-origin", origin},
		{"add-key", "-db", db, "-origin", origin, "-key", logVkey},
	} {
		if out, err := exec.Command(filepath.Join(bin, "witnessctl"), args...).CombinedOutput(); err != nil {
			t.Fatalf("witnessctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	addr, wout := startLitewitness(t, filepath.Join(bin, "litewitness"), db, sock, fingerprint)
	wvkey := verify.CosignatureVerifierKey(litewitnessAs, wpub)
	if !strings.Contains(wout.String(), wvkey) {
		t.Errorf("litewitness does not log the vkey we compute, %s:\n%s", wvkey, wout.String())
	}

	// The home's operator adds it as a witness of its chains.
	if err := home.Admin.AddHost(home.Ctx, "http://"+addr, client.HostSpec{Role: "witness", Key: secure.PublicKeyText(wpub), Name: litewitnessAs}); err != nil {
		t.Fatalf("home: ihost add http://%s {role: witness}: %v", addr, err)
	}

	policy, err := torchwood.ParsePolicy([]byte(fmt.Sprintf("log %s\nwitness lw %s\nquorum lw\n", logVkey, wvkey)))
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	otherPolicy, err := torchwood.ParsePolicy([]byte(fmt.Sprintf("log %s\nwitness lw %s\nquorum lw\n",
		logVkey, verify.CosignatureVerifierKey(litewitnessAs, otherPub))))
	if err != nil {
		t.Fatal(err)
	}
	checkNote := func(what, note string, size uint64) {
		t.Helper()
		text, _, _ := strings.Cut(note, "\n\n")
		line := cosignatureLine(note, litewitnessAs)
		if line == "" {
			t.Fatalf("%s carries no line by %s:\n%s", what, litewitnessAs, note)
		}
		if _, err := verify.VerifyCosignatureLine(text+"\n", line, litewitnessAs, wpub); err != nil {
			t.Fatalf("%s: our verifier refuses litewitness's cosignature: %v\n%s", what, err, note)
		}
		if c, _, err := torchwood.VerifyCheckpoint([]byte(note), policy); err != nil || uint64(c.N) != size {
			t.Fatalf("%s: torchwood refuses the cosigned checkpoint (want size %d): %v\n%s", what, size, err, note)
		}
		if _, _, err := torchwood.VerifyCheckpoint([]byte(note), otherPolicy); err == nil {
			t.Fatalf("%s: torchwood accepts it for a witness of another key:\n%s", what, note)
		}
	}

	added := time.Now()
	checkNote("rhead c", waitCosigned(t, home.Admin, 3, litewitnessAs), 3)
	t.Logf("size 3 cosigned %v after ihost add", time.Since(added).Round(time.Millisecond))

	receipt, err := home.Admin.Proof(home.Ctx, "c", client.BySeq(2), 0)
	if err != nil {
		t.Fatalf("rproof c 2: %v", err)
	}
	// The receipt verifies with litewitness as a witness a reader trusts,
	// named as it names itself, and a quorum of 1; under another key for
	// that name the quorum is not met.
	opts := home.ReceiptOptions()
	opts.Witnesses, opts.Quorum = []verify.WitnessKey{{Name: litewitnessAs, Key: wpub}}, 1
	got, err := verify.VerifyReceipt([]byte(receipt), opts)
	if err != nil {
		t.Fatalf("the rproof receipt carrying litewitness's cosignature does not verify with quorum 1: %v\n%s", err, receipt)
	}
	if got.Checkpoint.Size != 3 || len(got.Cosigners) != 1 {
		t.Fatalf("receipt against size %d with %d cosigners, want 3 and 1", got.Checkpoint.Size, len(got.Cosigners))
	}
	opts.Witnesses = []verify.WitnessKey{{Name: litewitnessAs, Key: otherPub}}
	if _, err := verify.VerifyReceipt([]byte(receipt), opts); err == nil {
		t.Fatalf("the receipt meets a quorum of 1 under a key that is not litewitness's")
	}
	checkNote("rproof c 2", string(verify.CheckpointNote([]byte(receipt))), 3)

	// The chain grows: litewitness checks the consistency proofs the home
	// sends from the size it cosigned last.
	size := 3
	for _, n := range []int{4, 13} {
		testenv.Put(t, home.Admin, "c", false, testenv.Numbered(t, "s", size, n)...)
		size += n
		put := time.Now()
		checkNote(fmt.Sprintf("rhead c of size %d", size), waitCosigned(t, home.Admin, uint64(size), litewitnessAs), uint64(size))
		t.Logf("size %d cosigned %v after rput", size, time.Since(put).Round(time.Millisecond))
	}
	if s := home.Srv.Stderr(); strings.Contains(s, "does not verify with the pinned key") {
		t.Errorf("the home refused a line of litewitness:\n%s", s)
	}
}
