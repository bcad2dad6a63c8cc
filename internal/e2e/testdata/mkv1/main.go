// Command mkv1 makes datadir-v1.tar.gz and datadir-v1.json, the data
// directory of the first on-disk layout that internal/e2e's migration test
// opens with the current server (issue 9, "Migration").
//
// It drives only the real binaries of one commit: it extracts that commit
// with `git archive`, builds its cmd/vserv and cmd/vcli, runs the server on a
// fresh data directory with -p 0, and does everything through vcli, as a user
// would: records on the default chains, a public and a private chain, a
// ballot and a fund; saved receipts; users (admin, writer, reader, one with
// TOTP enrolled, one disabled); files in two homes; then a clean stop, an
// identity rotation with `vserv keygen --identity`, one more start with one
// more record and receipt, and a clean stop. `vserv verify -r` must be clean.
// The manifest lists what the test checks: users with passwords and TOTP
// secrets, chains, every entry's record and entry bytes, the receipts, the
// files with their sha256, and both identity keys.
//
// The committed fixture was made, from the repository root, with
//
//	go run ./internal/e2e/testdata/mkv1 -commit aa63e55
//
// (the binaries of commit aa63e55, "ledger: VerifyDB and VerifyExpected read
// the server-id and chains through one helper"). The manifest repeats the
// full commit hash and the Go version. The server ran with --test-kdf:
// password hashes carry their own argon2id parameters, so any server checks
// them, and logins in the test stay fast.
//
// The committed fixture is frozen: the test checks the tarball's sha256
// against the manifest, and a data directory made by newer code would no
// longer be one of the old layout. mkv1 refuses to overwrite it without
// -force; use -out DIR to look at a fresh one.
//
// The program imports nothing of this module, so it keeps building while the
// code it made the fixture with changes.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Manifest is datadir-v1.json. internal/e2e/migrate_test.go reads the same
// shape.
type Manifest struct {
	About    string     `json:"about"`
	Commit   string     `json:"commit"`
	Go       string     `json:"go"`
	TestKDF  bool       `json:"test_kdf"`
	ServerID string     `json:"server_id"`
	Keys     Keys       `json:"keys"`
	Users    []User     `json:"users"`
	Chains   []Chain    `json:"chains"`
	Records  []Record   `json:"records"`
	Receipts []Receipt  `json:"receipts"`
	Files    []File     `json:"files"`
	Views    []View     `json:"views"`
	Tarball  TarballSum `json:"tarball"`
}

// Keys are the identity keys before and after the rotation.
type Keys struct {
	OldFingerprint string `json:"old_fingerprint"`
	OldPublicKey   string `json:"old_public_key"`
	NewFingerprint string `json:"new_fingerprint"`
	NewPublicKey   string `json:"new_public_key"`
	RotationSeq    uint64 `json:"rotation_seq"` // in the keys chain
}

// User is one account.
type User struct {
	Name          string   `json:"name"`
	Password      string   `json:"password"`
	Admin         bool     `json:"admin"`
	Enabled       bool     `json:"enabled"`
	TOTPSecret    string   `json:"totp_secret,omitempty"` // base32, 30 s, 6 digits, SHA-1
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
	Rights        []string `json:"rights,omitempty"` // "chain:right"
}

// Chain is one chain as `chain list` showed it to the admin at the end.
type Chain struct {
	Name    string `json:"name"`
	Size    uint64 `json:"size"`
	Public  bool   `json:"public"`
	PoWBits int    `json:"pow_bits"`
	Schema  string `json:"schema,omitempty"`
}

// Record is one entry: the record bytes as submitted and the entry bytes as
// rabs and rget returned them (the same bytes; the program checks it).
type Record struct {
	Chain  string `json:"chain"`
	Seq    uint64 `json:"seq"`
	ID     string `json:"id"`
	Type   string `json:"type,omitempty"`
	Record []byte `json:"record"`
	Entry  []byte `json:"entry"`
}

