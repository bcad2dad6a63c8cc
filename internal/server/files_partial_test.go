package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

// Partial uploads and directories count against the file quota (docs/protocol.md,
// "What the quotas count" and "Partial uploads").

// leavePartial starts an answered upload of data to name, sends its first
// byte, and leaves it open: the next file or fput on c keeps it as a partial
// upload.
func leavePartial(t testing.TB, c *client.Client, name string, data []byte) error {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Call(ctx, "file", name, uint64(len(data)), testenv.Sum256(data)); err != nil {
		return err
	}
	vals, err := c.Call(ctx, "data", uint64(0), data[:1])
	var next uint64
	if err != nil || len(vals) != 1 || wire.Unmarshal(vals[0], &next) != nil || next != 1 {
		t.Fatalf("data for %s = %v, %v; want OK 1", name, vals, err)
	}
	return nil
}

func TestPartialUploadsAndDirectoriesCountAgainstTheFileQuota(t *testing.T) {
	t.Parallel()
	args := []string{"--quota-files", "10"}
	srv := testenv.StartFilesServer(t, args...)
	ctx := context.Background()
	alice := srv.LoginAs("alice")
	data := []byte("xy")
	for i := range 10 {
		if err := leavePartial(t, alice, fmt.Sprintf("p%d", i), data); err != nil {
			t.Fatalf("partial upload %d of a 10-file quota: %v", i, err)
		}
	}
	// The 11th upload ends the 10th, keeping it, and finds no file left.
	err := leavePartial(t, alice, "p10", data)
	testenv.WantCode(t, err, wire.CodeLimit, "an 11th partial upload with a 10-file quota")
	testenv.WantCode(t, alice.Mkdir(ctx, "d", nil), wire.CodeLimit, "mkdir with 10 partial uploads and a 10-file quota")

	parts, err := alice.ListPartials(ctx, nil)
	if err != nil || len(parts) != 10 {
		t.Fatalf("fpart ls = %d entries, %v; want 10", len(parts), err)
	}
	for i, p := range parts {
		want := client.PartialUpload{Name: fmt.Sprintf("p%d", i), Size: 2, Have: 1, SHA256: testenv.Sum256(data), MtimeMs: p.MtimeMs}
		if p.Name != want.Name || p.Size != 2 || p.Have != 1 || !bytes.Equal(p.SHA256, want.SHA256) || p.MtimeMs == 0 {
			t.Errorf("fpart ls [%d] = %+v, want %+v", i, p, want)
		}
	}
	if l, err := alice.ListFiles(ctx, "", nil); err != nil || len(l) != 0 {
		t.Errorf("ls = %q, %v; want nothing (partial uploads are not files)", listNames(l), err)
	}

	// Discarding one frees a file: a directory now fits, and counts.
	if err := alice.DiscardPartial(ctx, "p0", nil); err != nil {
		t.Fatalf("fpart rm p0: %v", err)
	}
	testenv.WantCode(t, alice.DiscardPartial(ctx, "p0", nil), wire.CodeNotFound, "fpart rm p0 again")
	if err := alice.Mkdir(ctx, "d", nil); err != nil {
		t.Fatalf("mkdir after fpart rm: %v", err)
	}
	testenv.WantCode(t, alice.Mkdir(ctx, "e", nil), wire.CodeLimit, "mkdir with 9 partial uploads, 1 directory and a 10-file quota")
	alice.Close()

	// The same after a restart: the scan counts directories and partial uploads.
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	srv2 := testenv.Start(t, testenv.WithDataRoot(srv.DataRoot), testenv.WithArgs(args...))
	alice = srv2.Login("alice", testenv.FilePass("alice"))
	testenv.WantCode(t, alice.Mkdir(ctx, "e", nil), wire.CodeLimit, "mkdir after a restart")
	err = leavePartial(t, alice, "q", data)
	testenv.WantCode(t, err, wire.CodeLimit, "a new upload after a restart")
	if parts, err := alice.ListPartials(ctx, nil); err != nil || len(parts) != 9 || parts[0].Name != "p1" {
		t.Fatalf("fpart ls after a restart = %+v, %v; want p1..p9", parts, err)
	}
	// A partial upload resumes where it stopped and then counts as the file.
	if at, err := alice.Upload(ctx, bytes.NewReader(data), 2, testenv.Sum256(data), "p1", nil); err != nil || at != 1 {
		t.Fatalf("resume p1 = %d, %v; want resumed at 1", at, err)
	}
	if got := mustDownload(t, alice, "p1", nil); !bytes.Equal(got, data) {
		t.Errorf("p1 = %q, want %q", got, data)
	}
	if err := alice.Rmdir(ctx, "d", nil); err != nil {
		t.Fatal(err)
	}
	if err := alice.Mkdir(ctx, "e", nil); err != nil {
		t.Errorf("mkdir after rmdir freed a file: %v", err)
	}
}

