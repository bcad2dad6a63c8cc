package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// site is one vserv server of a replication test, on fixed loopback ports
// so that it can be killed and started again where its peers expect it.
type site struct {
	t        *testing.T
	name     string
	dir      string
	addr     string // TCP host:port
	httpAddr string
	extra    []string
	srv      *testenv.Server
	key      string // identity public key, text
	id       string // server-id
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newSite(t *testing.T, name string, extra ...string) *site {
	s := &site{t: t, name: name, dir: filepath.Join(t.TempDir(), name), addr: freePort(t), httpAddr: freePort(t), extra: extra}
	s.start()
	s.srv.InitAdmin()
	admin := s.srv.AdminClient()
	defer admin.Close()
	s.key = secure.PublicKeyText(admin.Identity())
	s.id = verify.ServerIDFromKey(admin.Identity())
	return s
}

func (s *site) start() {
	_, port, _ := net.SplitHostPort(s.addr)
	// One loopback address carries every peer session and test client.
	args := append([]string{"-p", port, "--http", s.httpAddr, "--rate-ip", "10000", "--max-conns-ip", "1000"}, s.extra...)
	s.srv = testenv.Start(s.t, testenv.WithDataRoot(s.dir), testenv.WithHTTP(), testenv.WithArgs(args...))
	if s.srv.Addr != s.addr {
		s.t.Fatalf("%s listens on %s, want %s", s.name, s.srv.Addr, s.addr)
	}
}

func (s *site) admin() *client.Client { return s.srv.AdminClient() }

func (s *site) origin(chain string) string { return verify.OriginLine(s.id, chain) }

// mirrorPair makes mirror mirror home's chain and witness it, and home
// push to it and submit to it, as docs/operations.md sets a pair up.
func mirrorPair(t *testing.T, home, mirror *site, chain string) {
	t.Helper()
	ctx := t.Context()
	homeAcct, mirrorAcct := "peer-"+home.name, "peer-"+mirror.name
	homePass, mirrorPass := "pw-"+home.name+"-at-"+mirror.name, "pw-"+mirror.name+"-at-"+home.name
	m := mirror.admin()
	defer m.Close()
	if _, err := m.AddUser(ctx, homeAcct, homePass, false); err != nil {
		t.Fatalf("%s: uadd %s: %v", mirror.name, homeAcct, err)
	}
	if err := m.AddHost(ctx, home.addr, client.HostSpec{Role: "home", Key: home.key, Chains: []string{chain},
		Account: homeAcct, User: mirrorAcct, Pass: mirrorPass}); err != nil {
		t.Fatalf("%s: ihost add %s home: %v", mirror.name, home.addr, err)
	}
	if err := m.AddHost(ctx, home.origin(chain), client.HostSpec{Role: "log", Key: home.key}); err != nil {
		t.Fatalf("%s: ihost add %s log: %v", mirror.name, home.origin(chain), err)
	}
	h := home.admin()
	defer h.Close()
	if _, err := h.AddUser(ctx, mirrorAcct, mirrorPass, false); err != nil {
		t.Fatalf("%s: uadd %s: %v", home.name, mirrorAcct, err)
	}
	if err := h.AddHost(ctx, mirror.addr, client.HostSpec{Role: "mirror", Key: mirror.key, Chains: []string{chain},
		Account: mirrorAcct, User: homeAcct, Pass: homePass}); err != nil {
		t.Fatalf("%s: ihost add %s mirror: %v", home.name, mirror.addr, err)
	}
	if err := h.AddHost(ctx, "http://"+mirror.httpAddr+"/witness", client.HostSpec{Role: "witness", Key: mirror.key,
		Name: verify.WitnessName(mirror.id)}); err != nil {
		t.Fatalf("%s: ihost add witness %s: %v", home.name, mirror.name, err)
	}
}

// noteText is a checkpoint note without its cosignature lines: the note as
// the home signed it.
func noteText(t *testing.T, note, origin string) string {
	t.Helper()
	var out strings.Builder
	text, sigs, ok := strings.Cut(note, "\n\n")
	if !ok {
		t.Fatalf("not a signed note: %q", note)
	}
	out.WriteString(text + "\n\n")
	for l := range strings.Lines(sigs) {
		if strings.HasPrefix(l, "— "+origin+" ") {
			out.WriteString(l)
		}
	}
	return out.String()
}

func headSize(t *testing.T, note string) uint64 {
	t.Helper()
	cp, err := verify.ParseLogCheckpoint(strings.SplitN(note, "\n\n", 2)[0] + "\n")
	if err != nil {
		t.Fatalf("checkpoint %q: %v", note, err)
	}
	return cp.Size
}

// waitFor polls cond every 100 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %s", d, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allEntries reads every entry of chain (a name or full origin) from c.
func allEntries(t *testing.T, c *client.Client, chain string, size uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for uint64(len(out)) < size {
		got, err := c.Entries(t.Context(), chain, uint64(len(out)), size)
		if err != nil {
			t.Fatalf("rentries %s from %d: %v", chain, len(out), err)
		}
		if len(got) == 0 {
			t.Fatalf("rentries %s from %d to %d: nothing", chain, len(out), size)
		}
		out = append(out, got...)
	}
	return out
}

// threeSites starts A (with aArgs), B and C, makes A's public chain c and
// pairs B and C with A as its mirrors and witnesses. adm is A's admin.
func threeSites(t *testing.T, aArgs ...string) (a, b, c *site, adm *client.Client) {
	t.Helper()
	a, b, c = newSite(t, "a", aArgs...), newSite(t, "b"), newSite(t, "c")
	adm = a.admin()
	if err := adm.MakeChain(t.Context(), "c", client.ChainOptions{Public: true}); err != nil {
		t.Fatal(err)
	}
	mirrorPair(t, a, b, "c")
	mirrorPair(t, a, c, "c")
	return a, b, c, adm
}

// TestThreeServersHoldOneHistoryThroughAKillAndAPartition: A homes a chain,
// B and C mirror it and witness A. Eight writers write on A while B is
// killed with SIGKILL and started again and C is stopped for a while.
// Afterwards all three hold the same entries and checkpoint, and every
// receipt from A carries cosignatures from both and verifies offline with
// --quorum 2.
func TestThreeServersHoldOneHistoryThroughAKillAndAPartition(t *testing.T) {
	ctx := context.Background()
	a, b, c, adm := threeSites(t, "--witness-quorum", "2")
	defer adm.Close()

	const writers = 8
	var (
		stop    atomic.Bool
		written atomic.Uint64
		wg      sync.WaitGroup
		errs    = make(chan error, writers)
	)
	for w := range writers {
		cl := a.srv.Login(testenv.AdminName, testenv.AdminPass)
		wg.Go(func() {
			defer cl.Close()
			for i := 0; !stop.Load(); i++ {
				rec := testenv.NewRecord(t, map[string]any{"w": w, "i": i})
				if _, err := cl.PutRecords(ctx, "c", [][]byte{rec}, false); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				written.Add(1)
			}
		})
	}
	atLeast := func(n uint64) {
		waitFor(t, 60*time.Second, "writers", func() (bool, string) {
			return written.Load() >= n, fmt.Sprintf("%d written", written.Load())
		})
	}
	atLeast(300)
	b.srv.Kill()
	atLeast(600)
	b.start()
	atLeast(900)
	if err := c.srv.Stop(); err != nil {
		t.Logf("stop c: %v", err)
	}
	atLeast(1500)
	c.start()
	atLeast(1800)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	head, err := adm.Head(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	size := headSize(t, head)
	if size != written.Load() {
		t.Fatalf("A holds %d entries, %d were acknowledged", size, written.Load())
	}
	want := allEntries(t, adm, "c", size)
	origin := a.origin("c")
	for _, m := range []*site{b, c} {
		mc := m.srv.Dial()
		waitFor(t, 60*time.Second, m.name+" catches up", func() (bool, string) {
			h, err := mc.Head(ctx, origin)
			if err != nil {
				return false, err.Error()
			}
			return headSize(t, h) == size, fmt.Sprintf("holds %d of %d", headSize(t, h), size)
		})
		got := allEntries(t, mc, origin, size)
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: entry %d differs from A's", m.name, i)
			}
		}
		h, _ := mc.Head(ctx, origin)
		if noteText(t, h, origin) != noteText(t, head, origin) {
			t.Fatalf("%s serves checkpoint\n%s\nA serves\n%s", m.name, h, head)
		}
		mc.Close()
	}

	// Every receipt from A carries both cosignatures once they are in.
	nameB, nameC := verify.WitnessName(b.id), verify.WitnessName(c.id)
	waitFor(t, 60*time.Second, "A's newest checkpoint cosigned by B and C", func() (bool, string) {
		h, err := adm.Head(ctx, "c")
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(h, "\n— "+nameB+" ") && strings.Contains(h, "\n— "+nameC+" "), h
	})
	opts := verify.ReceiptOptions{ServerKey: mustKey(t, a.key), Quorum: 2,
		Witnesses: []verify.WitnessKey{{Key: mustKey(t, b.key)}, {Key: mustKey(t, c.key)}}}
	dir := t.TempDir()
	for seq := uint64(0); seq < size; seq += max(1, size/25) {
		r, err := adm.Proof(ctx, "c", client.BySeq(seq), 0)
		if err != nil {
			t.Fatalf("rproof %d: %v", seq, err)
		}
		v, err := verify.VerifyReceipt([]byte(r), opts)
		if err != nil {
			t.Fatalf("receipt %d with quorum 2: %v\n%s", seq, err, r)
		}
		if len(v.Cosigners) != 2 {
			t.Fatalf("receipt %d: %d cosigners", seq, len(v.Cosigners))
		}
		if seq == 0 {
			file := filepath.Join(dir, "r0")
			if err := os.WriteFile(file, []byte(r), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := testenv.RunVcli(t, "", nil, "verify", "receipt", file, "--server-key", a.key,
				"--witness", b.key, "--witness", c.key, "--quorum", "2")
			testenv.WantExit(t, "vcli verify receipt --quorum 2", code, 0, out, errOut)
		}
	}
}

func mustKey(t *testing.T, text string) []byte {
	t.Helper()
	k, err := secure.ParsePublicKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestARewritingHomeIsCaughtByItsMirrorsAndByAClient: A's data directory is
// replaced by an older copy while its mirrors are away, and A writes new
// records (its peer check times out). When B and C come back they refuse
// A's pushes as a fork and keep both checkpoints; a client that saw the
// newer checkpoint refuses A's new history.
func TestARewritingHomeIsCaughtByItsMirrorsAndByAClient(t *testing.T) {
	ctx := context.Background()
	a, b, c, adm := threeSites(t, "--peer-check-timeout", "1s")
	// After a start, writes wait until the chain's peers have answered.
	put := func(cl *client.Client, prefix string, n int) {
		t.Helper()
		recs := testenv.Numbered(t, prefix, 0, n)
		waitFor(t, 30*time.Second, "rput "+prefix, func() (bool, string) {
			_, err := cl.PutRecords(ctx, "c", recs, false)
			return err == nil, fmt.Sprint(err)
		})
	}
	put(adm, "first", 10)
	adm.Close()
	origin := a.origin("c")
	waitMirrors := func(size uint64) {
		for _, m := range []*site{b, c} {
			mc := m.srv.Dial()
			waitFor(t, 30*time.Second, m.name+" holds "+fmt.Sprint(size), func() (bool, string) {
				h, err := mc.Head(ctx, origin)
				if err != nil {
					return false, err.Error()
				}
				return headSize(t, h) == size, h
			})
			mc.Close()
		}
	}
	waitMirrors(10)

	// The backup: A's data directory at 10 entries.
	if err := a.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if out, err := exec.Command("cp", "-a", a.dir, backup).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	a.start()
	adm = a.admin()
	put(adm, "second", 10)
	waitMirrors(20)

	// A client that saw the newer checkpoint, with a checkpoint memory.
	home := t.TempDir()
	known := filepath.Join(home, "known_hosts")
	reader, err := client.Dial(ctx, a.addr, client.Options{ServerKey: a.key, KnownHosts: known})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Head(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	reader.Close()

	// The rewrite: mirrors away, A restored from the backup, new records.
	adm.Close()
	for _, s := range []*site{a, b, c} {
		if err := s.srv.Stop(); err != nil {
			t.Logf("stop %s: %v", s.name, err)
		}
	}
	if err := os.RemoveAll(a.dir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", backup, a.dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	a.start()
	adm = a.admin()
	defer adm.Close()
	waitFor(t, 30*time.Second, "A's peer check times out", func() (bool, string) {
		_, err := adm.PutRecords(ctx, "c", testenv.Numbered(t, "rewritten", 0, 5), false)
		return err == nil, fmt.Sprint(err)
	})
	rewritten, err := adm.Head(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := headSize(t, rewritten); got != 15 {
		t.Fatalf("rewritten head of size %d, want 15", got)
	}

	// The client that saw size 20 refuses A's size-15 history.
	reader, err = client.Dial(ctx, a.addr, client.Options{ServerKey: a.key, KnownHosts: known})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Head(ctx, "c"); !errors.Is(err, client.ErrRollback) {
		t.Fatalf("rhead of the rewritten history: %v, want a refused rollback", err)
	}
	reader.Close()

	// The mirrors come back: they keep 20 entries and report a fork with
	// both checkpoints, each signed by A.
	b.start()
	c.start()
	for _, m := range []*site{b, c} {
		mc := m.admin()
		waitFor(t, 30*time.Second, m.name+" reports the fork", func() (bool, string) {
			out, errOut, code := m.srv.Vcli("", []string{"VSERV_PASSWORD=" + testenv.AdminPass}, "-q", "-u", testenv.AdminName, "--json", "host", "forks")
			return code == 0 && strings.Contains(out, origin), out + errOut
		})
		h, err := mc.Head(ctx, origin)
		if err != nil {
			t.Fatal(err)
		}
		if headSize(t, h) != 20 {
			t.Fatalf("%s holds %q after the fork, want size 20", m.name, h)
		}
		hosts, err := mc.ListHosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(hosts, func(h client.HostInfo) bool { return h.Role == "home" })
		if i < 0 || hosts[i].Forks == 0 {
			t.Fatalf("%s: ihost list %+v, want the home with forks", m.name, hosts)
		}
		mc.Close()
	}
}
