package replic_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// The pair of docs/protocol.md §11 "Setting up a pair": home A, mirror B,
// chain c.
const (
	passAtB = "peer-a-password-1" // A logs in at B as peer-a
	passAtA = "peer-b-password-1" // B logs in at A as peer-b
)

type pair struct {
	a, b     *testenv.LedgerEnv
	aID, bID string
	origin   string // vserv/<A's id>/c
}

// newPair starts A (homing c) and B on bAddr ("" for a free port), sets
// them up as a pair (B's entry first, so that A's first push finds it).
func newPair(t *testing.T, bAddr string, aOpts ...testenv.Option) *pair {
	t.Helper()
	a := testenv.NewLedgerEnv(t, []string{"c"}, aOpts...)
	var bOpts []testenv.Option
	if bAddr != "" {
		bOpts = append(bOpts, testenv.WithArgs("-p", port(t, bAddr)))
	}
	return pairUp(t, a, testenv.NewLedgerEnv(t, nil, bOpts...))
}

// pairUp sets up a (homing c) and b as a pair.
func pairUp(t *testing.T, a, b *testenv.LedgerEnv) *pair {
	t.Helper()
	p := &pair{a: a, b: b}
	p.aID, p.bID = verify.ServerIDFromKey(p.a.Key), verify.ServerIDFromKey(p.b.Key)
	p.origin = verify.OriginLine(p.aID, "c")
	p.b.Srv.AddUser("peer-a", passAtB, false)
	addHost(t, p.b.Admin, p.a.Srv.Addr, client.HostSpec{Role: "home", Key: p.a.KeyText(), Chains: []string{"c"}, Account: "peer-a", User: "peer-b", Pass: passAtA})
	p.a.Srv.AddUser("peer-b", passAtA, false)
	addHost(t, p.a.Admin, p.b.Srv.Addr, client.HostSpec{Role: "mirror", Key: p.b.KeyText(), Chains: []string{"c"}, Account: "peer-b", User: "peer-a", Pass: passAtB})
	return p
}

