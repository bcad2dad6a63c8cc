package replic

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vserv/vserv/internal/store"
	"github.com/vserv/vserv/internal/store/bolt"
	"github.com/vserv/vserv/internal/web"
	"github.com/vserv/vserv/verify"
)

// testNow is the witness's clock in these tests, so that cosignatures (and
// so whole answers) are exact bytes.
var testNow = time.Unix(1767225600, 0)

// testLog is a C2SP log that is not vserv: a tlog tree of its own and a
// key made by x/mod's note package.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	hashes []tlog.Hash // stored hashes of the tree (tlog.StoredHashes)
	leaves int64
	salt   string
}

func newTestLog(t *testing.T, origin, salt string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{origin: origin, signer: s, vkey: vkey, salt: salt}
}

func (l *testLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = l.hashes[x]
	}
	return out, nil
}

// grow appends leaves up to n.
func (l *testLog) grow(t *testing.T, n int64) {
	t.Helper()
	for ; l.leaves < n; l.leaves++ {
		hs, err := tlog.StoredHashes(l.leaves, []byte(fmt.Sprintf("%s leaf %d", l.salt, l.leaves)), l)
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
	}
}

// checkpoint returns the signed note of the tree of size n (grown to n).
func (l *testLog) checkpoint(t *testing.T, n int64, s note.Signer) []byte {
	t.Helper()
	l.grow(t, n)
	root, err := tlog.TreeHash(n, l)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))
	msg, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// proof is the consistency proof from old to n as base64 lines.
func (l *testLog) proof(t *testing.T, old, n int64) []string {
	t.Helper()
	if old == 0 || old == n {
		return nil
	}
	l.grow(t, n)
	p, err := tlog.ProveTree(n, old, l)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(p))
	for i, h := range p {
		lines[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return lines
}

func body(old int64, proof []string, checkpoint []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "old %d\n", old)
	for _, p := range proof {
		b.WriteString(p + "\n")
	}
	b.WriteString("\n")
	b.Write(checkpoint)
	return b.String()
}

// witnessEnv is a witness on a real bolt store behind the real HTTP server
// on a loopback port.
type witnessEnv struct {
	url   string
	st    *bolt.Store
	key   ed25519.PrivateKey
	id    string
	log   *testLog
	srv   *httptest.Server
	store string
	logs  lockedBuffer
}