// Receipt is a receipt saved with --receipt-out. Key says which identity
// key signed its checkpoint: "old" (before the rotation) or "new".
type Receipt struct {
	Chain   string `json:"chain"`
	ID      string `json:"id"`
	Seq     uint64 `json:"seq"`
	Key     string `json:"key"`
	Receipt string `json:"receipt"`
}

// File is one uploaded file, by account and path in its home.
type File struct {
	User   string `json:"user"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// View is what `vcli --json` showed for an application view.
type View struct {
	Args []string        `json:"args"` // vcli arguments after the global ones
	Size uint64          `json:"size"`
	View json.RawMessage `json:"view"`
}

// TarballSum identifies the tarball the manifest describes.
type TarballSum struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

func main() {
	commit := flag.String("commit", "aa63e55", "the commit whose binaries make the data directory")
	out := flag.String("out", "internal/e2e/testdata", "where to write datadir-v1.tar.gz and datadir-v1.json")
	keep := flag.Bool("keep", false, "keep the work directory (printed) for inspection")
	force := flag.Bool("force", false, "replace a fixture that exists (the committed one is frozen: see the package comment)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("mkv1: ")
	for _, name := range []string{"datadir-v1.tar.gz", "datadir-v1.json"} {
		if _, err := os.Stat(filepath.Join(*out, name)); err == nil && !*force {
			log.Fatalf("%s exists; the committed fixture stays as it is: write elsewhere with -out DIR, or replace it with -force", filepath.Join(*out, name))
		}
	}
	if err := run(*commit, *out, *keep); err != nil {
		log.Fatal(err)
	}
}

type gen struct {
	work, bin, data, home string
	vserv                 *exec.Cmd
	vservDone             chan error
	addr                  string
	m                     Manifest
	pwFiles               map[string]string
}

func run(commit, out string, keep bool) error {
	full, err := output("git", "rev-parse", "--verify", commit+"^{commit}")
	if err != nil {
		return err
	}
	full = strings.TrimSpace(full)
	work, err := os.MkdirTemp("", "mkv1-")
	if err != nil {
		return err
	}
	if keep {
		log.Printf("work directory %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	g := &gen{work: work, bin: filepath.Join(work, "bin"), data: filepath.Join(work, "data"),
		home: filepath.Join(work, "home"), pwFiles: map[string]string{}}
	g.m.Commit, g.m.Go, g.m.TestKDF = full, runtime.Version(), true
	g.m.About = "data directory of the first on-disk layout, made by internal/e2e/testdata/mkv1 with the binaries of commit " + full
	if err := g.build(full); err != nil {
		return err
	}
	if err := g.populate(); err != nil {
		g.stop()
		return err
	}
	return g.write(out)
}

// build extracts commit into work/src and builds its vserv and vcli.
func (g *gen) build(commit string) error {
	src := filepath.Join(g.work, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	archive := exec.Command("git", "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	untar.Stderr, archive.Stderr = os.Stderr, os.Stderr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		return fmt.Errorf("git archive %s: %w", commit, err)
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("untar: %w", err)
	}
	b := exec.Command("go", "build", "-o", g.bin+string(os.PathSeparator), "./cmd/vserv", "./cmd/vcli")
	b.Dir = src
	if out, err := b.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// The accounts. Passwords are test passwords, written into the manifest.
var users = []User{
	{Name: "admin", Password: "admin-password-1", Admin: true, Enabled: true},
	{Name: "bob", Password: "bob-writer-pass", Enabled: true, Rights: []string{"notes:write", "payroll:write", "payroll:read"}},
	{Name: "ann", Password: "ann-reader-pass", Enabled: true, Rights: []string{"payroll:read"}},
	{Name: "carol", Password: "carol-2fa-pass", Enabled: true, Rights: []string{"notes:write"}},
	{Name: "dave", Password: "dave-disabled-pass", Enabled: false},
}

func (g *gen) populate() error {
	for _, d := range []string{g.home, filepath.Join(g.work, "local")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for _, u := range users {
		f := filepath.Join(g.work, "local", u.Name+".pw")
		if err := os.WriteFile(f, []byte(u.Password+"\n"), 0o600); err != nil {
			return err
		}
		g.pwFiles[u.Name] = f
	}
	g.m.Users = slices.Clone(users)
	if err := g.start(); err != nil {
		return err
	}
	var id struct {
		ServerID    string `json:"server_id"`
		Fingerprint string `json:"fingerprint"`
		PublicKey   string `json:"public_key"`
	}
	if err := g.vcliJSON("", &id, "id"); err != nil {
		return err
	}
	g.m.ServerID, g.m.Keys.OldFingerprint, g.m.Keys.OldPublicKey = id.ServerID, id.Fingerprint, id.PublicKey

	// Accounts and chains.
	if _, err := g.vcli("", "", "uini", "admin", "--new-pass-file", g.pwFiles["admin"], "-r", g.data); err != nil {
		return err
	}
	for _, u := range users[1:] {
		if _, err := g.vcli("admin", "", "user", "add", u.Name, "--new-pass-file", g.pwFiles[u.Name]); err != nil {
			return err
		}
	}
	if _, err := g.vcli("admin", "", "chain", "create", "notes", "--public", "--pow-bits", "8"); err != nil {
		return err
	}
	if _, err := g.vcli("admin", "", "chain", "create", "payroll"); err != nil {
		return err
	}
	for _, u := range users {
		for _, r := range u.Rights {
			chain, right, _ := strings.Cut(r, ":")
			if _, err := g.vcli("admin", "", "chain", "grant", u.Name, chain, right); err != nil {
				return err
			}
		}
	}

	// Records: free-form on notes (public) and payroll (private), one signed.
	key := filepath.Join(g.work, "local", "bob.key")
	if _, err := g.vcli("", "", "key", "new", "-o", key); err != nil {
		return err
	}
	puts := []struct {
		user, chain, typ, payload string
		receipt                   bool
		extra                     []string
	}{
		{"bob", "notes", "note", `{"text": "hello", "note": "José, نعم, 是"}`, true, nil},
		{"bob", "notes", "note", `{"text": "signed", "n": 2, "f": 1.5, "ok": true, "none": null}`, false, []string{"--sign-key", key}},
		{"bob", "notes", "", `["no type", {"nested": {"deep": [1, -2, 3]}}]`, false, nil},
		{"bob", "payroll", "pay", `{"to": "ann", "cents": 123456}`, true, nil},
		{"bob", "payroll", "pay", `{"to": "ben", "cents": 7}`, false, nil},
	}
	for i, p := range puts {
		args := []string{"rec", "put", p.chain, "--payload", p.payload}
		if p.typ != "" {
			args = append(args, "--type", p.typ)
		}
		args = append(args, p.extra...)
		if err := g.putReceipt(p.user, p.chain, p.receipt, fmt.Sprintf("put%d", i), "old", args...); err != nil {
			return err
		}
	}

	// The vote chain: a ballot, two voters, two casts (one with a receipt), an uncast and a recast.
	if err := g.putReceipt("admin", "vote", false, "", "", "vote", "open", "lunch", "--question", "Lunch on Friday?", "pizza", "salad"); err != nil {
		return err
	}
	eids := map[string]string{}
	for _, v := range []string{"voter-ann", "voter-ben"} {
		var res struct {
			EID string `json:"eid"`
		}
		if err := g.vcliJSON("admin", &res, "vote", "register", v); err != nil {
			return err
		}
		eids[v] = res.EID
	}
	for _, c := range [][]string{
		{"vote", "cast", eids["voter-ann"], "lunch", "pizza"},
		{"vote", "cast", eids["voter-ben"], "lunch", "pizza"},
		{"vote", "uncast", eids["voter-ben"], "lunch"},
		{"vote", "cast", eids["voter-ben"], "lunch", "salad"},
	} {
		if err := g.putReceipt("admin", "vote", c[1] == "cast" && c[2] == eids["voter-ann"], "vote-"+c[1], "old", c...); err != nil {
			return err
		}
	}
	// The donation chain: a fund, two donations, a disbursement.
	for _, c := range [][]string{
		{"fund", "open", "zakat", "--name", "Zakat 2026", "--unit", "EUR-cent"},
		{"fund", "in", "zakat", "5000", "--source", "cash box"},
		{"fund", "in", "zakat", "2500"},
		{"fund", "out", "zakat", "1200", "--purpose", "food parcels"},
	} {
		if err := g.putReceipt("admin", "donation", false, "", "", c...); err != nil {
			return err
		}
	}

	// carol enrolls TOTP; dave is disabled.
	if err := g.enroll("carol"); err != nil {
		return err
	}
	if _, err := g.vcli("admin", "", "user", "disable", "dave"); err != nil {
		return err
	}

	// Files in two homes: a nested directory and a binary file.
	if err := g.upload("bob", "docs/2026/report.txt", []byte("quarterly report\nJosé: ok\n"), "docs", "docs/2026"); err != nil {
		return err
	}
	blob := make([]byte, 20<<10)
	if _, err := rand.Read(blob[:8<<10]); err != nil {
		return err
	}
	for i := 8 << 10; i < len(blob); i++ {
		blob[i] = byte(i * 7)
	}
	if err := g.upload("bob", "blob.bin", blob); err != nil {
		return err
	}
	if err := g.upload("ann", "notes/hello.txt", []byte("hello from ann\n"), "notes"); err != nil {
		return err
	}
	if err := g.upload("ann", "empty", nil); err != nil {
		return err
	}

	// Rotate the identity offline, start once more, write after the rotation.
	if err := g.stop(); err != nil {
		return err
	}
	rot, err := output(filepath.Join(g.bin, "vserv"), "keygen", "--identity", "--yes", "-r", g.data)
	if err != nil {
		return err
	}
	if err := g.parseRotation(rot); err != nil {
		return err
	}
	if err := g.start(); err != nil {
		return err
	}
	if err := g.vcliJSON("", &id, "id"); err != nil {
		return err
	}
	if id.Fingerprint != g.m.Keys.NewFingerprint || id.PublicKey != g.m.Keys.NewPublicKey {
		return fmt.Errorf("after the rotation the server shows %s, keygen printed %s", id.Fingerprint, g.m.Keys.NewFingerprint)
	}
	if err := g.putReceipt("bob", "notes", true, "after-rotation", "new", "rec", "put", "notes", "--type", "note", "--payload", `{"text": "after the rotation"}`); err != nil {
		return err
	}
	if err := g.putReceipt("bob", "payroll", true, "after-rotation-private", "new", "rec", "put", "payroll", "--type", "pay", "--payload", `{"to": "carol", "cents": 99}`); err != nil {
		return err
	}

	if err := g.dump(); err != nil {
		return err
	}
	if err := g.stop(); err != nil {
		return err
	}
	if out, err := output(filepath.Join(g.bin, "vserv"), "verify", "-r", g.data); err != nil {
		return fmt.Errorf("vserv verify of the finished data directory: %w\n%s", err, out)
	}
	return nil
}

// putReceipt runs a vcli command that appends one record, saving its
// receipt into the manifest when receipt is set.
func (g *gen) putReceipt(user, chain string, receipt bool, name, key string, args ...string) error {
	var file string
	if receipt {
		file = filepath.Join(g.work, "local", name+".receipt")
		args = append(args, "--receipt-out", file)
	}
	var res struct {
		ID  string `json:"id"`
		Seq uint64 `json:"seq"`
	}
	if err := g.vcliJSON(user, &res, args...); err != nil {
		return err
	}
	if !receipt {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	g.m.Receipts = append(g.m.Receipts, Receipt{Chain: chain, ID: res.ID, Seq: res.Seq, Key: key, Receipt: string(b)})
	return nil
}

// enroll runs `vcli user 2fa` for name, reads the otpauth URI it prints and
// answers with the first code.
func (g *gen) enroll(name string) error {
	cmd := g.vcliCmd(name, "user", "2fa")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	var doc struct {
		URI      string   `json:"uri"`
		Recovery []string `json:"recovery_codes"`
	}
	if err := json.NewDecoder(stdout).Decode(&doc); err != nil {
		cmd.Wait()
		return fmt.Errorf("user 2fa: %v; stderr: %s", err, stderr.String())
	}
	k, err := otp.NewKeyFromURL(doc.URI)
	if err != nil {
		return err
	}
	code, err := totp.GenerateCodeCustom(k.Secret(), time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdin, code)
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("user 2fa: %v; stderr: %s", err, stderr.String())
	}
	for i := range g.m.Users {
		if g.m.Users[i].Name == name {
			g.m.Users[i].TOTPSecret, g.m.Users[i].RecoveryCodes = k.Secret(), doc.Recovery
		}
	}
	return nil
}

// upload makes dirs, then puts data at remote in user's home.
func (g *gen) upload(user, remote string, data []byte, dirs ...string) error {
	for _, d := range dirs {
		if _, err := g.vcli(user, "", "file", "mkdir", d); err != nil {
			return err
		}
	}
	local := filepath.Join(g.work, "local", user+"-"+strings.ReplaceAll(remote, "/", "_"))
	if err := os.WriteFile(local, data, 0o600); err != nil {
		return err
	}
	if _, err := g.vcli(user, "", "file", "put", local, remote); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	g.m.Files = append(g.m.Files, File{User: user, Path: remote, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	return nil
}

var rotationLine = regexp.MustCompile(`(?m)^\s*(old|new|new public key): (\S+)$`)

// parseRotation reads what `vserv keygen --identity` printed.
func (g *gen) parseRotation(out string) error {
	got := map[string]string{}
	for _, m := range rotationLine.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	seq := regexp.MustCompile(`entry (\d+) of the keys chain`).FindStringSubmatch(out)
	if got["old"] != g.m.Keys.OldFingerprint || got["new"] == "" || got["new public key"] == "" || seq == nil {
		return fmt.Errorf("keygen --identity printed something unexpected:\n%s", out)
	}
	g.m.Keys.NewFingerprint, g.m.Keys.NewPublicKey = got["new"], got["new public key"]
	n, err := strconv.ParseUint(seq[1], 10, 64)
	g.m.Keys.RotationSeq = n
	return err
}

// dump lists the chains as the admin sees them and records every entry,
// read by seq (rabs) and by id (rget), which must agree.
func (g *gen) dump() error {
	var cl struct {
		Chains []Chain `json:"chains"`
	}
	if err := g.vcliJSON("admin", &cl, "chain", "list"); err != nil {
		return err
	}
	g.m.Chains = cl.Chains
	type entry struct {
		Seq    uint64 `json:"seq"`
		Record struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"record"`
		Entry []byte `json:"entry"`
	}
	for _, c := range cl.Chains {
		if c.Size == 0 {
			continue
		}
		args := []string{"rec", "abs", c.Name}
		for s := uint64(0); s < c.Size; s++ {
			args = append(args, strconv.FormatUint(s, 10))
		}
		var abs struct{ Entries []entry }
		if err := g.vcliJSON("admin", &abs, args...); err != nil {
			return err
		}
		args = []string{"rec", "get", c.Name}
		for _, e := range abs.Entries {
			args = append(args, e.Record.ID)
		}
		var get struct{ Entries []entry }
		if err := g.vcliJSON("admin", &get, args...); err != nil {
			return err
		}
		for i, e := range abs.Entries {
			if e.Seq != uint64(i) || !bytes.Equal(e.Entry, get.Entries[i].Entry) {
				return fmt.Errorf("%s seq %d: rabs and rget disagree", c.Name, i)
			}
			var parts struct {
				Record cbor.RawMessage `cbor:"record"`
			}
			if err := cbor.Unmarshal(e.Entry, &parts); err != nil {
				return fmt.Errorf("%s seq %d: %w", c.Name, i, err)
			}
			g.m.Records = append(g.m.Records, Record{Chain: c.Name, Seq: e.Seq, ID: e.Record.ID, Type: e.Record.Type,
				Record: []byte(parts.Record), Entry: e.Entry})
		}
	}
	for _, args := range [][]string{
		{"vote", "tally", "lunch"}, {"vote", "list"},
		{"fund", "show", "zakat"}, {"fund", "list"},
	} {
		var v View
		if err := g.vcliJSON("", &v, args...); err != nil {
			return err
		}
		v.Args = args
		g.m.Views = append(g.m.Views, v)
	}
	return nil
}