func addHost(t *testing.T, c *client.Client, peer string, spec client.HostSpec) {
	t.Helper()
	if err := c.AddHost(t.Context(), peer, spec); err != nil {
		t.Fatalf("ihost add %s {role: %s}: %v", peer, spec.Role, err)
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond every 50 ms for up to d and fails with what() when it
// never holds.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mirrorSize is the size B holds of chain (a full origin), 0 without it.
func mirrorSize(t *testing.T, c *client.Client, chain string) uint64 {
	t.Helper()
	size, err := c.ChainSize(t.Context(), chain)
	if err != nil {
		return 0
	}
	return size
}

func host(t *testing.T, c *client.Client, peer, role string) client.HostInfo {
	t.Helper()
	list, err := c.ListHosts(t.Context())
	if err != nil {
		t.Fatalf("ihost list: %v", err)
	}
	for _, h := range list {
		if h.Peer == peer && h.Role == role {
			return h
		}
	}
	t.Fatalf("ihost list has no %s %s: %+v", role, peer, list)
	return client.HostInfo{}
}

// signedPart is a checkpoint note without the cosignature lines: its text
// and the home's own signature.
func signedPart(note string) string {
	text, sigs, _ := strings.Cut(note, "\n\n")
	first, _, _ := strings.Cut(sigs, "\n")
	return text + "\n\n" + first
}

func sameEntries(t *testing.T, a, b *client.Client, achain, bchain string, n int) {
	t.Helper()
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = int64(i)
	}
	ea, err := a.AbsRecords(t.Context(), achain, seqs)
	if err != nil {
		t.Fatalf("rabs at the home: %v", err)
	}
	eb, err := b.AbsRecords(t.Context(), bchain, seqs)
	if err != nil {
		t.Fatalf("rabs at the mirror: %v", err)
	}
	for i := range ea {
		if !bytes.Equal(ea[i], eb[i]) || len(ea[i]) == 0 {
			t.Fatalf("entry %d differs: home %x, mirror %x", i, ea[i], eb[i])
		}
	}
	ha, err := a.Head(t.Context(), achain)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.Head(t.Context(), bchain)
	if err != nil {
		t.Fatal(err)
	}
	if signedPart(ha) != signedPart(hb) {
		t.Fatalf("rhead differs:\nhome:\n%s\nmirror:\n%s", ha, hb)
	}
}

// TestMirrorGetsTheRecordsOfItsHomeAndCatchesUpAfterARestart runs the pair
// A, B as real servers: what A commits is on B within seconds, byte for
// byte, with A's checkpoint; A keeps B's cosignature and its `ihost list`
// shows B's size, lag and hops; with B down A's metrics show the lag, and
// B restarted catches up.
func TestMirrorGetsTheRecordsOfItsHomeAndCatchesUpAfterARestart(t *testing.T) {
	p := newPair(t, freeAddr(t), testenv.WithHTTP())
	testenv.Put(t, p.a.Admin, "c", false, testenv.Numbered(t, "r", 0, 3)...)
	waitFor(t, 15*time.Second, func() bool { return mirrorSize(t, p.b.Admin, p.origin) == 3 },
		func() string {
			return fmt.Sprintf("B holds %d of c, want 3; A's stderr:\n%s", mirrorSize(t, p.b.Admin, p.origin), p.a.Srv.Stderr())
		})
	sameEntries(t, p.a.Admin, p.b.Admin, "c", p.origin, 3)

	// A keeps B's cosignature of its checkpoint.
	bname := verify.WitnessName(p.bID)
	waitFor(t, 10*time.Second, func() bool {
		h, err := p.a.Admin.Head(t.Context(), "c")
		return err == nil && strings.Contains(h, "\n— "+bname+" ")
	}, func() string {
		h, _ := p.a.Admin.Head(t.Context(), "c")
		return "A's rhead c has no line by " + bname + ":\n" + h
	})
	h, _ := p.a.Admin.Head(t.Context(), "c")
	text, _, _ := strings.Cut(h, "\n\n")
	if _, err := verify.VerifyCosignatureLine(text+"\n", cosignatureLine(h, bname), bname, p.b.Key); err != nil {
		t.Fatalf("B's cosignature kept by A does not verify: %v", err)
	}

	var row client.HostInfo
	waitFor(t, 10*time.Second, func() bool {
		row = host(t, p.a.Admin, p.b.Srv.Addr, "mirror")
		return row.Size == 3
	}, func() string { return fmt.Sprintf("A's ihost list row of B: %+v, want size 3", row) })
	if row.LagEntries != 0 || row.Hops != 1 || row.LastError != "" || row.Forks != 0 {
		t.Errorf("A's ihost list row of B: %+v, want lag 0, hops 1, no error, no fork", row)
	}
	waitFor(t, 10*time.Second, func() bool { return host(t, p.b.Admin, p.a.Srv.Addr, "home").Size == 3 },
		func() string { return fmt.Sprintf("B's row of A: %+v", host(t, p.b.Admin, p.a.Srv.Addr, "home")) })

	// B down: A commits 3 more, its metrics show B lagging by 3.
	bAddr, bRoot := p.b.Srv.Addr, p.b.Srv.DataRoot
	p.b.Admin.Close()
	if err := p.b.Srv.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Put(t, p.a.Admin, "c", false, testenv.Numbered(t, "r", 3, 3)...)
	metric := fmt.Sprintf(`vserv_mirror_lag_entries{chain=%q,peer=%q} 3`, p.origin, bAddr)
	var scraped string
	waitFor(t, 10*time.Second, func() bool {
		scraped = scrape(t, p.a.Srv.HTTPAddr)
		return strings.Contains(scraped, metric)
	}, func() string { return "A's /metrics lacks " + metric + ":\n" + scraped })
	if !strings.Contains(scraped, fmt.Sprintf(`vserv_mirror_lag_seconds{chain=%q,peer=%q}`, p.origin, bAddr)) {
		t.Errorf("A's /metrics lacks vserv_mirror_lag_seconds of B:\n%s", scraped)
	}
	if row := host(t, p.a.Admin, bAddr, "mirror"); row.LagEntries != 3 {
		t.Errorf("A's ihost list row of B while B is down: %+v, want lag_entries 3", row)
	}

	// B back on its address: it catches up.
	b := testenv.Start(t, testenv.WithDataRoot(bRoot), testenv.WithArgs("-p", port(t, bAddr)))
	badmin := b.Login(testenv.AdminName, testenv.AdminPass)
	defer badmin.Close()
	waitFor(t, 20*time.Second, func() bool { return mirrorSize(t, badmin, p.origin) == 6 },
		func() string {
			return fmt.Sprintf("restarted B holds %d of c, want 6", mirrorSize(t, badmin, p.origin))
		})
	sameEntries(t, p.a.Admin, badmin, "c", p.origin, 6)
}

// TestMirrorPullsFromItsHome: A is set up first, so its first pushes are
// refused (B has no peer-a account yet) and it waits the longest backoff;
// B, set up next, pulls c when its session to A starts.
func TestMirrorPullsFromItsHome(t *testing.T) {
	a := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "r", 0, 4)...)
	b := testenv.NewLedgerEnv(t, nil)
	origin := verify.OriginLine(verify.ServerIDFromKey(a.Key), "c")
	a.Srv.AddUser("peer-b", passAtA, false)
	addHost(t, a.Admin, b.Srv.Addr, client.HostSpec{Role: "mirror", Key: b.KeyText(), Chains: []string{"c"}, Account: "peer-b", User: "peer-a", Pass: passAtB})
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(host(t, a.Admin, b.Srv.Addr, "mirror").LastError, "refused: the peer refused our sign-in")
	}, func() string {
		return fmt.Sprintf("A's row of B: %+v, want the refused login", host(t, a.Admin, b.Srv.Addr, "mirror"))
	})

	b.Srv.AddUser("peer-a", passAtB, false)
	addHost(t, b.Admin, a.Srv.Addr, client.HostSpec{Role: "home", Key: a.KeyText(), Chains: []string{"c"}, Account: "peer-a", User: "peer-b", Pass: passAtA})
	waitFor(t, 15*time.Second, func() bool { return mirrorSize(t, b.Admin, origin) == 4 },
		func() string {
			return fmt.Sprintf("B holds %d of c, want 4; B's stderr:\n%s", mirrorSize(t, b.Admin, origin), b.Srv.Stderr())
		})
	sameEntries(t, a.Admin, b.Admin, "c", origin, 4)
	row := host(t, b.Admin, a.Srv.Addr, "home")
	if row.Size != 4 || row.Hops != 1 || row.LagEntries != 0 || row.LastError != "" {
		t.Errorf("B's ihost list row of A: %+v, want size 4, hops 1, lag 0", row)
	}
	if row := host(t, a.Admin, b.Srv.Addr, "mirror"); row.Size != 0 {
		t.Errorf("A's row of B: %+v: A pushed although it is in its longest backoff", row)
	}
}

