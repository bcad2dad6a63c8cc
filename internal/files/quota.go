package files

import (
	"fmt"
	"io/fs"
	"log/slog"
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

// usage is one home's account, guarded by Service.mu. bytes counts what is on
// disk (files and kept temporary files); the reserved fields count what
// uploads in progress may still add, so two uploads cannot both fit into the
// same free space.
type usage struct {
	bytes, files         int64
	resvBytes, resvFiles int64
}

// reserve books need more bytes and one more file for an upload into u, or
// refuses with ERR limit. It is deliberately conservative: an overwrite is
// booked as a new file, because what it will replace may change before it
// finishes; the booking is settled to the real change by settle.
func (s *Service) reserve(u *usage, need int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.quotas
	switch {
	case q.UserBytes > 0 && u.bytes+u.resvBytes+need > q.UserBytes:
		return wire.Errorf(wire.CodeLimit, "upload needs %d bytes; the account has %d of %d left",
			need, max(0, q.UserBytes-u.bytes-u.resvBytes), q.UserBytes)
	case q.UserFiles > 0 && u.files+u.resvFiles+1 > q.UserFiles:
		return wire.Errorf(wire.CodeLimit, "the account already has its limit of %d files", q.UserFiles)
	case q.TotalBytes > 0 && s.total+s.totalResv+need > q.TotalBytes:
		return wire.Errorf(wire.CodeLimit, "upload needs %d bytes; the server has %d left",
			need, max(0, q.TotalBytes-s.total-s.totalResv))
	}
	u.resvBytes += need
	u.resvFiles++
	s.totalResv += need
	return nil
}

// settle ends an upload's booking of resv bytes and one file, and applies
// what really changed on disk.
func (s *Service) settle(u *usage, resv, bytes, files int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.resvBytes -= resv
	u.resvFiles--
	s.totalResv -= resv
	s.change(u, bytes, files)
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

// scanHome counts a home's regular files and removes upload temporary files
// not written to for StaleAfter. Symbolic links are neither followed nor
// counted: what they point to is counted where it lives.
func scanHome(r *os.Root, now time.Time, log *slog.Logger) (*usage, error) {
	u := &usage{}
	err := fs.WalkDir(r.FS(), top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			if now.Sub(fi.ModTime()) > StaleAfter {
				log.Info("files: removing stale upload", "path", p, "bytes", fi.Size())
				return r.Remove(p)
			}
			u.bytes += fi.Size()
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
