package files

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sync"

	"github.com/vserv/vserv/internal/wire"
)

// Upload is one file being received. Data goes to a temporary file in the
// target's directory, named from (path, size, hash), and becomes visible only
// in Finish, by an atomic rename, after its size and SHA-256 match.
//
// Its methods are safe for concurrent use, but the protocol has one writer.
// Every upload must end in exactly one of Finish, Abort or Discard; after
// that, methods answer ERR state.
type Upload struct {
	h       *Home
	p       string // as the client wrote it, for messages
	rel     string // target, home-relative
	tempRel string
	size    int64
	want    []byte
	force   bool
	backup  bool
	start   int64 // bytes the temporary file already had

	// held is what the kept temporary file was already charged (nothing for
	// a new one); resv is what this upload reserved on top. See usage.
	heldBytes, heldFiles int64
	resvBytes, resvFiles int64

	mu   sync.Mutex
	f    *os.File
	sum  hash.Hash
	next int64
	done bool

	flushed int64 // data before this offset has been handed to writeback
}

// flushEvery is how much an upload writes before it asks the kernel to start
// writing it to disk. Without this, a large upload piles up dirty pages and
// its final fsync waits for all of them; with it, the disk works during the
// transfer and the fsync before the rename has only the tail left.
const flushEvery = 8 << 20

// BeginUpload starts (or resumes) an upload of size bytes with SHA-256 sum to
// the path p names. It returns the offset the client must send from: 0, or
// the length of the temporary file an interrupted upload of the same path,
// size and hash left behind.
//
// Up front it refuses a target that exists without force (ERR exists) or is a
// directory (ERR invalid), a missing parent (ERR notfound), and an upload the
// quotas cannot hold (ERR limit): size, minus what a kept temporary file
// already holds, must fit in the bytes left, and one more file in the file
// limit, even for an overwrite (conservative; see Service.reserve). A refused
// upload creates nothing.
//
// backup keeps the file being replaced as "name~" (replacing an older
// "name~"); it needs force to matter.
func (h *Home) BeginUpload(cwd Cwd, p string, size int64, sum []byte, force, backup bool) (*Upload, int64, error) {
	rel, err := resolve(cwd, p)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case size < 0:
		return nil, 0, wire.Errorf(wire.CodeInvalid, "negative size %d", size)
	case len(sum) != sha256.Size:
		return nil, 0, wire.Errorf(wire.CodeInvalid, "sha256 must be %d bytes, got %d", sha256.Size, len(sum))
	case rel == top:
		return nil, 0, wire.Errorf(wire.CodeInvalid, "%q is a directory", p)
	case backup && len(path.Base(rel))+1 > maxComponent:
		return nil, 0, wire.Errorf(wire.CodeInvalid, "backup name of %q would be over %d bytes", p, maxComponent)
	}
	if err := checkDepth(p, rel); err != nil {
		return nil, 0, err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.checkTarget(p, rel, force); err != nil {
		return nil, 0, err
	}
	dir := path.Dir(rel)
	if fi, err := h.root.Stat(dir); err != nil {
		return nil, 0, h.err("upload", p, err)
	} else if !fi.IsDir() {
		return nil, 0, wire.Errorf(wire.CodeNotFound, "no such directory for %q", p)
	}
	tempRel := path.Join(dir, tempName(rel, size, sum))
	if h.active[tempRel] {
		return nil, 0, wire.Errorf(wire.CodeConflict, "the same upload of %q is already in progress", p)
	}

	var start, heldBytes, heldFiles int64
	switch fi, err := h.root.Lstat(tempRel); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, 0, h.err("upload", p, err)
	case !fi.Mode().IsRegular():
		return nil, 0, fmt.Errorf("upload %q: temporary file is not a regular file", p)
	case fi.Size() > size:
		// Not a prefix of this upload (a write past the end failed, or the
		// file was altered): start over.
		if err := h.root.Remove(tempRel); err != nil {
			return nil, 0, h.err("upload", p, err)
		}
		h.svc.adjust(h.use, -tempCharge(fi.Size()), -1)
	default:
		start, heldBytes, heldFiles = fi.Size(), tempCharge(fi.Size()), 1
	}

	// Enough for the finished file, so a file of exactly the bytes left
	// fits. A temporary file kept at Abort may be charged up to a block more
	// than that; Abort then checks the quotas again (see keepTemp).
	resvBytes, resvFiles := max(0, size-heldBytes), 1-heldFiles
	if err := h.svc.reserve(h.use, resvBytes, resvFiles); err != nil {
		return nil, 0, err
	}
	f, err := h.root.OpenFile(tempRel, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		h.svc.settle(h.use, resvBytes, resvFiles, 0, 0)
		return nil, 0, h.err("upload", p, err)
	}
	if err := h.writeInfo(tempRel, rel, size, sum); err != nil {
		f.Close()
		if heldFiles == 0 {
			h.removeTemp(tempRel)
		}
		h.svc.settle(h.use, resvBytes, resvFiles, 0, 0)
		return nil, 0, fmt.Errorf("upload %q: %w", p, err)
	}
	u := &Upload{
		h: h, p: p, rel: rel, tempRel: tempRel, size: size, want: bytes.Clone(sum),
		force: force, backup: backup, start: start, f: f, sum: sha256.New(), next: start, flushed: start,
		heldBytes: heldBytes, heldFiles: heldFiles, resvBytes: resvBytes, resvFiles: resvFiles,
	}
	if start > 0 {
		// The kept prefix is hashed once here so that Finish need not reread
		// the file; syncing it makes the offset we answer durable.
		_, err := io.Copy(u.sum, io.NewSectionReader(f, 0, start))
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			h.svc.settle(h.use, resvBytes, resvFiles, 0, 0)
			return nil, 0, fmt.Errorf("resume upload %q: %w", p, err)
		}
	}
	h.active[tempRel] = true
	return u, start, nil
}

