package e2e_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// asAdmin is the environment that logs vcli in as the test admin with -u.
var asAdmin = []string{"VSERV_PASSWORD=" + testenv.AdminPass}

func jsonDoc(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, s)
	}
	return m
}

func TestVcliRecordsInManyScriptsRoundTripAndVerifyOffline(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	dir := t.TempDir()
	payloads := []struct{ name, json string }{
		{"arabic", `{"name": "مرحبا بالعالم", "choice": "نعم"}`},
		{"cyrillic", `{"имя": "Привет, мир", "город": "Москва"}`},
		{"cjk", `{"名前": "你好，世界", "日本語": "こんにちは", "한국어": "안녕하세요"}`},
		{"emoji", `{"e": "🗳️✅👍🏽", "flag": "🇸🇦", "zwj": "👩‍👩‍👧"}`},
		{"accents", `{"José": "São Paulo, Zürich, Ελληνικά, עברית"}`},
		{"composed", `"é"`},
		{"decomposed", `"é"`}, // another record: no Unicode normalisation
	}
	ids := map[string]string{}
	for _, p := range payloads {
		t.Run(p.name, func(t *testing.T) {
			receipt := filepath.Join(dir, p.name+".receipt")
			out, _ := e.Vcli(t, 0, asAdmin, "-u", "admin", "--json", "rec", "put", "t", "--type", "greet", "--payload", p.json, "--receipt-out", receipt)
			id := jsonDoc(t, out)["id"].(string)
			ids[p.name] = id
			var want any
			json.Unmarshal([]byte(p.json), &want)

			out, _ = e.Vcli(t, 0, nil, "--json", "verify", "receipt", receipt, "--server-key", e.KeyText())
			doc := jsonDoc(t, out)
			if doc["id"] != id || doc["type"] != "greet" || !reflect.DeepEqual(doc["payload"], want) {
				t.Errorf("verify receipt = %v, want id %s, type greet, payload %v", doc, id, want)
			}

			out, _ = e.Vcli(t, 0, nil, "--json", "rec", "get", "t", id)
			rec := jsonDoc(t, out)["entries"].([]any)[0].(map[string]any)["record"].(map[string]any)
			if !reflect.DeepEqual(rec["payload"], want) {
				t.Errorf("rec get payload = %v, want %v", rec["payload"], want)
			}

			// The bytes the server stored are the UTF-8 bytes sent.
			b, err := e.Admin.GetRecord(e.Ctx, "t", id)
			if err != nil {
				t.Fatal(err)
			}
			_, r, err := verify.ParseEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(jsonRoundTrip(t, r.Payload), want) {
				t.Errorf("stored payload = %#v, want %#v", r.Payload, want)
			}
		})
	}
	if ids["composed"] == ids["decomposed"] {
		t.Error("composed and decomposed é made one record")
	}
}

// jsonRoundTrip turns a decoded CBOR payload into what encoding/json makes of
// the same JSON, for comparison.
func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

