package files

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/internal/wire"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestUploadSizes(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	var total int64
	for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 17} {
		data := randomBytes(n, uint64(n))
		name := fmt.Sprintf("f%d", n)
		if err := put(h, "", name, data, false, false); err != nil {
			t.Fatalf("upload %d bytes: %v", n, err)
		}
		disk, err := os.ReadFile(filepath.Join(dir, "alice", name))
		if err != nil || !bytes.Equal(disk, data) {
			t.Errorf("upload %d bytes: on disk %d bytes, equal %v, %v", n, len(disk), bytes.Equal(disk, data), err)
		}
		if got := get(t, h, "", name); !bytes.Equal(got, data) {
			t.Errorf("download %d bytes differs", n)
		}
		total += int64(n)
	}
	if used, files := s.Usage("alice"); used != total || files != 6 {
		t.Errorf("usage = %d bytes %d files, want %d 6", used, files, total)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestUploadLarge sends 64 MiB of zeros through the chunked path and checks
// its hash end to end. (1 GiB takes about 12 s under -race on the 2-core
// test machine, over the package's time budget.)
func TestUploadLarge(t *testing.T) {
	const size = 64 << 20
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	zeros := make([]byte, chunk)
	want := sum(make([]byte, size))
	start := time.Now()
	u, off, err := h.BeginUpload("", "big", size, want, false, false)
	if err != nil || off != 0 {
		t.Fatalf("BeginUpload = %d, %v", off, err)
	}
	for off < size {
		n := min(int64(chunk), size-off)
		if off, err = u.Write(off, zeros[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	d, err := h.OpenDownload("", "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != size || !bytes.Equal(d.SHA256(), want) {
		t.Errorf("download size %d hash match %v", d.Size(), bytes.Equal(d.SHA256(), want))
	}
	t.Logf("64 MiB upload and hash: %v", time.Since(start))
}

func TestUploadHashMismatchLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	if err := put(h, "", "keep", []byte("old"), false, false); err != nil {
		t.Fatal(err)
	}
	before := contents(t, dir)
	for _, target := range []string{"new", "keep"} {
		data := randomBytes(2*chunk+5, 7)
		u, _, err := h.BeginUpload("", target, int64(len(data)), sum([]byte("something else")), true, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFrom(u, data, 0); err != nil {
			t.Fatal(err)
		}
		testenv.WantCode(t, u.Finish(), wire.CodeInvalid, "Finish with a wrong hash to "+target)
		if after := contents(t, dir); after != before {
			t.Errorf("hash mismatch on %s changed the tree:\n%s\nwant\n%s", target, after, before)
		}
		testenv.WantCode(t, func() error { _, err := u.Write(int64(len(data)), nil); return err }(), wire.CodeState, "Write after the end")
	}
	if used, files := s.Usage("alice"); used != 3 || files != 1 {
		t.Errorf("usage = %d %d, want 3 1", used, files)
	}
}

func TestUploadWriteRules(t *testing.T) {
	s := newService(t, t.TempDir(), Quotas{})
	h := newHome(t, s, "alice")
	data := []byte("0123456789")
	u, _, err := h.BeginUpload("", "f", 10, sum(data), false, false)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		off      int64
		data     string
		wantNext int64
		code     wire.Code
	}{
		{1, "1", 0, wire.CodeInvalid}, // not where the data ends
		{0, "0123", 4, ""},
		{0, "0123", 4, wire.CodeInvalid},     // a resend of old data
		{8, "89", 4, wire.CodeInvalid},       // a gap
		{4, "45678901", 4, wire.CodeInvalid}, // past the size
		{4, "", 4, ""},                       // empty data is harmless
		{4, "456789", 10, ""},
		{10, "x", 10, wire.CodeInvalid},
	}
	for _, st := range steps {
		next, err := u.Write(st.off, []byte(st.data))
		testenv.WantCode(t, err, st.code, fmt.Sprintf("Write(%d, %q)", st.off, st.data))
		if next != st.wantNext {
			t.Errorf("Write(%d, %q) next = %d, want %d", st.off, st.data, next, st.wantNext)
		}
	}
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, h, "", "f"); string(got) != string(data) {
		t.Errorf("content %q", got)
	}

	u, _, err = h.BeginUpload("", "g", 10, sum(data), false, false)
	if err != nil {
		t.Fatal(err)
	}
	u.Write(0, data[:3])
	testenv.WantCode(t, u.Finish(), wire.CodeInvalid, "Finish before size")
	u.Discard()

	bad := []struct {
		what string
		size int64
		sum  []byte
		code wire.Code
	}{
		{"negative size", -1, sum(nil), wire.CodeInvalid},
		{"short hash", 1, []byte{1, 2, 3}, wire.CodeInvalid},
		{"no hash", 1, nil, wire.CodeInvalid},
	}
	for _, b := range bad {
		_, _, err := h.BeginUpload("", "h", b.size, b.sum, false, false)
		testenv.WantCode(t, err, b.code, b.what)
	}
	_, _, err = h.BeginUpload("", ".", 1, sum(nil), true, false)
	testenv.WantCode(t, err, wire.CodeInvalid, "upload onto the top")
	h.Mkdir("", "d")
	_, _, err = h.BeginUpload("", "d", 1, sum(nil), true, false)
	testenv.WantCode(t, err, wire.CodeInvalid, "upload onto a directory")
	_, _, err = h.BeginUpload("", string(bytes.Repeat([]byte("n"), 255)), 1, sum(nil), false, true)
	testenv.WantCode(t, err, wire.CodeInvalid, "backup name over 255 bytes")
}

func TestUploadResume(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(5*chunk+123, 42)
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")

	u, off, err := h.BeginUpload("", "f", int64(len(data)), sum(data), false, false)
	if err != nil || off != 0 {
		t.Fatalf("first BeginUpload = %d, %v", off, err)
	}
	cut := int64(2*chunk + 1000)
	if err := writeFrom(u, data[:cut], 0); err != nil {
		t.Fatal(err)
	}
	_, _, err = h.BeginUpload("", "f", int64(len(data)), sum(data), false, false)
	testenv.WantCode(t, err, wire.CodeConflict, "the same upload twice at once")
	if err := u.Abort(); err != nil { // the connection dropped
		t.Fatal(err)
	}
	if _, err := h.Stat("", "f"); err == nil {
		t.Fatal("an aborted upload is visible")
	}

	// Another hash or size for the same path does not resume this one.
	other := append(bytes.Clone(data[:len(data)-1]), 'x')
	u2, off, err := h.BeginUpload("", "f", int64(len(other)), sum(other), false, false)
	if err != nil || off != 0 {
		t.Fatalf("BeginUpload with another hash = %d, %v; want 0", off, err)
	}
	u2.Discard()

	// A restart in between: the new service finds and counts the kept file.
	s.Close()
	s = newService(t, dir, Quotas{})
	h = newHome(t, s, "alice")
	if used, files := s.Usage("alice"); used != tempCharge(cut) || files != 1 {
		t.Errorf("usage with a kept temporary = %d %d, want %d 1", used, files, tempCharge(cut))
	}
	u, off, err = h.BeginUpload("", "f", int64(len(data)), sum(data), false, false)
	if err != nil || off != cut {
		t.Fatalf("resumed BeginUpload = %d, %v; want offset %d", off, err, cut)
	}
	if err := writeFrom(u, data, off); err != nil {
		t.Fatal(err)
	}
	if err := u.Finish(); err != nil {
		t.Fatalf("Finish after resume: %v", err)
	}
	if got := get(t, h, "", "f"); !bytes.Equal(got, data) {
		t.Error("resumed file is not byte-exact")
	}
	if used, files := s.Usage("alice"); used != int64(len(data)) || files != 1 {
		t.Errorf("usage = %d %d, want %d 1", used, files, len(data))
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestResumeAfterCompleteData covers a drop after the last data but before
// the reply: the resume offset is the size and Finish needs no more data.
func TestResumeAfterCompleteData(t *testing.T) {
	s := newService(t, t.TempDir(), Quotas{})
	h := newHome(t, s, "alice")
	data := []byte("all of it")
	u, _, _ := h.BeginUpload("", "f", int64(len(data)), sum(data), false, false)
	u.Write(0, data)
	u.Abort()
	u, off, err := h.BeginUpload("", "f", int64(len(data)), sum(data), false, false)
	if err != nil || off != int64(len(data)) {
		t.Fatalf("BeginUpload = %d, %v; want %d", off, err, len(data))
	}
	if next, err := u.Write(off, nil); err != nil || next != off {
		t.Fatalf("final empty Write = %d, %v", next, err)
	}
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, h, "", "f"); string(got) != string(data) {
		t.Errorf("content %q", got)
	}
}

func TestForceAndBackup(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, "alice", name))
		if err != nil {
			return "<missing>"
		}
		return string(b)
	}
	steps := []struct {
		data          string
		force, backup bool
		code          wire.Code
		file, bak     string
		bytes, files  int64
	}{
		{"A", false, false, "", "A", "<missing>", 1, 1},
		{"BB", false, false, wire.CodeExists, "A", "<missing>", 1, 1},
		{"BB", false, true, wire.CodeExists, "A", "<missing>", 1, 1},
		{"CCC", true, false, "", "CCC", "<missing>", 3, 1},
		{"DDDD", true, true, "", "DDDD", "CCC", 7, 2},
		{"EEEEE", true, true, "", "EEEEE", "DDDD", 9, 2},
		{"F", true, false, "", "F", "DDDD", 5, 2},
	}
	for i, st := range steps {
		err := put(h, "", "f", []byte(st.data), st.force, st.backup)
		testenv.WantCode(t, err, st.code, fmt.Sprintf("step %d put %q force=%v backup=%v", i, st.data, st.force, st.backup))
		if got := read("f"); got != st.file {
			t.Errorf("step %d: f = %q, want %q", i, got, st.file)
		}
		if got := read("f~"); got != st.bak {
			t.Errorf("step %d: f~ = %q, want %q", i, got, st.bak)
		}
		if b, f := s.Usage("alice"); b != st.bytes || f != st.files {
			t.Errorf("step %d: usage %d %d, want %d %d", i, b, f, st.bytes, st.files)
		}
	}
	// The backup is an ordinary file the user can see and remove.
	if l, _ := h.List("", ".", false); len(l) != 2 || l[1].Name != "f~" {
		t.Errorf("ls = %+v", l)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestConcurrentUploadsToOneName: several uploads of different content to one
// name all finish; the file is exactly one of them, never a mix, and the
// usage counts one file.
func TestConcurrentUploadsToOneName(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	const writers = 4
	for round := range 10 {
		contents := make([][]byte, writers)
		for i := range contents {
			contents[i] = randomBytes(3*chunk+i*1000, uint64(round*writers+i))
		}
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() { errs[i] = put(h, "", "same", contents[i], true, false) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d writer %d: %v", round, i, err)
			}
		}
		got := get(t, h, "", "same")
		match := -1
		for i, c := range contents {
			if bytes.Equal(got, c) {
				match = i
			}
		}
		if match < 0 {
			t.Fatalf("round %d: the file (%d bytes) is none of the uploads", round, len(got))
		}
		if b, f := s.Usage("alice"); b != int64(len(got)) || f != 1 {
			t.Fatalf("round %d: usage %d %d, want %d 1", round, b, f, len(got))
		}
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// Without force, exactly one of several concurrent uploads to a new name wins.
func TestConcurrentUploadsWithoutForce(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{})
	h := newHome(t, s, "alice")
	const writers = 4
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { errs[i] = put(h, "", "new", randomBytes(chunk+i, uint64(i)), false, false) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
		} else {
			testenv.WantCode(t, err, wire.CodeExists, fmt.Sprintf("writer %d", i))
		}
	}
	if ok != 1 {
		t.Errorf("%d uploads succeeded, want 1", ok)
	}
	if b, f := s.Usage("alice"); f != 1 || b < chunk || b > chunk+writers {
		t.Errorf("usage %d %d", b, f)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestStaleTempsRemovedOnStart(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "alice")
	stale := filepath.Join(home, "d", tempPrefix+"stale")
	fresh := filepath.Join(home, tempPrefix+"fresh")
	mustWrite(t, stale, "old partial data")
	mustWrite(t, fresh, "new partial")
	mustWrite(t, filepath.Join(home, "file"), "12345")
	old := time.Now().Add(-StaleAfter - time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	s := newService(t, dir, Quotas{})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
	// d is one file and a block, the fresh temporary too, and "file" 5 bytes.
	if b, f := s.Usage("alice"); b != 2*block+5 || f != 3 {
		t.Errorf("usage = %d %d, want %d 3", b, f, 2*block+5)
	}
}

// An upload that received nothing leaves no temporary file when the
// connection drops: there is nothing to resume, and empty temporary files
// would otherwise be files outside the file quota.
func TestAbortWithNothingReceivedKeepsNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir, Quotas{UserFiles: 2})
	h := newHome(t, s, "alice")
	for i := range 5 {
		data := []byte{byte(i)}
		u, _, err := h.BeginUpload("", fmt.Sprintf("f%d", i), 1, sum(data), false, false)
		if err != nil {
			t.Fatalf("BeginUpload %d: %v", i, err)
		}
		if err := u.Abort(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the home holds %d entries after five aborted empty uploads, want none", len(entries))
	}
	if bytes, files := s.Usage("alice"); bytes != 0 || files != 0 {
		t.Errorf("usage = %d bytes, %d files; want 0, 0", bytes, files)
	}
}
