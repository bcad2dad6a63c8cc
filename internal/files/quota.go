package files

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// Quotas are the limits of DESIGN.md §3.3; 0 means unlimited.
type Quotas struct {
	UserBytes  int64 // bytes in one home
	UserFiles  int64 // regular files in one home
	TotalBytes int64 // bytes in all homes together
}

// usage is one home's account, guarded by Service.mu. bytes and files count
// what is on disk, as charged (see below); the reserved fields count what
// uploads in progress may still add, so two uploads cannot both fit into the
// same free space.
//
// What counts (docs/protocol.md, "What the quotas count"): a regular file is
// one file and its size; a directory other than the top of the home is one
// file and one block; a kept upload temporary file is one file and its size
// rounded up to whole blocks, at least one. Without the last two, an account
// could fill the disk's inodes with empty directories and 1-byte partial
// uploads that no quota saw.
type usage struct {
	bytes, files         int64
	resvBytes, resvFiles int64
}

// block is the charge unit of directories and temporary files: what one
// costs the file system at least, whatever it holds.
const block = 4096

// dirCharge is what one directory counts for in bytes.
const dirCharge = block

// tempCharge is what a temporary file of n bytes counts for in bytes.
func tempCharge(n int64) int64 {
	if n > math.MaxInt64-block {
		return math.MaxInt64
	}
	return max(block, (n+block-1)/block*block)
}

// reserve books needBytes and needFiles more for an upload into u, or refuses
// with ERR limit. It is deliberately conservative: an overwrite is booked as
// a new file, because what it will replace may change before it finishes;
// the booking is settled to the real change by settle.
func (s *Service) reserve(u *usage, needBytes, needFiles int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fits(u, needBytes, needFiles); err != nil {
		return err
	}
	u.resvBytes += needBytes
	u.resvFiles += needFiles
	s.totalResv += needBytes
	return nil
}

// take applies a change that must fit the quotas (a new directory) at once,
// or refuses with ERR limit and changes nothing.
func (s *Service) take(u *usage, bytes, files int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fits(u, bytes, files); err != nil {
		return err
	}
	s.change(u, bytes, files)
	return nil
}

// fits reports whether bytes and files more fit in u and in the global
// quota, counting what uploads in progress have reserved. Called with s.mu
// held.
func (s *Service) fits(u *usage, bytes, files int64) error {
	q := s.quotas
	switch {
	case q.UserBytes > 0 && bytes > q.UserBytes-u.bytes-u.resvBytes:
		return wire.Errorf(wire.CodeLimit, "needs %d bytes; the account has %d of %d left",
			bytes, max(0, q.UserBytes-u.bytes-u.resvBytes), q.UserBytes)
	case q.UserFiles > 0 && files > q.UserFiles-u.files-u.resvFiles:
		return wire.Errorf(wire.CodeLimit,
			"the account already has its limit of %d files (directories and partial uploads count too)", q.UserFiles)
	case q.TotalBytes > 0 && bytes > q.TotalBytes-s.total-s.totalResv:
		return wire.Errorf(wire.CodeLimit, "needs %d bytes; the server has %d left",
			bytes, max(0, q.TotalBytes-s.total-s.totalResv))
	}
	return nil
}

// settle ends an upload's booking of resvBytes and resvFiles, and applies
// what really changed on disk.
func (s *Service) settle(u *usage, resvBytes, resvFiles, bytes, files int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.resvBytes -= resvBytes
	u.resvFiles -= resvFiles
	s.totalResv -= resvBytes
	s.change(u, bytes, files)
}

// keepTemp ends an aborted upload's booking of resvBytes and resvFiles and
// applies bytes and files, the change its kept temporary file makes, if that
// still fits the quotas; it reports whether it did. The block rounding of
// temporary files can make the change larger than the booking.
func (s *Service) keepTemp(u *usage, resvBytes, resvFiles, bytes, files int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.resvBytes -= resvBytes
	u.resvFiles -= resvFiles
	s.totalResv -= resvBytes
	if bytes > resvBytes && s.fits(u, bytes, files) != nil {
		return false
	}
	s.change(u, bytes, files)
	return true
}

// adjust applies a change made outside an upload (del, rmdir of temporaries).
func (s *Service) adjust(u *usage, bytes, files int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.change(u, bytes, files)
}

func (s *Service) change(u *usage, bytes, files int64) {
	u.bytes += bytes
	u.files += files
	s.total += bytes
}

// scanHome counts a home's regular files, directories and kept upload
// temporary files as usage charges them, and removes temporary files not
// written to for StaleAfter. Symbolic links are neither followed nor
// counted: what they point to is counted where it lives.
func scanHome(r *os.Root, now time.Time, log *slog.Logger) (*usage, error) {
	u := &usage{}
	err := fs.WalkDir(r.FS(), top, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			if p != top {
				u.bytes += dirCharge
				u.files++
			}
			return nil
		case !d.Type().IsRegular():
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if isInfo(d.Name()) {
			// Part of its temporary file's charge; WalkDir's lexical order
			// has visited (and maybe removed as stale) that file already.
			if _, err := r.Lstat(strings.TrimSuffix(p, infoSuffix)); errors.Is(err, fs.ErrNotExist) {
				return r.Remove(p)
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			if now.Sub(fi.ModTime()) > StaleAfter {
				log.Info("files: removing stale upload", "path", p, "bytes", fi.Size())
				return r.Remove(p)
			}
			u.bytes += tempCharge(fi.Size())
			u.files++
			return nil
		}
		u.bytes += fi.Size()
		u.files++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan home %q: %w", r.Name(), err)
	}
	return u, nil
}
