package files

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"

	"github.com/vserv/vserv/internal/wire"
)

// Home is one account's private directory. It is safe for concurrent use by
// all the account's connections; each connection keeps its own [Cwd].
type Home struct {
	svc  *Service
	name string
	root *os.Root
	use  *usage // guarded by svc.mu

	// mu serialises the changes that usage must follow (mkdir, rmdir, del,
	// the start and end of uploads), so a count never disagrees with the tree.
	// Reads and upload data writes do not take it.
	mu     sync.Mutex
	active map[string]bool // temporary files being written, by home-relative path

	hashes hashCache
}

// Info describes one file or directory, as `stat` and `ls` reply it.
type Info struct {
	Name    string // last path component ("." for the top of the home)
	Size    int64  // bytes; 0 for a directory
	MtimeMs uint64 // modification time, Unix milliseconds
	Dir     bool
}

func infoOf(name string, fi fs.FileInfo) Info {
	i := Info{Name: name, Dir: fi.IsDir(), MtimeMs: uint64(max(0, fi.ModTime().UnixMilli()))}
	if !i.Dir {
		i.Size = fi.Size()
	}
	return i
}

// Name is the home's lowercase account name.
func (h *Home) Name() string { return h.name }

// err maps an os.Root error for the client path p.
func (h *Home) err(op, p string, err error) error { return fsError(h.svc.escape, op, p, err) }

// Cd returns the working directory p names from cwd. It must be an existing
// directory (a file is ERR invalid).
func (h *Home) Cd(cwd Cwd, p string) (Cwd, error) {
	rel, err := resolve(cwd, p)
	if err != nil {
		return cwd, err
	}
	fi, err := h.root.Stat(rel)
	if err != nil {
		return cwd, h.err("cd", p, err)
	}
	if !fi.IsDir() {
		return cwd, wire.Errorf(wire.CodeInvalid, "%q is not a directory", p)
	}
	if rel == top {
		return "", nil
	}
	return Cwd(rel), nil
}

// Pwd returns the working directory as `pwd` replies it: relative to the
// home, "" at its top.
func (h *Home) Pwd(cwd Cwd) string { return string(cwd) }

// Stat describes the file or directory p names; a symbolic link inside the
// home is described by what it points to.
func (h *Home) Stat(cwd Cwd, p string) (Info, error) {
	rel, err := resolve(cwd, p)
	if err != nil {
		return Info{}, err
	}
	fi, err := h.root.Stat(rel)
	if err != nil {
		return Info{}, h.err("stat", p, err)
	}
	return infoOf(path.Base(rel), fi), nil
}

// List returns the entries of the directory p names, sorted by name
// (bytewise). Upload temporary files, symbolic links that lead outside the
// home or nowhere, and entries that are neither files nor directories are
// left out. Naming a file lists that file alone (or nothing, with
// dirsOnly). The server passes "." when `ls` has no path argument: an
// empty path is ERR invalid like everywhere else.
func (h *Home) List(cwd Cwd, p string, dirsOnly bool) ([]Info, error) {
	rel, err := resolve(cwd, p)
	if err != nil {
		return nil, err
	}
	fi, err := h.root.Stat(rel)
	if err != nil {
		return nil, h.err("ls", p, err)
	}
	if !fi.IsDir() {
		if dirsOnly {
			return []Info{}, nil
		}
		return []Info{infoOf(path.Base(rel), fi)}, nil
	}
	d, err := h.root.Open(rel)
	if err != nil {
		return nil, h.err("ls", p, err)
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, h.err("ls", p, err)
	}
	out := make([]Info, 0, len(entries))
	for _, e := range entries {
		if !listable(e.Name()) {
			continue
		}
		var fi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			fi, err = h.root.Stat(path.Join(rel, e.Name()))
		} else {
			fi, err = e.Info()
		}
		if err != nil || !fi.IsDir() && !fi.Mode().IsRegular() || dirsOnly && !fi.IsDir() {
			continue // gone meanwhile, leads outside, or not for clients
		}
		out = append(out, infoOf(e.Name(), fi))
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Mkdir creates the directory p names (mode 0700); its parent must exist. A
// directory counts as one file and one block against the quotas, and is at
// most maxDepth levels deep (both ERR limit).
func (h *Home) Mkdir(cwd Cwd, p string) error {
	rel, err := resolve(cwd, p)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Stat first, following links, so that a name that is a link leading
	// outside is ERR perm rather than ERR exists.
	if _, err := h.root.Stat(rel); err == nil {
		return wire.Errorf(wire.CodeExists, "%q already exists", p)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return h.err("mkdir", p, err)
	}
	if err := checkDepth(p, rel); err != nil {
		return err
	}
	if err := h.svc.take(h.use, dirCharge, 1); err != nil {
		return err
	}
	if err := h.root.Mkdir(rel, 0o700); err != nil {
		h.svc.adjust(h.use, -dirCharge, -1)
		return h.err("mkdir", p, err)
	}
	return nil
}

// Rmdir removes the empty directory p names. A directory that still holds
// entries is ERR exists. Kept temporary files of interrupted uploads do not
// count as entries (the client cannot see them): they are removed with it.
func (h *Home) Rmdir(cwd Cwd, p string) error {
	rel, err := resolve(cwd, p)
	if err != nil {
		return err
	}
	if rel == top {
		return wire.Errorf(wire.CodePerm, "cannot remove the top of the home")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := h.root.Stat(rel)
	if err != nil {
		return h.err("rmdir", p, err)
	}
	lfi, err := h.root.Lstat(rel)
	if err != nil {
		return h.err("rmdir", p, err)
	}
	if !fi.IsDir() || lfi.Mode()&fs.ModeSymlink != 0 {
		return wire.Errorf(wire.CodeInvalid, "%q is not a directory", p)
	}
	err = h.root.Remove(rel)
	if err != nil && errors.Is(err, fs.ErrExist) && h.dropKeptTemps(rel) {
		err = h.root.Remove(rel)
	}
	if err != nil {
		return h.err("rmdir", p, err)
	}
	h.svc.adjust(h.use, -dirCharge, -1)
	return nil
}

// dropKeptTemps removes the temporary files in dir if they are all it holds
// and none is being written. It reports whether it removed everything.
func (h *Home) dropKeptTemps(dir string) bool {
	d, err := h.root.Open(dir)
	if err != nil {
		return false
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return false
	}
	for _, e := range entries {
		if listable(e.Name()) || !e.Type().IsRegular() || h.active[path.Join(dir, e.Name())] {
			return false
		}
	}
	for _, e := range entries {
		rel := path.Join(dir, e.Name())
		fi, err := h.root.Lstat(rel)
		if err != nil || h.root.Remove(rel) != nil {
			return false
		}
		if !isInfo(e.Name()) {
			h.svc.adjust(h.use, -tempCharge(fi.Size()), -1)
		}
	}
	return true
}

// Delete removes the file p names. A directory is ERR invalid (use Rmdir). A
// symbolic link inside the home is removed itself, not what it points to.
func (h *Home) Delete(cwd Cwd, p string) error {
	rel, err := resolve(cwd, p)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := h.root.Stat(rel)
	if err != nil {
		return h.err("del", p, err)
	}
	if fi.IsDir() {
		return wire.Errorf(wire.CodeInvalid, "%q is a directory", p)
	}
	lfi, err := h.root.Lstat(rel)
	if err != nil {
		return h.err("del", p, err)
	}
	if err := h.root.Remove(rel); err != nil {
		return h.err("del", p, err)
	}
	if lfi.Mode().IsRegular() {
		h.svc.adjust(h.use, -lfi.Size(), -1)
	}
	return nil
}