// TestMirrorRefusalsShowInIhostList: a mirror entry pinned to another key
// than the mirror's is refused (nothing is pushed), and one whose password
// is wrong shows the login failure.
func TestMirrorRefusalsShowInIhostList(t *testing.T) {
	a := testenv.NewLedgerEnv(t, []string{"c"})
	testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "r", 0, 2)...)
	b := testenv.NewLedgerEnv(t, nil)
	b.Srv.AddUser("peer-a", passAtB, false)
	addHost(t, b.Admin, a.Srv.Addr, client.HostSpec{Role: "home", Key: a.KeyText(), Chains: []string{"c"}, Account: "peer-a", User: "peer-b", Pass: passAtA})
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a.Srv.AddUser("peer-b", passAtA, false)
	addHost(t, a.Admin, b.Srv.Addr, client.HostSpec{Role: "mirror", Key: secure.PublicKeyText(other), Chains: []string{"c"}, Account: "peer-b", User: "peer-a", Pass: passAtB})
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(host(t, a.Admin, b.Srv.Addr, "mirror").LastError, "refused: the peer presented another key than the pinned one")
	}, func() string {
		return fmt.Sprintf("A's row of B: %+v, want a last_error about the pinned key", host(t, a.Admin, b.Srv.Addr, "mirror"))
	})
	testenv.WaitLog(t, a.Srv, "replicate: refused")
	if n := mirrorSize(t, b.Admin, verify.OriginLine(verify.ServerIDFromKey(a.Key), "c")); n != 0 {
		t.Errorf("B holds %d entries of c pushed by A over a session to the wrong key", n)
	}

	// The right key, the wrong password.
	if err := a.Admin.DeleteHost(t.Context(), b.Srv.Addr, "mirror"); err != nil {
		t.Fatal(err)
	}
	a.Srv.AddUser("peer-b2", passAtA, false)
	addHost(t, a.Admin, b.Srv.Addr, client.HostSpec{Role: "mirror", Key: b.KeyText(), Chains: []string{"c"}, Account: "peer-b2", User: "peer-a", Pass: "wrong-password-1"})
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(host(t, a.Admin, b.Srv.Addr, "mirror").LastError, "refused: the peer refused our sign-in: login as peer-a: ERR auth")
	}, func() string {
		return fmt.Sprintf("A's row of B: %+v, want a last_error about the login", host(t, a.Admin, b.Srv.Addr, "mirror"))
	})
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	return string(b)
}