func TestVcliRecordCommands(t *testing.T) {
	e := testenv.NewLedgerEnv(t, nil)
	dir := t.TempDir()
	admin := func(args ...string) []string { return append([]string{"-u", "admin"}, args...) }

	// chain create / list
	out, _ := e.Vcli(t, 0, asAdmin, admin("chain", "create", "t", "--public")...)
	if !strings.Contains(out, "created public chain t (pow_bits 0)") {
		t.Errorf("chain create says %q", out)
	}
	e.Vcli(t, 0, asAdmin, admin("chain", "create", "hard", "--public", "--pow-bits", "8")...)
	e.Vcli(t, 1, asAdmin, admin("chain", "create", "t")...) // ERR exists
	e.Vcli(t, 2, asAdmin, admin("chain", "create", "x", "--pow-bits", "40")...)
	out, _ = e.Vcli(t, 0, nil, "--json", "chain", "list")
	var listed struct {
		Chains []struct {
			Name    string `json:"name"`
			PoWBits int    `json:"pow_bits"`
		} `json:"chains"`
	}
	json.Unmarshal([]byte(out), &listed)
	found := map[string]int{}
	for _, c := range listed.Chains {
		found[c.Name] = c.PoWBits
	}
	if bits, ok := found["hard"]; !ok || bits != 8 || found["vote"] != 16 {
		t.Errorf("chain list = %s, want hard with pow_bits 8 and vote with 16", out)
	}
	if _, ok := found["audit"]; ok {
		t.Errorf("anonymous chain list shows the private audit chain: %s", out)
	}

	// rec put: proof of work is solved from the chain's pow_bits; signing.
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	keyFile := filepath.Join(dir, "author.key")
	os.WriteFile(keyFile, seed, 0o600)
	out, _ = e.Vcli(t, 0, asAdmin, admin("--json", "rec", "put", "hard", "--payload", `{"n": 1}`, "--sign-key", keyFile)...)
	hardID := jsonDoc(t, out)["id"].(string)
	b, err := e.Admin.GetRecord(e.Ctx, "hard", hardID)
	if err != nil {
		t.Fatal(err)
	}
	_, r, _ := verify.ParseEntry(b)
	if !verify.PoWValid(r.Hash, r.PoW, 8) || !bytes.Equal(r.Author, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)) {
		t.Errorf("rec put to a pow-8 chain with --sign-key: pow %x author %x", r.PoW, r.Author)
	}
	payloadFile := filepath.Join(dir, "p.json")
	os.WriteFile(payloadFile, []byte(`{"from": "file", "x": [1, 2.5, null, true]}`), 0o644)
	var ids []string
	for _, args := range [][]string{
		{"--payload", `{"n": 0}`},
		{"--file", payloadFile},
		{"--payload", `"third"`, "--type", "note"},
	} {
		out, _ := e.Vcli(t, 0, asAdmin, admin(append([]string{"--json", "rec", "put", "t"}, args...)...)...)
		doc := jsonDoc(t, out)
		if int(doc["seq"].(float64)) != len(ids) || len(doc["leaf"].(string)) != 64 {
			t.Errorf("rec put %v = %v, want seq %d and a hex leaf", args, doc, len(ids))
		}
		ids = append(ids, doc["id"].(string))
	}
	e.Vcli(t, 2, asAdmin, admin("rec", "put", "t")...)                                              // no payload
	e.Vcli(t, 2, asAdmin, admin("rec", "put", "t", "--payload", "1", "--file", payloadFile)...)     // both
	e.Vcli(t, 2, asAdmin, admin("rec", "put", "t", "--payload", `{"a": 1, "a": 2}`)...)             // duplicate key
	e.Vcli(t, 1, asAdmin, admin("rec", "put", "audit", "--payload", "1")...)                        // ERR perm
	e.Vcli(t, 2, nil, "rec", "put", "t", "--payload", "1")                                          // needs -u
	e.Vcli(t, 2, asAdmin, admin("rec", "put", "t", "--payload", "1", "--sign-key", payloadFile)...) // not a key

	// reads
	out, _ = e.Vcli(t, 0, nil, "rec", "get", "t", ids[1], ids[2])
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1 ") || !strings.Contains(lines[0], `{"from":"file","x":[1,2.5,null,true]}`) ||
		!strings.Contains(lines[1], ids[2]+" note \"third\"") {
		t.Errorf("rec get = %q", out)
	}
	out, _ = e.Vcli(t, 0, nil, "rec", "get", "t", ids[0], testenv.NewID())
	if !strings.Contains(out, ": not found") {
		t.Errorf("rec get with a missing id among two = %q, want it marked not found", out)
	}
	e.Vcli(t, 1, nil, "rec", "get", "t", testenv.NewID())
	out, _ = e.Vcli(t, 0, nil, "rec", "abs", "t", "--", "-1", "0")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[0], ids[2]) || !strings.Contains(lines[1], ids[0]) {
		t.Errorf("rec abs t -1 0 = %q", out)
	}
	e.Vcli(t, 2, nil, "rec", "abs", "t", "first")
	out, _ = e.Vcli(t, 0, nil, "rec", "have", "t", ids[0], "00000000-0000-7000-8000-000000000000")
	if out != ids[0]+" yes\n00000000-0000-7000-8000-000000000000 no\n" {
		t.Errorf("rec have = %q", out)
	}
	if out, _ = e.Vcli(t, 0, nil, "rec", "size", "t"); out != "3\n" {
		t.Errorf("rec size = %q, want 3", out)
	}
	if out, _ = e.Vcli(t, 0, nil, "rec", "count", "t"); out != "3\n" {
		t.Errorf("rec count = %q, want 3", out)
	}
	if out, _ = e.Vcli(t, 0, nil, "rec", "count", "t", "--to", "2000-01-01T00:00:00Z"); out != "0\n" {
		t.Errorf("rec count before 2000 = %q, want 0", out)
	}
	if out, _ = e.Vcli(t, 0, nil, "rec", "list", "t"); out != strings.Join(ids, "\n")+"\n" {
		t.Errorf("rec list = %q, want the three ids in order", out)
	}
	out, errOut := e.Vcli(t, 0, nil, "rec", "list", "t", "--limit", "2")
	var cursor string
	for _, line := range strings.Split(errOut, "\n") {
		if c, ok := strings.CutPrefix(line, "next page: --cursor "); ok {
			cursor = c
		}
	}
	if out != ids[0]+"\n"+ids[1]+"\n" || cursor == "" {
		t.Fatalf("rec list --limit 2 = %q, stderr %q", out, errOut)
	}
	if out, _ = e.Vcli(t, 0, nil, "rec", "list", "t", "--limit", "2", "--cursor", cursor); out != ids[2]+"\n" {
		t.Errorf("rec list second page = %q, want %s", out, ids[2])
	}

	// proof, head, check
	receipt := filepath.Join(dir, "r1")
	e.Vcli(t, 0, nil, "rec", "proof", "t", ids[1], "-o", receipt)
	bySeq, _ := e.Vcli(t, 0, nil, "rec", "proof", "t", "1")
	if saved, _ := os.ReadFile(receipt); string(saved) != bySeq {
		t.Errorf("rec proof by id and by seq differ:\n%s\n%s", saved, bySeq)
	}
	e.Vcli(t, 1, nil, "rec", "proof", "t", "3")
	out, _ = e.Vcli(t, 0, nil, "--json", "rec", "head", "t")
	if doc := jsonDoc(t, out); doc["size"] != 3.0 || doc["origin"] != verify.OriginLine(e.Admin.ServerID(), "t") {
		t.Errorf("rec head = %v", doc)
	}
	out, _ = e.Vcli(t, 0, asAdmin, admin("rec", "check", "t")...)
	if out != "t: 3 entries checked, 0 faults\n" {
		t.Errorf("rec check = %q", out)
	}
	e.Vcli(t, 2, nil, "rec", "check", "t", "--json") // needs -u
	e.Vcli(t, 1, asAdmin, admin("rec", "check", "t", "everything")...)

	// grants
	e.Srv.AddUser("bob", "bob-password", false)
	bob := []string{"VSERV_PASSWORD=bob-password"}
	e.Vcli(t, 1, bob, "-u", "bob", "rec", "put", "t", "--payload", "1")
	e.Vcli(t, 0, asAdmin, admin("chain", "grant", "bob", "t", "write")...)
	e.Vcli(t, 0, bob, "-u", "bob", "rec", "put", "t", "--payload", "1")
	e.Vcli(t, 0, asAdmin, admin("chain", "revoke", "bob", "t", "write")...)
	e.Vcli(t, 1, bob, "-u", "bob", "rec", "put", "t", "--payload", "2")
	e.Vcli(t, 2, asAdmin, admin("chain", "grant", "bob", "t", "own")...)
	e.Vcli(t, 1, asAdmin, admin("chain", "grant", "bob", "audit", "write")...)

	// verify receipt: key forms and failures
	fp := secure.Fingerprint(e.Key)
	home := t.TempDir()
	withHome := []string{"HOME=" + home, "XDG_CONFIG_HOME="}
	e.Vcli(t, 0, withHome, "id") // first contact records the key in known_hosts
	e.Vcli(t, 0, withHome, "verify", "receipt", receipt, "--server-key", fp)
	_, errOut = e.Vcli(t, 2, nil, "verify", "receipt", receipt, "--server-key", fp)
	if !strings.Contains(errOut, "need the public key (`vcli id` prints it)") {
		t.Errorf("fingerprint not in known_hosts: stderr %q", errOut)
	}
	e.Vcli(t, 2, nil, "verify", "receipt", receipt)
	e.Vcli(t, 2, nil, "verify", "receipt", filepath.Join(dir, "missing"), "--server-key", e.KeyText())
	otherKey, _, _ := ed25519.GenerateKey(nil)
	e.Vcli(t, 1, nil, "verify", "receipt", receipt, "--server-key", secure.PublicKeyText(otherKey))
	e.Vcli(t, 1, nil, "verify", "receipt", receipt, "--server-key", e.KeyText(), "--witness", secure.PublicKeyText(otherKey), "--quorum", "1")
	saved, _ := os.ReadFile(receipt)
	broken := filepath.Join(dir, "broken")
	os.WriteFile(broken, bytes.Replace(saved, []byte("\nindex 1\n"), []byte("\nindex 0\n"), 1), 0o644)
	_, errOut = e.Vcli(t, 1, nil, "verify", "receipt", broken, "--server-key", e.KeyText())
	if !strings.Contains(errOut, "does NOT verify") {
		t.Errorf("a broken receipt: stderr %q", errOut)
	}

	// verify chain
	out, _ = e.Vcli(t, 0, nil, "verify", "chain", "t")
	if !strings.HasPrefix(out, "ok: chain t, 4 entries verified") {
		t.Errorf("verify chain t = %q", out)
	}
	out, _ = e.Vcli(t, 0, nil, "--json", "verify", "chain", "hard")
	if doc := jsonDoc(t, out); doc["ok"] != true || doc["size"] != 1.0 {
		t.Errorf("verify chain hard = %v", doc)
	}
	e.Vcli(t, 1, nil, "verify", "chain", "audit") // private: notfound without login
	e.Vcli(t, 0, asAdmin, admin("verify", "chain", "audit")...)
}

