package files

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/wire"
)

// StaleAfter is how old an upload temporary file must be for New to remove
// it: an interrupted upload can be resumed for this long after its last write
// (and at least until the server restarts).
const StaleAfter = 24 * time.Hour

// Service owns <dataroot>/files: it opens homes and keeps every home's usage,
// so quotas are checked without walking the tree on each upload.
type Service struct {
	root   *os.Root // <dataroot>/files
	quotas Quotas
	log    *slog.Logger
	// escape is os.Root's error for a path that leaves the root. The os
	// package does not export it, so New captures it from a probe ("..").
	escape error

	mu        sync.Mutex
	homes     map[string]*Home  // opened homes, by lowercase name
	usage     map[string]*usage // every known home's usage, by lowercase name
	total     int64             // bytes on disk in all homes (files and kept temporary files)
	totalResv int64             // bytes reserved by uploads in progress, all homes
}

// New opens the file service rooted at dir (<dataroot>/files), creating it
// with mode 0700. It walks every existing home once: upload temporary files
// older than StaleAfter are removed, and the rest is counted, so the
// global quota is right from the first upload. logger may be nil.
func New(dir string, q Quotas, logger *slog.Logger) (*Service, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if q.UserBytes < 0 || q.UserFiles < 0 || q.TotalBytes < 0 {
		return nil, fmt.Errorf("negative quota %+v", q)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create files directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open files directory: %w", err)
	}
	_, probe := root.Stat("..")
	escape := errors.Unwrap(probe)
	if escape == nil {
		root.Close()
		return nil, fmt.Errorf("os.Root did not refuse \"..\" (got %v)", probe)
	}
	s := &Service{
		root:   root,
		quotas: q,
		log:    logger,
		escape: escape,
		homes:  make(map[string]*Home),
		usage:  make(map[string]*usage),
	}
	if err := s.scanAll(time.Now()); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

// scanAll counts every home already on disk and removes its stale
// temporary files.
func (s *Service) scanAll(now time.Time) error {
	entries, err := fs.ReadDir(s.root.FS(), top)
	if err != nil {
		return fmt.Errorf("list homes: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || checkHomeName(e.Name()) != nil {
			s.log.Warn("files: ignoring entry that is not a home", "name", e.Name())
			continue
		}
		r, err := s.root.OpenRoot(e.Name())
		if err != nil {
			return fmt.Errorf("open home %q: %w", e.Name(), err)
		}
		u, err := scanHome(r, now, s.log.With("home", e.Name()))
		r.Close()
		if err != nil {
			return err
		}
		s.usage[e.Name()] = u
		s.total += u.bytes
	}
	return nil
}

// Home returns the home of the account whose lowercase name is user, creating
// the directory (0700) on first use. Homes are cached: every connection of an
// account shares one *Home.
func (s *Service) Home(user string) (*Home, error) {
	if err := checkHomeName(user); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.homes[user]; h != nil {
		return h, nil
	}
	if s.homes == nil {
		return nil, errors.New("file service is closed")
	}
	if err := s.root.Mkdir(user, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create home %q: %w", user, err)
	}
	r, err := s.root.OpenRoot(user)
	if err != nil {
		return nil, fmt.Errorf("open home %q: %w", user, err)
	}
	u := s.usage[user]
	if u == nil {
		// A home that appeared after New (or is new): count it now.
		u, err = scanHome(r, time.Now(), s.log.With("home", user))
		if err != nil {
			r.Close()
			return nil, err
		}
		s.usage[user] = u
		s.total += u.bytes
	}
	h := &Home{svc: s, name: user, root: r, use: u, active: make(map[string]bool)}
	s.homes[user] = h
	return h, nil
}

// Usage returns what the account's home holds as the quotas count it: its
// regular files, directories and kept upload temporary files, in files and
// charged bytes (see usage). An unknown home uses nothing.
func (s *Service) Usage(user string) (bytes, files int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.usage[user]; u != nil {
		return u.bytes, u.files
	}
	return 0, 0
}

// RetireHome takes a deleted account's home out of reach, so that a new
// account of the same name starts with an empty home instead of the old
// one's private files. The directory moves to
// <dataroot>/deleted-homes/<name>-<unix ns> (kept for the operator; nothing
// serves it) and its usage leaves the totals. A home never created is fine.
func (s *Service) RetireHome(user string) error {
	if err := checkHomeName(user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.homes[user]; h != nil {
		h.root.Close()
		delete(s.homes, user)
	}
	if u := s.usage[user]; u != nil {
		s.total -= u.bytes
		delete(s.usage, user)
	}
	from := filepath.Join(s.root.Name(), user)
	if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	graveyard := filepath.Join(filepath.Dir(s.root.Name()), datadir.DeletedHomesDir)
	if err := os.MkdirAll(graveyard, 0o700); err != nil {
		return fmt.Errorf("retire home %q: %w", user, err)
	}
	to := filepath.Join(graveyard, fmt.Sprintf("%s-%d", user, time.Now().UnixNano()))
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("retire home %q: %w", user, err)
	}
	s.log.Info("home of a deleted account retired", "home", user, "to", to)
	return nil
}

// Close releases the service's directory handles. Homes obtained before must
// not be used after.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, h := range s.homes {
		errs = append(errs, h.root.Close())
	}
	s.homes = nil
	errs = append(errs, s.root.Close())
	return errors.Join(errs...)
}

// checkHomeName accepts exactly the lowercase form of an account name
// (DESIGN.md §3.2: [a-z0-9][a-z0-9._-]{0,63}). The caller has validated the
// account already; checking again here means no caller mistake can turn a
// name into a path ("", "..", "a/b").
func checkHomeName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return wire.Errorf(wire.CodeInvalid, "bad home name %q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return wire.Errorf(wire.CodeInvalid, "bad home name %q", name)
		}
	}
	return nil
}