// TestMirrorOfAMirror: C mirrors A's chain c through B (A → B → C). B's
// mirror entry for C names c, a chain B only mirrors; C knows A's key from
// a log entry. C gets A's entries byte for byte, and B's `ihost list`
// shows C at two hops from the home.
func TestMirrorOfAMirror(t *testing.T) {
	p := newPair(t, "")
	testenv.Put(t, p.a.Admin, "c", false, testenv.Numbered(t, "r", 0, 3)...)
	waitFor(t, 15*time.Second, func() bool { return mirrorSize(t, p.b.Admin, p.origin) == 3 },
		func() string { return fmt.Sprintf("B holds %d of c, want 3", mirrorSize(t, p.b.Admin, p.origin)) })

	c := testenv.NewLedgerEnv(t, nil)
	const passAtC, passAtB2 = "peer-b-at-c-1", "peer-c-at-b-1"
	addHost(t, c.Admin, p.origin, client.HostSpec{Role: "log", Key: p.a.KeyText()})
	c.Srv.AddUser("peer-b", passAtC, false)
	addHost(t, c.Admin, p.b.Srv.Addr, client.HostSpec{Role: "home", Key: p.b.KeyText(), Chains: []string{"c"}, Account: "peer-b", User: "peer-c", Pass: passAtB2})
	p.b.Srv.AddUser("peer-c", passAtB2, false)
	addHost(t, p.b.Admin, c.Srv.Addr, client.HostSpec{Role: "mirror", Key: c.KeyText(), Chains: []string{"c"}, Account: "peer-c", User: "peer-b", Pass: passAtC})

	testenv.Put(t, p.a.Admin, "c", false, testenv.Numbered(t, "r", 3, 2)...)
	waitFor(t, 15*time.Second, func() bool { return mirrorSize(t, c.Admin, p.origin) == 5 },
		func() string {
			return fmt.Sprintf("C holds %d of c, want 5; B's stderr:\n%s", mirrorSize(t, c.Admin, p.origin), p.b.Srv.Stderr())
		})
	sameEntries(t, p.a.Admin, c.Admin, "c", p.origin, 5)
	var row client.HostInfo
	waitFor(t, 10*time.Second, func() bool {
		row = host(t, p.b.Admin, c.Srv.Addr, "mirror")
		return row.Size == 5
	}, func() string { return fmt.Sprintf("B's row of C: %+v, want size 5", row) })
	if row.Hops != 2 || row.LastError != "" {
		t.Errorf("B's row of C: %+v, want hops 2 and no error", row)
	}
}