func TestVservVerifyOnACleanDataDirectory(t *testing.T) {
	e := testenv.NewLedgerEnv(t, []string{"t"})
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "v", 0, 25)...)
	testenv.Put(t, e.Admin, "t", false, testenv.Numbered(t, "v", 25, 25)...)
	vserv := testenv.Bin(t, "vserv")

	_, errOut, code := testenv.RunCmd(t, vserv, "verify", "-r", e.Srv.DataRoot)
	if code != 1 || !strings.Contains(errOut, "stop it, or work on a copy") {
		t.Errorf("vserv verify while the server runs: exit %d, stderr %q; want 1 and advice to stop it or copy", code, errOut)
	}
	if err := e.Srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	out, errOut, code := testenv.RunCmd(t, vserv, "verify", "-r", e.Srv.DataRoot)
	if code != 0 || !strings.HasPrefix(out, "ok: 6 chains, ") || !strings.Contains(out, " entries verified in ") {
		t.Errorf("vserv verify: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	_, errOut, code = testenv.RunCmd(t, vserv, "verify", "-r", filepath.Join(t.TempDir(), "none"), "--server-key", e.KeyText())
	if code != 2 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("vserv verify of a missing directory: exit %d, stderr %q; want 2 and \"does not exist\"", code, errOut)
	}
	_, errOut, code = testenv.RunCmd(t, vserv, "verify", "-r", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "identity.key is missing") {
		t.Errorf("vserv verify without identity.key: exit %d, stderr %q", code, errOut)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	_, errOut, code = testenv.RunCmd(t, vserv, "verify", "-r", e.Srv.DataRoot, "-q", "--server-key", secure.PublicKeyText(other))
	if code != 1 || !strings.Contains(errOut, "does not match server-id") {
		t.Errorf("vserv verify with another key: exit %d, stderr %q; want 1 and one line saying the key does not match", code, errOut)
	}
}