// tempName names the temporary file of an upload of size bytes with hash sum
// to rel, so that the same upload started again finds it and resumes, and
// uploads of different content to one name never share one.
func tempName(rel string, size int64, sum []byte) string {
	h := sha256.New()
	h.Write([]byte("vserv upload\x00"))
	h.Write([]byte(rel))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(size)))
	h.Write(sum)
	return tempPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// checkTarget refuses an upload onto a directory, or onto an existing name
// without force, and reports whether the target exists. Called with h.mu held.
func (h *Home) checkTarget(p, rel string, force bool) (bool, error) {
	fi, err := h.root.Stat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, h.err("upload", p, err)
	case fi.IsDir():
		return true, wire.Errorf(wire.CodeInvalid, "%q is a directory", p)
	case !force:
		return true, wire.Errorf(wire.CodeExists, "%q already exists (use force to overwrite)", p)
	}
	return true, nil
}

// Size is the declared size of the file.
func (u *Upload) Size() int64 { return u.size }

// Write stores data at offset, which must be where the previous data ended
// (the offset BeginUpload returned, at first); data must not go past the
// declared size. Both mistakes are ERR invalid and change nothing, so the
// client may resend correctly. It returns the next offset expected.
func (u *Upload) Write(offset int64, data []byte) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.done:
		return offset, wire.Errorf(wire.CodeState, "no upload in progress")
	case offset != u.next:
		return u.next, wire.Errorf(wire.CodeInvalid, "data at offset %d, expected %d", offset, u.next)
	case int64(len(data)) > u.size-u.next:
		return u.next, wire.Errorf(wire.CodeInvalid, "data of %d bytes at %d goes past the size %d", len(data), offset, u.size)
	}
	if len(data) == 0 {
		return u.next, nil
	}
	if _, err := u.f.WriteAt(data, offset); err != nil {
		return u.next, fmt.Errorf("write upload %q: %w", u.p, err)
	}
	u.sum.Write(data)
	u.next += int64(len(data))
	if u.next-u.flushed >= flushEvery {
		u.startWriteback()
	}
	return u.next, nil
}

// Next is the offset the next Write must use.
func (u *Upload) Next() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.next
}

// Finish puts the file in place once all size bytes are written: it checks the
// SHA-256 (a mismatch is ERR invalid and removes the temporary file), syncs
// the data, keeps the old file as "name~" if backup was asked, renames the
// temporary file over the target and syncs the directory. If the target
// appeared meanwhile and force was not given, it is ERR exists. Called before
// all size bytes are written, it is ERR invalid and changes nothing; past that
// point, whatever the outcome, the upload is over, and an error leaves the
// target as it was and no temporary file behind.
func (u *Upload) Finish() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return wire.Errorf(wire.CodeState, "no upload in progress")
	}
	if u.next != u.size {
		return wire.Errorf(wire.CodeInvalid, "upload of %q incomplete: %d of %d bytes", u.p, u.next, u.size)
	}
	u.done = true
	// Sync before taking the home's lock: it is the slow part, and other
	// connections' changes need not wait for it.
	err := u.f.Sync()
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("sync upload %q: %w", u.p, err)
	} else if !bytes.Equal(u.sum.Sum(nil), u.want) {
		err = wire.Errorf(wire.CodeInvalid, "sha256 of %q does not match", u.p)
	}
	h := u.h
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active, u.tempRel)
	var bytesDelta, filesDelta int64
	if err == nil {
		bytesDelta, filesDelta, err = u.commit()
	}
	if err != nil {
		// Nothing of this upload may stay: not the file, not its temporary.
		u.settleTemp(h.removeTemp(u.tempRel) != nil)
		return err
	}
	h.svc.settle(h.use, u.resvBytes, u.resvFiles, bytesDelta-u.heldBytes, filesDelta-u.heldFiles)
	return nil
}