func TestDirectoryDepthIsCapped(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	c := srv.LoginAs("alice")
	p := "d"
	for depth := 1; depth <= 32; depth++ {
		if err := c.Mkdir(ctx, p, nil); err != nil {
			t.Fatalf("mkdir at depth %d: %v", depth, err)
		}
		p += "/d"
	}
	testenv.WantCode(t, c.Mkdir(ctx, p, nil), wire.CodeLimit, "mkdir at depth 33")
	_, err := c.Upload(ctx, bytes.NewReader([]byte("x")), 1, testenv.Sum256([]byte("x")), p, nil)
	testenv.WantCode(t, err, wire.CodeLimit, "upload at depth 33")
	// Relative to a deep working directory, the depth is the same.
	if _, err := c.Cd(ctx, strings.TrimSuffix(p, "/d"), nil); err != nil {
		t.Fatal(err)
	}
	testenv.WantCode(t, c.Mkdir(ctx, "d", nil), wire.CodeLimit, "mkdir at depth 33 from a working directory")
	_, err = c.Upload(ctx, bytes.NewReader([]byte("x")), 1, testenv.Sum256([]byte("x")), "f", nil)
	testenv.WantCode(t, err, wire.CodeLimit, "upload at depth 33 from a working directory")
	mustUpload(t, c, "../f", []byte("x"), nil) // a file at depth 32
}

func TestFpartBadInputGetsOneERREach(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	alice, bob := srv.LoginAs("alice"), srv.LoginAs("bob")
	if err := alice.Mkdir(ctx, "d", nil); err != nil {
		t.Fatal(err)
	}
	if err := leavePartial(t, bob, "b", []byte("bob's")); err != nil {
		t.Fatal(err)
	}
	bob.Close() // keeps bob's partial upload
	type M = map[string]any
	long := strings.Repeat("x", 256)
	proto, invalid, perm, notfound := wire.CodeProto, wire.CodeInvalid, wire.CodePerm, wire.CodeNotFound
	cases := []struct {
		args []any
		code wire.Code
	}{
		{nil, proto},
		{[]any{uint64(1)}, proto},
		{[]any{[]byte("ls")}, proto},
		{[]any{nil}, proto},
		{[]any{"ls", "x"}, proto},
		{[]any{"ls", M{}, "x"}, proto},
		{[]any{"rm"}, proto},
		{[]any{"rm", uint64(1)}, proto},
		{[]any{"rm", "a", "b"}, proto},
		{[]any{"ls", M{"force": true}}, proto},
		{[]any{"ls", M{"as": uint64(1)}}, proto},
		{[]any{"mv"}, invalid},
		{[]any{long}, invalid},
		{[]any{"rm", ""}, invalid},
		{[]any{"rm", "a\x00b"}, invalid},
		{[]any{"rm", long}, invalid},
		{[]any{"rm", "../bob/b"}, perm},
		{[]any{"rm", "d/../../x"}, perm},
		{[]any{"rm", "/b"}, perm},
		{[]any{"rm", ".vserv-upload-0123"}, perm},
		{[]any{"rm", "b"}, notfound}, // bob's, not alice's
		{[]any{"rm", "nodir/b"}, notfound},
		{[]any{"rm", "."}, notfound},
		{[]any{"ls", M{"as": "bob"}}, perm},
		{[]any{"rm", "b", M{"as": "bob"}}, perm},
	}
	for _, tc := range cases {
		what := fmt.Sprintf("fpart %v", tc.args)
		_, err := alice.Call(ctx, "fpart", tc.args...)
		testenv.WantCode(t, err, tc.code, what)
		wantOneAnswer(t, alice, what)
	}
	// Text that is not UTF-8 is refused by the CBOR layer: ERR proto.
	raw := []byte{0x83, 0x65, 'f', 'p', 'a', 'r', 't', 0x62, 'r', 'm', 0x62, 0xff, 0xfe}
	_, err := alice.CallRaw(ctx, raw)
	testenv.WantCode(t, err, proto, "fpart rm with a path that is not UTF-8")
	wantOneAnswer(t, alice, "fpart rm with a path that is not UTF-8")

	// Nothing of bob's moved; the admin may see and discard it.
	admin := srv.LoginAs(testenv.AdminName)
	parts, err := admin.ListPartials(ctx, &client.FileOptions{As: "bob"})
	if err != nil || len(parts) != 1 || parts[0].Name != "b" || parts[0].Have != 1 || parts[0].Size != 5 {
		t.Fatalf("admin's fpart ls {as: bob} = %+v, %v; want b, 1 of 5 bytes", parts, err)
	}
	if err := admin.DiscardPartial(ctx, "b", &client.FileOptions{As: "bob"}); err != nil {
		t.Fatalf("admin's fpart rm b {as: bob}: %v", err)
	}
	if temps := uploadTemps(t, srv.Home("bob")); len(temps) != 0 {
		t.Errorf("bob's home after fpart rm still holds %v", temps)
	}
}

