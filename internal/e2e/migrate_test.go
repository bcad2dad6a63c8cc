package e2e_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// The v1 fixture: a data directory written by the release before issue 9's
// storage layer (commit aa63e55), made by testdata/mkv1 with that commit's own
// vserv and vcli, and the manifest of everything in it.
const (
	v1TarballPath  = "testdata/datadir-v1.tar.gz"
	v1ManifestPath = "testdata/datadir-v1.json"
)

// expectMigration says whether the current server migrates the v1 layout at
// its first start. It is false while the server still reads that layout as
// its own. The lead sets it to true when merging the migration of
// internal/store/bolt (chains keyed by origin server-id and name, issue 9);
// checkMigration then demands the backup of ledger.db and a single migration.
const expectMigration = true

// v1Manifest is datadir-v1.json, as testdata/mkv1 writes it.
type v1Manifest struct {
	Commit   string `json:"commit"`
	ServerID string `json:"server_id"`
	Keys     struct {
		OldFingerprint string `json:"old_fingerprint"`
		OldPublicKey   string `json:"old_public_key"`
		NewFingerprint string `json:"new_fingerprint"`
		NewPublicKey   string `json:"new_public_key"`
		RotationSeq    uint64 `json:"rotation_seq"`
	} `json:"keys"`
	Users []struct {
		Name          string   `json:"name"`
		Password      string   `json:"password"`
		Admin         bool     `json:"admin"`
		Enabled       bool     `json:"enabled"`
		TOTPSecret    string   `json:"totp_secret"`
		RecoveryCodes []string `json:"recovery_codes"`
	} `json:"users"`
	Chains  []client.ChainInfo `json:"chains"`
	Records []struct {
		Chain  string `json:"chain"`
		Seq    uint64 `json:"seq"`
		ID     string `json:"id"`
		Record []byte `json:"record"`
		Entry  []byte `json:"entry"`
	} `json:"records"`
	Receipts []struct {
		Chain   string `json:"chain"`
		ID      string `json:"id"`
		Seq     uint64 `json:"seq"`
		Key     string `json:"key"` // "old" or "new": the key that signed its checkpoint
		Receipt string `json:"receipt"`
	} `json:"receipts"`
	Files []struct {
		User   string `json:"user"`
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
	Views []struct {
		Args []string        `json:"args"`
		Size uint64          `json:"size"`
		View json.RawMessage `json:"view"`
	} `json:"views"`
	Tarball struct {
		SHA256 string `json:"sha256"`
	} `json:"tarball"`
}

// TestMigrateV1DataDirKeepsRecordsReceiptsLoginsAndFiles opens the v1 data
// directory with the current server and checks, through the client library
// and vcli, that everything a user had is as before: every entry byte for
// byte, every receipt, every login (the TOTP one with a code of now, the
// disabled one refused), every file, the rotated identity, the application
// views; that the old chains take new records that verify; and that
// `vserv verify` is clean. Issue 9's migration must keep it passing.
func TestMigrateV1DataDirKeepsRecordsReceiptsLoginsAndFiles(t *testing.T) {
	m := loadV1Manifest(t)
	dir := filepath.Join(t.TempDir(), "data")
	unpackV1(t, m, dir)
	ledgerV1, err := os.ReadFile(filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	h := &v1Run{t: t, ctx: t.Context(), m: m, dir: dir, pw: v1PasswordFiles(t, m)}
	h.s = testenv.Start(t, testenv.WithDataRoot(dir), testenv.WithArgs("--rate-ip", "100000"))

	h.checkIdentity()
	admin := h.login("admin")
	h.checkChains(admin, nil)
	h.checkRecords(admin)
	h.checkReceipts(admin)
	h.checkLogins()
	h.checkFiles()
	h.checkViews()
	grown := h.appendToOldChains(admin)
	h.checkChains(admin, grown)
	admin.Close()

	firstLog := h.s.Stderr()
	if err := h.s.Stop(); err != nil {
		t.Errorf("the server did not stop cleanly: %v", err)
	}
	if out, err := vservTool(t, "verify", "-r", dir); err != nil {
		t.Errorf("vserv verify -r on the migrated directory: %v\n%s", err, out)
	}

	// A second start: nothing to migrate any more, and it still serves.
	h.s = testenv.Start(t, testenv.WithDataRoot(dir), testenv.WithArgs("--rate-ip", "100000"))
	admin = h.login("admin")
	h.checkChains(admin, grown)
	admin.Close()
	checkMigration(t, dir, ledgerV1, firstLog, h.s.Stderr())
	// Last: a refused login starts the address's backoff.
	h.checkDisabledRefused()
}

// TestMigrateV1DataDirVerifiesOfflineBeforeFirstStart: an operator who
// upgrades and runs `vserv verify -r` before starting the new server gets a
// clean report, and the offline tool changes nothing in the directory.
func TestMigrateV1DataDirVerifiesOfflineBeforeFirstStart(t *testing.T) {
	m := loadV1Manifest(t)
	dir := filepath.Join(t.TempDir(), "data")
	unpackV1(t, m, dir)
	before := dirDigest(t, dir)
	if out, err := vservTool(t, "verify", "-r", dir); err != nil {
		t.Errorf("vserv verify -r on the v1 directory: %v\n%s", err, out)
	}
	if after := dirDigest(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("vserv verify changed the directory:\nbefore %v\nafter  %v", before, after)
	}
}

// vservTool runs one of vserv's offline tools and returns its output. A
// -race binary would otherwise sleep a second at exit.
func vservTool(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(testenv.Bin(t, "vserv"), args...)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	return cmd.CombinedOutput()
}

// dirDigest maps every path under dir to the sha256 of its content ("dir"
// for a directory).
func dirDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// v1Run holds what the checks of one run share.
type v1Run struct {
	t   *testing.T
	ctx context.Context
	m   *v1Manifest
	dir string
	s   *testenv.Server
	pw  map[string]string // user name → password file
}

func loadV1Manifest(t *testing.T) *v1Manifest {
	t.Helper()
	b, err := os.ReadFile(v1ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var m v1Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", v1ManifestPath, err)
	}
	if len(m.Records) == 0 || len(m.Receipts) == 0 || len(m.Users) == 0 || len(m.Files) == 0 {
		t.Fatalf("%s lists %d records, %d receipts, %d users, %d files; want some of each",
			v1ManifestPath, len(m.Records), len(m.Receipts), len(m.Users), len(m.Files))
	}
	return &m
}

// unpackV1 extracts the fixture into dir (created 0700, as vserv makes its
// data directories), keeping modes and times.
func unpackV1(t *testing.T, m *v1Manifest, dir string) {
	t.Helper()
	tgz, err := os.ReadFile(v1TarballPath)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(tgz); hex.EncodeToString(sum[:]) != m.Tarball.SHA256 {
		t.Fatalf("%s has sha256 %x, the manifest says %s: regenerate both with testdata/mkv1", v1TarballPath, sum, m.Tarball.SHA256)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	type dirTime struct {
		path string
		mt   time.Time
	}
	var dirs []dirTime
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean(hd.Name)
		if !filepath.IsLocal(name) {
			t.Fatalf("tarball entry %q leaves the directory", hd.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch hd.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, hd.FileInfo().Mode().Perm()); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, dirTime{p, hd.ModTime})
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, hd.FileInfo().Mode().Perm()); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, hd.ModTime, hd.ModTime); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("tarball entry %q: type %c, want files and directories only", hd.Name, hd.Typeflag)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // children first: writing into a directory changes its time
		if err := os.Chtimes(dirs[i].path, dirs[i].mt, dirs[i].mt); err != nil {
			t.Fatal(err)
		}
	}
}