// commit moves the complete, synced temporary file into place and returns how
// usage changed. Called with h.mu held, so the target cannot change under it.
func (u *Upload) commit() (bytesDelta, filesDelta int64, err error) {
	h := u.h
	exists, err := h.checkTarget(u.p, u.rel, u.force)
	if err != nil {
		return 0, 0, err
	}
	// The temporary file becomes one more file of its size (its own charge
	// is taken off by the caller).
	bytesDelta, filesDelta = u.size, 1
	if exists {
		old, err := h.root.Lstat(u.rel)
		if err != nil {
			return 0, 0, h.err("upload", u.p, err)
		}
		if u.backup {
			freed, err := u.keepBackup()
			if err != nil {
				return 0, 0, err
			}
			bytesDelta -= freed.bytes
			filesDelta -= freed.files
		} else if old.Mode().IsRegular() {
			bytesDelta -= old.Size()
			filesDelta--
		}
	}
	done, statErr := h.root.Lstat(u.tempRel) // the inode, size and mtime the file keeps
	if err := h.root.Rename(u.tempRel, u.rel); err != nil {
		return 0, 0, h.err("upload", u.p, err)
	}
	h.root.Remove(u.tempRel + infoSuffix) // describes a partial upload no more
	if statErr == nil {
		h.hashes.put(u.rel, done, u.want)
	}
	if err := h.syncDir(path.Dir(u.rel)); err != nil {
		return 0, 0, fmt.Errorf("upload %q: %w", u.p, err)
	}
	return bytesDelta, filesDelta, nil
}

// keepBackup makes "name~" a second name of the current target, replacing an
// older backup, and returns what that older backup held. A hard link keeps
// the target in place until the rename replaces it, so a reader never finds
// the name missing; where links are not supported, the target is renamed.
func (u *Upload) keepBackup() (freed usage, err error) {
	h := u.h
	bak := u.rel + "~"
	switch fi, err := h.root.Lstat(bak); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return freed, h.err("upload", u.p+"~", err)
	case fi.IsDir():
		return freed, wire.Errorf(wire.CodeInvalid, "backup name %q is a directory", u.p+"~")
	default:
		if err := h.root.Remove(bak); err != nil {
			return freed, h.err("upload", u.p+"~", err)
		}
		if fi.Mode().IsRegular() {
			freed = usage{bytes: fi.Size(), files: 1}
		}
	}
	if err := h.root.Link(u.rel, bak); err != nil {
		if err := h.root.Rename(u.rel, bak); err != nil {
			return freed, h.err("upload", u.p, err)
		}
	}
	return freed, nil
}

// syncDir makes a rename in dir durable.
func (h *Home) syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there (NTFS journals renames)
	}
	d, err := h.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort ends the upload but keeps its temporary file (synced, cut to the last
// whole write), so that the same upload started again resumes where this one
// stopped. The server calls it when the connection drops. Kept temporary
// files count against the quota until resumed, removed with their directory
// by Rmdir, or deleted as stale by New after StaleAfter.
func (u *Upload) Abort() error {
	u.mu.Lock()
	if !u.done && u.next == 0 {
		// Nothing was received: there is nothing to resume, and keeping an
		// empty temporary file per announced upload would let an account
		// make files without limit, outside its file quota.
		u.mu.Unlock()
		return u.Discard()
	}
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	err := u.f.Truncate(u.next)
	if serr := u.f.Sync(); err == nil {
		err = serr
	}
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	h := u.h
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active, u.tempRel)
	if err == nil && !h.svc.keepTemp(h.use, u.resvBytes, u.resvFiles, tempCharge(u.next)-u.heldBytes, 1-u.heldFiles) {
		// Its block-rounded charge no longer fits: the quota wins over
		// resuming (only near a full quota, within a block of the limit).
		h.svc.log.Info("files: partial upload dropped, it would exceed the quota",
			"home", h.name, "bytes", u.next)
		if rerr := h.removeTemp(u.tempRel); rerr != nil {
			h.svc.adjust(h.use, tempCharge(u.next)-u.heldBytes, 1-u.heldFiles)
			return fmt.Errorf("drop upload %q: %w", u.p, rerr)
		}
		h.svc.adjust(h.use, -u.heldBytes, -u.heldFiles)
		return nil
	}
	if err != nil {
		u.settleTemp(true)
		return fmt.Errorf("keep upload %q: %w", u.p, err)
	}
	return nil
}

// Discard ends the upload and removes its temporary file: nothing of it stays.
// The server calls it after an error the client cannot resume from.
func (u *Upload) Discard() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	u.f.Close()
	h := u.h
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active, u.tempRel)
	if err := h.removeTemp(u.tempRel); err != nil {
		u.settleTemp(true)
		return fmt.Errorf("discard upload %q: %w", u.p, err)
	}
	u.settleTemp(false)
	return nil
}

// settleTemp ends the upload's booking when its temporary file stays behind
// (kept, holding u.next bytes) or is gone.
func (u *Upload) settleTemp(kept bool) {
	var bytes, files int64
	if kept {
		bytes, files = tempCharge(u.next), 1
	}
	u.h.svc.settle(u.h.use, u.resvBytes, u.resvFiles, bytes-u.heldBytes, files-u.heldFiles)
}