func TestFpartRmOfAnUploadInProgressIsConflict(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	ctx := context.Background()
	writer, other := srv.LoginAs("alice"), srv.LoginAs("alice")
	if err := leavePartial(t, writer, "f", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	testenv.WantCode(t, other.DiscardPartial(ctx, "f", nil), wire.CodeConflict, "fpart rm while another connection writes it")
	// The writer goes on undisturbed.
	vals, err := writer.Call(ctx, "data", uint64(1), []byte("bc"))
	if err != nil || len(vals) != 1 {
		t.Fatalf("data after the refused fpart rm = %v, %v", vals, err)
	}
	if got := mustDownload(t, other, "f", nil); string(got) != "abc" {
		t.Errorf("f = %q, want abc", got)
	}
}

func TestVcliFilePartialLsAndRm(t *testing.T) {
	t.Parallel()
	srv := testenv.StartFilesServer(t)
	c := srv.LoginAs("alice")
	data := []byte("0123456789")
	if err := leavePartial(t, c, "half", data); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The server keeps the upload once it has noticed the close.
	var out, errOut string
	var code int
	err := testenv.RetryWhileBusy(t, func() error {
		out, errOut, code = srv.VcliAs("alice", "file", "partial", "ls")
		if code == 0 && !strings.Contains(out, "half") {
			return client.ErrConflict // not kept yet
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WantExit(t, "vcli file partial ls", code, 0, out, errOut)
	if f := strings.Fields(out); len(f) != 4 || f[0] != "1/10" || f[3] != "half" {
		t.Errorf("vcli file partial ls = %q, want \"1/10  <date> <time>  half\"", out)
	}
	out, errOut, code = srv.VcliAs("alice", "--json", "file", "partial", "ls")
	testenv.WantExit(t, "vcli --json file partial ls", code, 0, out, errOut)
	var doc struct {
		OK       bool `json:"ok"`
		Partials []struct {
			Name   string `json:"name"`
			Size   int64  `json:"size"`
			Have   int64  `json:"have"`
			SHA256 string `json:"sha256"`
		} `json:"partials"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.OK || len(doc.Partials) != 1 ||
		doc.Partials[0].Name != "half" || doc.Partials[0].Have != 1 || doc.Partials[0].Size != 10 ||
		doc.Partials[0].SHA256 != hex.EncodeToString(testenv.Sum256(data)) {
		t.Errorf("vcli --json file partial ls = %s (%v)", out, err)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "partial", "rm", "half")
	testenv.WantExit(t, "vcli file partial rm half", code, 0, out, errOut)
	out, errOut, code = srv.VcliAs("alice", "file", "partial", "rm", "half")
	testenv.WantExit(t, "vcli file partial rm half again", code, 1, out, errOut)
	if !strings.Contains(errOut, "notfound") {
		t.Errorf("second rm: stderr %q, want the notfound code", errOut)
	}
	out, errOut, code = srv.VcliAs("alice", "file", "partial", "ls")
	testenv.WantExit(t, "vcli file partial ls after rm", code, 0, out, errOut)
	if out != "" {
		t.Errorf("vcli file partial ls after rm = %q, want nothing", out)
	}
	if temps := uploadTemps(t, srv.Home("alice")); len(temps) != 0 {
		t.Errorf("alice's home after rm still holds %v", temps)
	}
}
