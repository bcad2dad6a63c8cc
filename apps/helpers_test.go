package apps_test

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/apps/uid"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/verify"
)

const testOrigin = "0123456789abcdef0123456789abcdef"

// testKey is a deterministic Ed25519 key named by seed.
func testKey(seed string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(s[:])
}

func pubText(k ed25519.PrivateKey) string {
	return apps.KeyText(k.Public().(ed25519.PublicKey))
}

// ledger appends real entries (records encoded by canon, signed by verify,
// entries built by verify.AppendEntry) to one schema chain and applies each
// through EventFromEntry and Apply, as the committer does. Refused records
// are not appended.
// tb is what the ledger needs of *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

type ledger struct {
	tb      tb
	c       apps.Chain
	s       apps.Schema
	kv      apps.MapKV
	seq     uint64
	time    uint64
	prev    [32]byte
	entries [][]byte
	eids    []string // of every accepted vote.register, in order
}

func newLedger(tb tb, schema string, authority ...ed25519.PrivateKey) *ledger {
	s, err := apps.For(schema)
	if err != nil {
		tb.Fatal(err)
	}
	c := apps.Chain{Name: schema, Origin: testOrigin, Schema: schema}
	for _, k := range authority {
		c.Authority = append(c.Authority, k.Public().(ed25519.PublicKey))
	}
	return &ledger{tb: tb, c: c, s: s, kv: apps.MapKV{}, time: 1_700_000_000_000}
}

// entry builds the entry for a record of type typ with payload p at time
// t (0: one second after the previous), signed by signer if not nil.
func (l *ledger) entry(typ string, p any, signer ed25519.PrivateKey, t uint64) []byte {
	l.tb.Helper()
	rec := map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012x", l.seq+uint64(len(typ))<<32), "type": typ, "payload": p}
	b, err := canon.Marshal(rec)
	if err != nil {
		l.tb.Fatal(err)
	}
	if signer != nil {
		if b, err = verify.SignRecord(verify.OriginLine(l.c.Origin, l.c.Name), b, signer); err != nil {
			l.tb.Fatal(err)
		}
	}
	if t == 0 {
		t = l.time + 1000
	}
	return verify.AppendEntry(nil, verify.Entry{V: 1, Seq: l.seq, Prev: l.prev, Time: t, Chain: l.c.Name, Origin: l.c.Origin, Record: b})
}

// apply submits one record; on success the entry is appended.
func (l *ledger) apply(typ string, p any, signer ed25519.PrivateKey, t uint64) (apps.Result, error) {
	l.tb.Helper()
	e := l.entry(typ, p, signer, t)
	ev, _, err := apps.EventFromEntry(e)
	if err != nil {
		l.tb.Fatalf("EventFromEntry: %v", err)
	}
	res, err := l.s.Apply(l.kv, l.c, ev)
	if err != nil {
		return res, err
	}
	l.entries = append(l.entries, e)
	l.prev = verify.LeafHash(e)
	l.seq++
	l.time = ev.Time
	if typ == "vote.register" {
		l.eids = append(l.eids, res.EID)
	}
	return res, nil
}

// must applies and fails the test on refusal.
func (l *ledger) must(typ string, p any, signer ed25519.PrivateKey) apps.Result {
	l.tb.Helper()
	res, err := l.apply(typ, p, signer, 0)
	if err != nil {
		l.tb.Fatalf("%s %v: %v", typ, p, err)
	}
	return res
}

func (l *ledger) view(name string, args map[string]any) map[string]any {
	l.tb.Helper()
	v, err := l.s.View(l.kv, l.c, name, args)
	if err != nil {
		l.tb.Fatalf("view %s %v: %v", name, args, err)
	}
	return v.(map[string]any)
}

// subst replaces "$v0", "$v1"… in payload texts with the eids registered.
func (l *ledger) subst(x any) any {
	switch t := x.(type) {
	case string:
		if strings.HasPrefix(t, "$v") {
			var i int
			fmt.Sscanf(t, "$v%d", &i)
			if i < len(l.eids) {
				return l.eids[i]
			}
		}
		return t
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, v := range t {
			m[k] = l.subst(v)
		}
		return m
	}
	return x
}

func sortedKeys(kv apps.MapKV) []string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// testPublisher is a uid publisher public key (§6.5) as fund.open names it.
var testPublisherKey = func() hpke.PrivateKey {
	k, err := uid.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}()

var testPublisher = uid.PublicKeyText(testPublisherKey.PublicKey())