// write packs the data directory and writes the manifest.
func (g *gen) write(out string) error {
	tgz, err := packDir(g.data)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(tgz)
	g.m.Tarball = TarballSum{Name: "datadir-v1.tar.gz", SHA256: hex.EncodeToString(sum[:])}
	js, err := json.MarshalIndent(g.m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "datadir-v1.tar.gz"), tgz, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "datadir-v1.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s (%d bytes) and datadir-v1.json (%d records, %d receipts)", filepath.Join(out, "datadir-v1.tar.gz"), len(tgz), len(g.m.Records), len(g.m.Receipts))
	return nil
}

// packDir makes a gzipped tar of dir's contents (paths relative to it), in
// name order, with each file's mode and time.
func packDir(dir string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil, fmt.Errorf("%s: neither a file nor a directory", p)
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if _, err := tw.Write(b); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// start runs vserv on a free port and waits for "listening on". The
// generator connects faster than the default per-address rate allows.
func (g *gen) start() error {
	cmd := exec.Command(filepath.Join(g.bin, "vserv"), "-p", "0", "-r", g.data, "--test-kdf", "--rate-ip", "100000")
	cmd.Env = append(os.Environ(), "HOME="+g.home)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	br := bufio.NewReader(pipe)
	line, err := br.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		cmd.Process.Kill()
		rest, _ := io.ReadAll(br)
		return fmt.Errorf("vserv did not start: %q %v\n%s", line, err, rest)
	}
	go io.Copy(io.Discard, br) // the log is in DATA/log/vserv.log too
	g.vserv, g.addr, g.vservDone = cmd, addr, make(chan error, 1)
	go func() { g.vservDone <- cmd.Wait() }()
	return nil
}