func v1PasswordFiles(t *testing.T, m *v1Manifest) map[string]string {
	t.Helper()
	dir := t.TempDir()
	pw := map[string]string{}
	for _, u := range m.Users {
		f := filepath.Join(dir, u.Name+".pw")
		if err := os.WriteFile(f, []byte(u.Password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		pw[u.Name] = f
	}
	return pw
}

func (h *v1Run) user(name string) int {
	for i, u := range h.m.Users {
		if u.Name == name {
			return i
		}
	}
	h.t.Fatalf("the manifest has no user %s", name)
	return -1
}

func v1PublicKey(t *testing.T, text string) ed25519.PublicKey {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(b) != ed25519.PublicKeySize {
		t.Fatalf("public key %q: %v", text, err)
	}
	return b
}

// totpCodeNow is the code an authenticator app shows now for secret.
func totpCodeNow(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// login opens a verified session as a manifest user, with a TOTP code of
// now when the user enrolled one.
func (h *v1Run) login(name string) *client.Client {
	h.t.Helper()
	u := h.m.Users[h.user(name)]
	c := h.s.Dial()
	l, err := c.Login(h.ctx, u.Name, u.Password)
	if err != nil {
		h.t.Fatalf("login %s: %v", name, err)
	}
	if l.Needs2FA != (u.TOTPSecret != "") {
		h.t.Fatalf("login %s: needs2fa %v, but the manifest says TOTP enrolled %v", name, l.Needs2FA, u.TOTPSecret != "")
	}
	if l.Needs2FA {
		if err := c.TwoFA(h.ctx, totpCodeNow(h.t, u.TOTPSecret)); err != nil {
			h.t.Fatalf("twofa %s with the code of now: %v", name, err)
		}
	}
	if want := map[bool]string{true: "admin", false: "user"}[u.Admin]; l.Role != want {
		h.t.Errorf("login %s: role %q, want %q", name, l.Role, want)
	}
	return c
}

// vcli runs vcli as user ("" = no login) with --json and decodes its one
// document into v (when not nil); it wants exit status 0.
func (h *v1Run) vcli(user string, v any, args ...string) {
	h.t.Helper()
	all := []string{"--json"}
	if user != "" {
		all = append(all, "-u", user, "--pass-file", h.pw[user])
	}
	out, errOut, code := h.s.Vcli("", nil, append(all, args...)...)
	if code != 0 {
		h.t.Fatalf("vcli %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			h.t.Fatalf("vcli %s: %v in %s", strings.Join(args, " "), err, out)
		}
	}
}

// checkIdentity: the server serves the rotated key under the same server-id,
// and its rotation receipt leads from the old key to it.
func (h *v1Run) checkIdentity() {
	t := h.t
	id, err := h.s.Dial().ID(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.ServerID != h.m.ServerID || id.Fingerprint != h.m.Keys.NewFingerprint || id.PublicKey != h.m.Keys.NewPublicKey {
		t.Errorf("id = %s %s %s, want %s %s %s (the rotated key)", id.ServerID, id.Fingerprint, id.PublicKey,
			h.m.ServerID, h.m.Keys.NewFingerprint, h.m.Keys.NewPublicKey)
	}
	if len(id.Receipts) != 1 {
		t.Fatalf("id has %d rotation receipts, want 1", len(id.Receipts))
	}
	next, err := verify.FollowRotations(v1PublicKey(t, h.m.Keys.OldPublicKey), h.m.ServerID, [][]byte{[]byte(id.Receipts[0])})
	if err != nil || !next.Equal(v1PublicKey(t, h.m.Keys.NewPublicKey)) {
		t.Errorf("the rotation receipt leads from the old key to %x, %v; want the new key", next, err)
	}
	// A client that pinned the new fingerprint connects.
	pinned := h.s.Dial(func(o *client.Options) { o.ServerKey = h.m.Keys.NewFingerprint; o.NoKnownHosts = false })
	if _, err := pinned.Hello(h.ctx); err != nil {
		t.Errorf("hello with the new fingerprint pinned: %v", err)
	}
}

// checkChains compares the chains the admin sees with the manifest's, with
// the sizes of grown where it names a chain. The audit chain, which the
// server writes on its own (a recovery code used, say), only keeps its old
// entries: it may have more.
func (h *v1Run) checkChains(admin *client.Client, grown map[string]uint64) {
	t := h.t
	got, err := admin.Chains(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []client.ChainInfo
	for _, c := range h.m.Chains {
		if n, ok := grown[c.Name]; ok {
			c.Size = n
		}
		// The manifest predates `chains` naming each chain's origin: all
		// of them are the server's own.
		c.Origin = admin.ServerID()
		want = append(want, c)
	}
	for i := range got {
		if got[i].Name == "audit" && i < len(want) && want[i].Name == "audit" && got[i].Size >= want[i].Size {
			got[i].Size = want[i].Size
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chains:\n got %+v\nwant %+v", got, want)
	}
}

// checkRecords reads every entry of the manifest by seq and by id, as the
// admin, and wants the same bytes and the same record inside them. Public
// chains read the same without an account (and through vcli); the private
// chain does not exist without one, and its reader sees it.
func (h *v1Run) checkRecords(admin *client.Client) {
	t := h.t
	byChain := map[string][]int{}
	var order []string
	for i, r := range h.m.Records {
		if _, ok := byChain[r.Chain]; !ok {
			order = append(order, r.Chain)
		}
		byChain[r.Chain] = append(byChain[r.Chain], i)
	}
	anon := h.s.Dial()
	reader := h.login("ann")
	defer reader.Close()
	for _, chain := range order {
		var seqs []int64
		var ids []string
		for _, i := range byChain[chain] {
			seqs = append(seqs, int64(h.m.Records[i].Seq))
			ids = append(ids, h.m.Records[i].ID)
		}
		bySeq, err := admin.AbsRecords(h.ctx, chain, seqs)
		if err != nil {
			t.Fatalf("rabs %s: %v", chain, err)
		}
		byID, err := admin.GetRecords(h.ctx, chain, ids)
		if err != nil {
			t.Fatalf("rget %s: %v", chain, err)
		}
		for k, i := range byChain[chain] {
			r := h.m.Records[i]
			if !bytes.Equal(bySeq[k], r.Entry) {
				t.Errorf("rabs %s %d: entry\n%x\nwant\n%x", chain, r.Seq, bySeq[k], r.Entry)
			}
			if !bytes.Equal(byID[k], r.Entry) {
				t.Errorf("rget %s %s: entry\n%x\nwant\n%x", chain, r.ID, byID[k], r.Entry)
			}
			e, rec, err := verify.ParseEntry(bySeq[k])
			if err != nil {
				t.Errorf("%s %d: the entry does not parse: %v", chain, r.Seq, err)
				continue
			}
			if e.Seq != r.Seq || e.Chain != chain || e.Origin != h.m.ServerID || rec.ID != r.ID || !bytes.Equal(rec.Raw, r.Record) {
				t.Errorf("%s %d: entry holds seq %d chain %s origin %s record %s %x; want %d %s %s %s %x",
					chain, r.Seq, e.Seq, e.Chain, e.Origin, rec.ID, rec.Raw, r.Seq, chain, h.m.ServerID, r.ID, r.Record)
			}
		}
		last, err := admin.AbsRecord(h.ctx, chain, -1)
		if want := h.m.Records[byChain[chain][len(byChain[chain])-1]].Entry; err != nil || !bytes.Equal(last, want) {
			t.Errorf("rabs %s -1: %x, %v; want the last entry %x", chain, last, err, want)
		}
		public := false
		for _, c := range h.m.Chains {
			if c.Name == chain {
				public = c.Public
			}
		}
		switch {
		case public:
			got, err := anon.AbsRecords(h.ctx, chain, seqs)
			if err != nil || !reflect.DeepEqual(got, bySeq) {
				t.Errorf("rabs %s without an account: %v; want the admin's entries", chain, err)
			}
		case chain == "payroll":
			if _, err := anon.AbsRecord(h.ctx, chain, 0); !errors.Is(err, client.ErrNotFound) {
				t.Errorf("rabs payroll 0 without an account: %v, want ERR notfound", err)
			}
			got, err := reader.AbsRecords(h.ctx, chain, seqs)
			if err != nil || !reflect.DeepEqual(got, bySeq) {
				t.Errorf("rabs payroll as its reader ann: %v; want the admin's entries", err)
			}
		}
	}
	// vcli shows the exact entry bytes too.
	var notes struct {
		Entries []struct {
			Entry []byte `json:"entry"`
		} `json:"entries"`
	}
	args := []string{"rec", "abs", "notes"}
	var want [][]byte
	for _, i := range byChain["notes"] {
		args = append(args, strconv.FormatUint(h.m.Records[i].Seq, 10))
		want = append(want, h.m.Records[i].Entry)
	}
	h.vcli("", &notes, args...)
	if len(notes.Entries) != len(want) {
		t.Fatalf("vcli rec abs notes: %d entries, want %d", len(notes.Entries), len(want))
	}
	for k, e := range notes.Entries {
		if !bytes.Equal(e.Entry, want[k]) {
			t.Errorf("vcli rec abs notes: entry %d differs", k)
		}
	}
}

// entryAt returns the manifest's entry bytes of chain at seq.
func (h *v1Run) entryAt(chain string, seq uint64) []byte {
	for _, r := range h.m.Records {
		if r.Chain == chain && r.Seq == seq {
			return r.Entry
		}
	}
	h.t.Fatalf("the manifest has no entry %s %d", chain, seq)
	return nil
}

// checkReceipts verifies every saved receipt with the key that signed it
// (old receipts with the old key, as a verifier who never heard of the
// rotation would) through package verify, one of each key through vcli, and
// a fresh proof of each record with the new key.
func (h *v1Run) checkReceipts(admin *client.Client) {
	t := h.t
	dir := t.TempDir()
	newKey := v1PublicKey(t, h.m.Keys.NewPublicKey)
	throughVcli := map[string]bool{}
	for i, r := range h.m.Receipts {
		keyText, serverID := h.m.Keys.OldPublicKey, ""
		if r.Key == "new" {
			keyText, serverID = h.m.Keys.NewPublicKey, h.m.ServerID
		}
		vr, err := verify.VerifyReceipt([]byte(r.Receipt), verify.ReceiptOptions{ServerKey: v1PublicKey(t, keyText), ServerID: serverID})
		if err != nil {
			t.Errorf("saved receipt of %s %d (%s key): %v", r.Chain, r.Seq, r.Key, err)
		} else if !bytes.Equal(vr.EntryBytes, h.entryAt(r.Chain, r.Seq)) {
			t.Errorf("saved receipt of %s %d proves another entry", r.Chain, r.Seq)
		}
		if !throughVcli[r.Key] { // one of each kind is enough for vcli's part
			throughVcli[r.Key] = true
			file := filepath.Join(dir, strconv.Itoa(i)+".receipt")
			if err := os.WriteFile(file, []byte(r.Receipt), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"verify", "receipt", file, "--server-key", keyText}
			if serverID != "" {
				args = append(args, "--server-id", serverID)
			}
			h.vcli("", nil, args...)
		}

		fresh, err := admin.Proof(h.ctx, r.Chain, client.ByID(r.ID), 0)
		if err != nil {
			t.Errorf("rproof %s %s: %v", r.Chain, r.ID, err)
			continue
		}
		vr, err = verify.VerifyReceipt([]byte(fresh), verify.ReceiptOptions{ServerKey: newKey, ServerID: h.m.ServerID})
		if err != nil {
			t.Errorf("fresh receipt of %s %d with the new key: %v", r.Chain, r.Seq, err)
		} else if !bytes.Equal(vr.EntryBytes, h.entryAt(r.Chain, r.Seq)) {
			t.Errorf("fresh receipt of %s %d proves another entry", r.Chain, r.Seq)
		}
	}
}

// checkLogins logs every enabled user in (the TOTP one with a code of now,
// and again through vcli with a recovery code) and compares the account
// list with the manifest.
func (h *v1Run) checkLogins() {
	t := h.t
	type account struct {
		Name    string
		Role    string
		Enabled bool
		Has2FA  bool
	}
	var want []account
	for _, u := range h.m.Users {
		want = append(want, account{u.Name, map[bool]string{true: "admin", false: "user"}[u.Admin], u.Enabled, u.TOTPSecret != ""})
		if !u.Enabled {
			continue
		}
		h.login(u.Name).Close()
		if len(u.RecoveryCodes) > 0 {
			var hello struct {
				OK bool `json:"ok"`
			}
			h.vcli(u.Name, &hello, "--otp", u.RecoveryCodes[0], "hello")
			if !hello.OK {
				t.Errorf("vcli hello as %s with a recovery code: not ok", u.Name)
			}
		}
	}
	admin := h.login("admin")
	defer admin.Close()
	list, err := admin.ListUsers(h.ctx, "all")
	if err != nil {
		t.Fatal(err)
	}
	var got []account
	for _, u := range list {
		got = append(got, account{u.Name, u.Role, u.Enabled, u.Has2FA})
	}
	byName := func(a []account) map[string]account {
		m := map[string]account{}
		for _, x := range a {
			m[x.Name] = x
		}
		return m
	}
	if !reflect.DeepEqual(byName(got), byName(want)) {
		t.Errorf("ulist all:\n got %+v\nwant %+v", got, want)
	}
}

// checkDisabledRefused: a disabled account's right password is ERR auth.
func (h *v1Run) checkDisabledRefused() {
	for _, u := range h.m.Users {
		if u.Enabled {
			continue
		}
		if _, err := h.s.Dial().Login(h.ctx, u.Name, u.Password); !errors.Is(err, client.ErrAuth) {
			h.t.Errorf("login of the disabled %s: %v, want ERR auth", u.Name, err)
		}
	}
}

// checkFiles downloads every file of the manifest from its owner's home, and
// one through vcli.
func (h *v1Run) checkFiles() {
	t := h.t
	sessions := map[string]*client.Client{}
	for _, f := range h.m.Files {
		c := sessions[f.User]
		if c == nil {
			c = h.login(f.User)
			sessions[f.User] = c
		}
		var buf bytes.Buffer
		n, err := c.Download(h.ctx, f.Path, &buf, nil)
		sum := sha256.Sum256(buf.Bytes())
		if err != nil || n != f.Size || int64(buf.Len()) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("fget %s of %s: %d bytes, sha256 %x, %v; want %d bytes, %s", f.Path, f.User, buf.Len(), sum, err, f.Size, f.SHA256)
		}
	}
	for _, c := range sessions {
		c.Close()
	}
	f := h.m.Files[0]
	local := filepath.Join(t.TempDir(), "copy")
	h.vcli(f.User, nil, "file", "get", f.Path, local)
	b, err := os.ReadFile(local)
	if sum := sha256.Sum256(b); err != nil || hex.EncodeToString(sum[:]) != f.SHA256 {
		t.Errorf("vcli file get %s: sha256 %x, %v; want %s", f.Path, sum, err, f.SHA256)
	}
}

// checkViews: the application views (tallies, funds) are what they were.
func (h *v1Run) checkViews() {
	for _, v := range h.m.Views {
		var got struct {
			Size uint64          `json:"size"`
			View json.RawMessage `json:"view"`
		}
		h.vcli("", &got, v.Args...)
		var g, w any
		if err := json.Unmarshal(got.View, &g); err != nil {
			h.t.Fatal(err)
		}
		if err := json.Unmarshal(v.View, &w); err != nil {
			h.t.Fatal(err)
		}
		if got.Size != v.Size || !reflect.DeepEqual(g, w) {
			h.t.Errorf("vcli %s: size %d view %s; want size %d view %s", strings.Join(v.Args, " "), got.Size, got.View, v.Size, v.View)
		}
	}
}

// appendToOldChains writes to the old chains through vcli and the client
// library, checks the new receipts with the new key, that the vote rules
// still know the old casts, and that whole chains verify. It returns the new
// sizes of the chains it wrote.
func (h *v1Run) appendToOldChains(admin *client.Client) map[string]uint64 {
	t := h.t
	size := map[string]uint64{}
	for _, c := range h.m.Chains {
		size[c.Name] = c.Size
	}
	grown := map[string]uint64{}
	check := func(chain string, seq uint64) {
		t.Helper()
		if seq != size[chain] {
			t.Errorf("new record on %s got seq %d, want %d (after the old entries)", chain, seq, size[chain])
		}
		size[chain]++
		grown[chain] = size[chain]
	}
	newKey, serverID := h.m.Keys.NewPublicKey, h.m.ServerID

	// notes, through vcli, with a receipt vcli verifies with the new key.
	receipt := filepath.Join(t.TempDir(), "new.receipt")
	var put struct {
		Seq uint64 `json:"seq"`
	}
	h.vcli("bob", &put, "rec", "put", "notes", "--type", "note", "--payload", `{"text": "after the migration"}`, "--receipt-out", receipt)
	check("notes", put.Seq)
	h.vcli("", nil, "verify", "receipt", receipt, "--server-key", newKey, "--server-id", serverID)

	// payroll (private), through the client library.
	bob := h.login("bob")
	defer bob.Close()
	rec, err := client.NewRecord(map[string]any{"to": "dave", "cents": uint64(1)}, "pay", 0, client.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := bob.PutRecords(h.ctx, "payroll", [][]byte{rec}, true)
	if err != nil {
		t.Fatalf("rput payroll as bob: %v", err)
	}
	check("payroll", res[0].Seq)
	if _, err := verify.VerifyReceipt([]byte(res[0].Receipt), verify.ReceiptOptions{ServerKey: v1PublicKey(t, newKey), ServerID: serverID}); err != nil {
		t.Errorf("receipt of the new payroll record: %v", err)
	}

	// vote: the old casts still count for the rules; a new voter votes.
	var reg struct {
		Seq uint64 `json:"seq"`
		EID string `json:"eid"`
	}
	h.vcli("admin", &reg, "vote", "register", "voter-cy")
	check("vote", reg.Seq)
	h.vcli("admin", &put, "vote", "cast", reg.EID, "lunch", "salad")
	check("vote", put.Seq)
	var ann struct {
		View struct {
			EID string `json:"eid"`
		} `json:"view"`
	}
	h.vcli("", &ann, "vote", "voter", "--voter-id", "voter-ann")
	out, _, code := h.s.Vcli("", nil, "--json", "-u", "admin", "--pass-file", h.pw["admin"], "vote", "cast", ann.View.EID, "lunch", "salad")
	if code != 1 || !strings.Contains(out, `"invalid"`) || !strings.Contains(out, "already") {
		t.Errorf("a second cast of voter-ann: exit %d %s; want ERR invalid (an active cast exists)", code, out)
	}
	var tally struct {
		View struct {
			Choices map[string]uint64 `json:"choices"`
		} `json:"view"`
	}
	h.vcli("", &tally, "vote", "tally", "lunch")
	if want := map[string]uint64{"pizza": 1, "salad": 2}; !reflect.DeepEqual(tally.View.Choices, want) {
		t.Errorf("tally of lunch after one more cast: %v, want %v", tally.View.Choices, want)
	}

	// donation: the balance goes on from the old one.
	h.vcli("admin", &put, "fund", "in", "zakat", "100")
	check("donation", put.Seq)
	var fund struct {
		View struct {
			Balance uint64 `json:"balance"`
		} `json:"view"`
	}
	h.vcli("", &fund, "fund", "show", "zakat")
	if fund.View.Balance != 5000+2500-1200+100 {
		t.Errorf("zakat balance %d, want %d", fund.View.Balance, 5000+2500-1200+100)
	}

	// Whole chains verify, online and through vcli.
	for _, c := range h.m.Chains {
		r, err := admin.CheckChain(h.ctx, c.Name, "all")
		if err != nil || len(r.Errors) != 0 {
			t.Errorf("rcheck %s all: %+v, %v", c.Name, r, err)
		}
	}
	for _, chain := range []string{"notes", "vote"} {
		h.vcli("", nil, "verify", "chain", chain)
	}
	return grown
}

// checkMigration checks what issue 9's migration promises once
// expectMigration is true: the first start made one backup of ledger.db,
// byte-identical to the v1 file, and said in its log that it migrated; the
// second start did not migrate again. Until then it checks the opposite, so
// that flipping the constant is the only change the merge needs.
func checkMigration(t *testing.T, dir string, ledgerV1 []byte, firstLog, secondLog string) {
	t.Helper()
	// Any file named like ledger.db but longer, beside it or one level
	// down, is a backup: the migration chooses the exact name.
	var backups []string
	for _, pattern := range []string{"ledger.db?*", filepath.Join("*", "ledger.db*")} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		backups = append(backups, m...)
	}
	// The data directory's path holds the test's name, which says "Migrate".
	migrated := func(log string) bool {
		return strings.Contains(strings.ToLower(strings.ReplaceAll(log, t.Name(), "")), "migrat")
	}
	if !expectMigration {
		if len(backups) != 0 || migrated(firstLog) || migrated(secondLog) {
			t.Errorf("expectMigration is false, but there are backups %v or the log mentions a migration", backups)
		}
		return
	}
	if len(backups) != 1 {
		t.Fatalf("backups of ledger.db after two starts: %v, want exactly one", backups)
	}
	b, err := os.ReadFile(backups[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, ledgerV1) {
		t.Errorf("the backup %s (%d bytes) is not the v1 ledger.db (%d bytes) byte for byte", backups[0], len(b), len(ledgerV1))
	}
	if !migrated(firstLog) {
		t.Errorf("the first start's log does not say it migrated:\n%s", firstLog)
	}
	if migrated(secondLog) {
		t.Errorf("the second start migrated again:\n%s", secondLog)
	}
}