// lockedBuffer is the witness's log, written by the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openStore(t *testing.T, path string) *bolt.Store {
	t.Helper()
	db, err := bolt.OpenDB(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(context.Background(), db, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newWitnessEnv(t *testing.T) *witnessEnv {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	e := &witnessEnv{key: key, id: verify.ServerIDFromKey(key.Public().(ed25519.PublicKey)),
		log: newTestLog(t, "example.com/behind-the-sofa", "a"), store: filepath.Join(t.TempDir(), "ledger.db")}
	e.start(t)
	return e
}

func (e *witnessEnv) start(t *testing.T) {
	t.Helper()
	e.st = openStore(t, e.store)
	logs := StaticLogs{}
	if err := logs.Add(e.log.origin + "=" + e.log.vkey); err != nil {
		t.Fatal(err)
	}
	w, err := NewWitness(WitnessConfig{Store: e.st, Logs: logs, ServerID: e.id, Key: e.key,
		Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(&e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(web.New(web.Config{Witness: w}).Handler())
	e.url = e.srv.URL + web.WitnessPath
	t.Cleanup(e.stop)
}

func (e *witnessEnv) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.st.Close()
		e.srv = nil
	}
}

type reply struct {
	status int
	ctype  string
	body   string
}

func (e *witnessEnv) post(t *testing.T, b string) reply {
	t.Helper()
	resp, err := http.Post(e.url, "text/plain", strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(got)}
}

// cosignature is the exact line the witness answers for checkpoint.
func (e *witnessEnv) cosignature(t *testing.T, checkpoint []byte) string {
	t.Helper()
	text, _, _ := strings.Cut(string(checkpoint), "\n\n")
	line, err := verify.CosignLine(text+"\n", verify.CosignatureSigner(e.id, e.key, func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	return line + "\n"
}

func (e *witnessEnv) forks(t *testing.T) []store.WitnessFork {
	t.Helper()
	var out []store.WitnessFork
	if err := e.st.View(context.Background(), func(tx store.ReadTx) error {
		return tx.WitnessForks(func(f store.WitnessFork) error { out = append(out, f); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

const textPlain = "text/plain; charset=utf-8"

// TestAddCheckpointAnswersEveryCodeByteForByte submits, to a witness that
// holds size 4 of the log, one request per answer of C2SP tlog-witness.
func TestAddCheckpointAnswersEveryCodeByteForByte(t *testing.T) {
	otherKey, _, _ := note.GenerateKey(rand.Reader, "example.com/behind-the-sofa")
	impostor, _ := note.NewSigner(otherKey)
	cases := []struct {
		name string
		req  func(e *witnessEnv) string
		want func(e *witnessEnv) reply
		fork string // the reason of the fork it records, if any
	}{
		{"consistent checkpoint is cosigned",
			func(e *witnessEnv) string { return body(4, e.log.proof(t, 4, 8), e.log.checkpoint(t, 8, e.log.signer)) },
			func(e *witnessEnv) reply {
				return reply{200, textPlain, e.cosignature(t, e.log.checkpoint(t, 8, e.log.signer))}
			}, ""},
		{"same checkpoint again is cosigned again",
			func(e *witnessEnv) string { return body(4, nil, e.log.checkpoint(t, 4, e.log.signer)) },
			func(e *witnessEnv) reply {
				return reply{200, textPlain, e.cosignature(t, e.log.checkpoint(t, 4, e.log.signer))}
			}, ""},
		{"unknown origin is 404",
			func(e *witnessEnv) string {
				o := newTestLog(t, "example.com/unknown", "u")
				return body(0, nil, o.checkpoint(t, 2, o.signer))
			},
			func(e *witnessEnv) reply { return reply{404, textPlain, "unknown log origin\n"} }, ""},
		{"signature by another key is 403",
			func(e *witnessEnv) string { return body(4, e.log.proof(t, 4, 8), e.log.checkpoint(t, 8, impostor)) },
			func(e *witnessEnv) reply { return reply{403, textPlain, "no valid signature by a key of this log\n"} }, ""},
		{"old size above the checkpoint's is 400",
			func(e *witnessEnv) string { return body(9, nil, e.log.checkpoint(t, 8, e.log.signer)) },
			func(e *witnessEnv) reply {
				return reply{400, textPlain, "old size 9 is larger than the checkpoint's size 8\n"}
			}, ""},
		{"stale old size is 409 with the held size",
			func(e *witnessEnv) string { return body(2, e.log.proof(t, 2, 8), e.log.checkpoint(t, 8, e.log.signer)) },
			func(e *witnessEnv) reply { return reply{409, "text/x.tlog.size", "4\n"} }, ""},
		{"old size 0 once a size is held is 409",
			func(e *witnessEnv) string { return body(0, nil, e.log.checkpoint(t, 8, e.log.signer)) },
			func(e *witnessEnv) reply { return reply{409, "text/x.tlog.size", "4\n"} }, ""},
		{"same size other root is 409 and a fork",
			func(e *witnessEnv) string {
				other := &testLog{origin: e.log.origin, signer: e.log.signer, salt: "b"}
				return body(4, nil, other.checkpoint(t, 4, e.log.signer))
			},
			func(e *witnessEnv) reply { return reply{409, "text/x.tlog.size", "4\n"} }, "same size, other root"},
		{"bad proof from a signed checkpoint is 422 and a fork",
			func(e *witnessEnv) string {
				other := &testLog{origin: e.log.origin, signer: e.log.signer, salt: "b"}
				return body(4, other.proof(t, 4, 8), other.checkpoint(t, 8, e.log.signer))
			},
			func(e *witnessEnv) reply { return reply{422, textPlain, "consistency proof does not verify\n"} },
			"consistency proof does not verify"},
		{"leading zero in the old size is 400",
			func(e *witnessEnv) string { return body(4, nil, e.log.checkpoint(t, 4, e.log.signer))[:4] + "04\n\n" },
			func(e *witnessEnv) reply {
				return reply{400, textPlain, "malformed request: old size \"04\" is not a decimal without leading zeros\n"}
			}, ""},
		{"a proof with old size 0 is 400",
			func(e *witnessEnv) string { return body(0, e.log.proof(t, 4, 8), e.log.checkpoint(t, 8, e.log.signer)) },
			func(e *witnessEnv) reply {
				return reply{400, textPlain, "malformed request: the consistency proof must be empty when the old size is 0\n"}
			}, ""},
		{"a proof line that is no hash is 400",
			func(e *witnessEnv) string { return body(4, []string{"AAAA"}, e.log.checkpoint(t, 8, e.log.signer)) },
			func(e *witnessEnv) reply {
				return reply{400, textPlain, "malformed request: proof line 1 is not a 32-byte hash in base64\n"}
			}, ""},
		{"64 proof lines are 400",
			func(e *witnessEnv) string {
				lines := make([]string, 64)
				for i := range lines {
					lines[i] = base64.StdEncoding.EncodeToString(make([]byte, 32))
				}
				return body(4, lines, e.log.checkpoint(t, 8, e.log.signer))
			},
			func(e *witnessEnv) reply {
				return reply{400, textPlain, "malformed request: more than 63 consistency proof lines\n"}
			}, ""},
		{"no empty line is 400",
			func(e *witnessEnv) string { return "old 4\n" },
			func(e *witnessEnv) reply {
				return reply{400, textPlain, "malformed request: no empty line before the checkpoint\n"}
			}, ""},
		{"a body over 64 KiB is 413",
			func(e *witnessEnv) string {
				return body(4, nil, e.log.checkpoint(t, 8, e.log.signer)) + strings.Repeat("x", MaxAddCheckpointBody)
			},
			func(e *witnessEnv) reply { return reply{413, textPlain, "request body larger than 65536 bytes\n"} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newWitnessEnv(t)
			if got := e.post(t, body(0, nil, e.log.checkpoint(t, 4, e.log.signer))); got.status != 200 {
				t.Fatalf("first checkpoint: %+v, want 200", got)
			}
			got, want := e.post(t, tc.req(e)), tc.want(e)
			if got != want {
				t.Errorf("answer %d %q %q\nwant   %d %q %q", got.status, got.ctype, got.body, want.status, want.ctype, want.body)
			}
			if alarm := strings.Contains(e.logs.String(), "witness: FORK"); alarm != (tc.fork != "") {
				t.Errorf("fork alarm in the log = %v, want %v:\n%s", alarm, tc.fork != "", e.logs.String())
			}
			forks := e.forks(t)
			switch {
			case tc.fork == "" && len(forks) != 0:
				t.Errorf("recorded forks %+v, want none", forks)
			case tc.fork != "" && (len(forks) != 1 || forks[0].Reason != tc.fork ||
				!bytes.Equal(forks[0].Held, e.log.checkpoint(t, 4, e.log.signer)) || forks[0].Origin != e.log.origin ||
				!strings.Contains(tc.req(e), string(forks[0].Offered))):
				t.Errorf("recorded forks %+v, want one %q holding both notes", forks, tc.fork)
			}
		})
	}
}

// TestAddCheckpointOtherMethodIs405 pins the answer to a GET.
func TestAddCheckpointOtherMethodIs405(t *testing.T) {
	e := newWitnessEnv(t)
	resp, err := http.Get(e.url)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || string(got) != "add-checkpoint takes POST\n" {
		t.Errorf("GET: %d Allow %q %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"), got)
	}
}

// TestAddCheckpointConcurrentSameOldSizeOnlyOneWins: eight logs' worth of
// submissions from the same held size race; the check and the update are
// one transaction, so one is cosigned and every other is told the winner's
// size.
func TestAddCheckpointConcurrentSameOldSizeOnlyOneWins(t *testing.T) {
	e := newWitnessEnv(t)
	if got := e.post(t, body(0, nil, e.log.checkpoint(t, 4, e.log.signer))); got.status != 200 {
		t.Fatalf("first checkpoint: %+v", got)
	}
	const n = 8
	reqs := make([]string, n)
	for i := range reqs {
		size := int64(5 + i)
		reqs[i] = body(4, e.log.proof(t, 4, size), e.log.checkpoint(t, size, e.log.signer))
	}
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { replies[i] = e.post(t, reqs[i]) })
	}
	wg.Wait()
	winner := -1
	for i, r := range replies {
		if r.status == 200 {
			if winner >= 0 {
				t.Fatalf("submissions %d and %d were both cosigned", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no submission was cosigned: %+v", replies)
	}
	want := reply{409, "text/x.tlog.size", fmt.Sprintf("%d\n", 5+winner)}
	for i, r := range replies {
		if i != winner && r != want {
			t.Errorf("loser %d: %+v, want %+v", i, r, want)
		}
	}
}

// TestAddCheckpointStateSurvivesRestart: what the witness holds is durable.
func TestAddCheckpointStateSurvivesRestart(t *testing.T) {
	e := newWitnessEnv(t)
	if got := e.post(t, body(0, nil, e.log.checkpoint(t, 4, e.log.signer))); got.status != 200 {
		t.Fatalf("first checkpoint: %+v", got)
	}
	e.stop()
	e.start(t)
	if got := e.post(t, body(0, nil, e.log.checkpoint(t, 8, e.log.signer))); got != (reply{409, "text/x.tlog.size", "4\n"}) {
		t.Errorf("after restart, old 0: %+v, want 409 4", got)
	}
	if got := e.post(t, body(4, e.log.proof(t, 4, 8), e.log.checkpoint(t, 8, e.log.signer))); got.status != 200 {
		t.Errorf("after restart, old 4: %+v, want 200", got)
	}
}

// TestAddCheckpointChunkedBodyOverLimitIs413: a body without a
// Content-Length is cut at the limit while it is read.
func TestAddCheckpointChunkedBodyOverLimitIs413(t *testing.T) {
	e := newWitnessEnv(t)
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("x"), 4096)
		for i := 0; i < 2*MaxAddCheckpointBody/len(chunk); i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, err := http.Post(e.url, "text/plain", pr) // no length: chunked
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.Close()
	if resp.StatusCode != 413 || string(got) != "request body larger than 65536 bytes\n" {
		t.Errorf("chunked 128 KiB: %d %q, want 413", resp.StatusCode, got)
	}
}

// TestForkEvidenceIsKeptOnceAndBounded: a bad proof beside a genuine
// checkpoint is a 422 anyone can replay. The same offered note is kept
// once, and at most MaxWitnessForks notes per origin, so replays cannot
// fill the witness's disk.
func TestForkEvidenceIsKeptOnceAndBounded(t *testing.T) {
	e := newWitnessEnv(t)
	if r := e.post(t, body(0, nil, e.log.checkpoint(t, 4, e.log.signer))); r.status != 200 {
		t.Fatalf("first submission: %+v", r)
	}
	bad := func(n int64) string { return body(4, e.log.proof(t, 2, n), e.log.checkpoint(t, n, e.log.signer)) }
	for range 3 {
		if r := e.post(t, bad(8)); r.status != 422 {
			t.Fatalf("bad proof: %+v, want 422", r)
		}
	}
	if got := len(e.forks(t)); got != 1 {
		t.Fatalf("the same fork three times kept %d times, want once", got)
	}
	for n := int64(9); n < 9+MaxWitnessForks+5; n++ {
		if r := e.post(t, bad(n)); r.status != 422 {
			t.Fatalf("bad proof for size %d: %+v, want 422", n, r)
		}
	}
	if got := len(e.forks(t)); got != MaxWitnessForks {
		t.Fatalf("%d forks kept, want the first %d", got, MaxWitnessForks)
	}
}