// stop sends SIGTERM and wants a clean exit.
func (g *gen) stop() error {
	if g.vserv == nil {
		return nil
	}
	defer func() { g.vserv = nil }()
	if err := g.vserv.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-g.vservDone:
		if err != nil {
			return fmt.Errorf("vserv exited with %v after SIGTERM", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		g.vserv.Process.Kill()
		return errors.New("vserv did not stop within 30 s")
	}
}

func (g *gen) vcliCmd(user string, args ...string) *exec.Cmd {
	host, port, _ := strings.Cut(g.addr, ":")
	all := []string{"-n", host, "-p", port, "--json"}
	if user != "" {
		all = append(all, "-u", user, "--pass-file", g.pwFiles[user])
	}
	cmd := exec.Command(filepath.Join(g.bin, "vcli"), append(all, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+g.home, "VSERV_PASSWORD=", "VSERV_OTP=")
	return cmd
}

// vcli runs vcli as user ("" = no login) and returns its stdout; any exit
// status but 0 is an error.
func (g *gen) vcli(user, stdin string, args ...string) (string, error) {
	cmd := g.vcliCmd(user, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("vcli %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func (g *gen) vcliJSON(user string, v any, args ...string) error {
	out, err := g.vcli(user, "", args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vcli %s: %w in %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return string(out), nil
}