// TestMirrorThatRefusesAChainIsBackedOffFrom: B's entry for A names
// another chain, so B answers A's pushes of c with ERR perm: A shows it in
// `ihost list` and retries with backoff, not at every commit.
func TestMirrorThatRefusesAChainIsBackedOffFrom(t *testing.T) {
	a := testenv.NewLedgerEnv(t, []string{"c"})
	b := testenv.NewLedgerEnv(t, nil)
	b.Srv.AddUser("peer-a", passAtB, false)
	addHost(t, b.Admin, a.Srv.Addr, client.HostSpec{Role: "home", Key: a.KeyText(), Chains: []string{"d"}, Account: "peer-a", User: "peer-b", Pass: passAtA})
	a.Srv.AddUser("peer-b", passAtA, false)
	addHost(t, a.Admin, b.Srv.Addr, client.HostSpec{Role: "mirror", Key: b.KeyText(), Chains: []string{"c"}, Account: "peer-b", User: "peer-a", Pass: passAtB})
	testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "r", 0, 1)...)
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(host(t, a.Admin, b.Srv.Addr, "mirror").LastError, "ERR perm")
	}, func() string {
		return fmt.Sprintf("A's row of B: %+v, want the ERR perm of the push", host(t, a.Admin, b.Srv.Addr, "mirror"))
	})
	for i := range 10 {
		testenv.Put(t, a.Admin, "c", false, testenv.Numbered(t, "s", i, 1)...)
		time.Sleep(50 * time.Millisecond)
	}
	// About 0.5 s of commits: the first refusal, then at most a retry
	// after 1 s and one after 2 s.
	if n := strings.Count(a.Srv.Stderr(), `msg="replicate: push"`); n == 0 || n > 3 {
		t.Errorf("A logged %d refused pushes over 11 commits, want 1 to 3 (backoff); stderr:\n%s", n, a.Srv.Stderr())
	}
	// The lag follows our commits between exchanges.
	var row client.HostInfo
	waitFor(t, 5*time.Second, func() bool {
		row = host(t, a.Admin, b.Srv.Addr, "mirror")
		return row.LagEntries == 11
	}, func() string { return fmt.Sprintf("A's row of B: %+v, want lag 11", row) })
	if row.Size != 0 {
		t.Errorf("A's row of B: %+v, want size 0", row)
	}
}

// TestPairSessionsOutliveTheIdleTimeout: with both servers ending idle
// sessions after 5 s, the workers' sessions stay up through 8 quiet
// seconds (they ask at half the peer's timeout) and the next commit is
// pushed over the same session.
func TestPairSessionsOutliveTheIdleTimeout(t *testing.T) {
	idle := testenv.WithArgs("--idle-timeout", "5")
	p := pairUp(t, testenv.NewLedgerEnv(t, []string{"c"}, idle), testenv.NewLedgerEnv(t, nil, idle))
	testenv.Put(t, p.a.Admin, "c", false, testenv.Numbered(t, "r", 0, 1)...)
	waitFor(t, 10*time.Second, func() bool { return mirrorSize(t, p.b.Admin, p.origin) == 1 },
		func() string { return fmt.Sprintf("B holds %d of c, want 1", mirrorSize(t, p.b.Admin, p.origin)) })
	time.Sleep(8 * time.Second)
	// The test's own sessions were idle too: new ones.
	a, b := p.a.Srv.AdminClient(), p.b.Srv.AdminClient()
	defer a.Close()
	defer b.Close()
	testenv.Put(t, a, "c", false, testenv.Numbered(t, "r", 1, 1)...)
	waitFor(t, 5*time.Second, func() bool { return mirrorSize(t, b, p.origin) == 2 },
		func() string { return fmt.Sprintf("B holds %d of c, want 2", mirrorSize(t, b, p.origin)) })
	for _, srv := range []*testenv.Server{p.a.Srv, p.b.Srv} {
		if strings.Contains(srv.Stderr(), "replicate: session lost") {
			t.Errorf("a replication session was lost:\n%s", srv.Stderr())
		}
	}
}
