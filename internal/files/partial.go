package files

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/vserv/vserv/internal/wire"
)

// A partial upload is a kept (or in progress) upload temporary file. Its name
// is a hash, so what it is for is written next to it, in a small JSON file
// named like it with infoSuffix: {"path", "size", "sha256" (hex)}. That file
// is part of the partial upload: it is created with the temporary file,
// removed with it, and not counted on its own.
const infoSuffix = ".info"

// MaxPartials is the most entries Partials returns, so the reply stays far
// below the message limit whatever the file quota.
const MaxPartials = 1000

// maxInfo bounds what is read of an info file (a planted one may be huge).
const maxInfo = 4096

// Partial describes one partial upload, as `fpart ls` replies it.
type Partial struct {
	Name    string // target path, relative to the top of the home
	Size    int64  // declared size of the file
	Have    int64  // bytes received so far
	SHA256  []byte // declared hash
	MtimeMs uint64 // last write, Unix milliseconds
}

type partialInfo struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func isInfo(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, infoSuffix)
}

// writeInfo records what the temporary file tempRel is for, unless that is
// written already (a resumed upload). Called with h.mu held.
func (h *Home) writeInfo(tempRel, rel string, size int64, sum []byte) error {
	b, err := json.Marshal(partialInfo{Path: rel, Size: size, SHA256: hex.EncodeToString(sum)})
	if err != nil {
		return err
	}
	f, err := h.root.OpenFile(tempRel+infoSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		h.root.Remove(tempRel + infoSuffix)
	}
	return err
}

// readInfo reads the info file of the temporary file tempRel.
func (h *Home) readInfo(tempRel string) (partialInfo, error) {
	var pi partialInfo
	f, err := h.root.Open(tempRel + infoSuffix)
	if err != nil {
		return pi, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInfo))
	if err != nil {
		return pi, err
	}
	if err := json.Unmarshal(b, &pi); err != nil {
		return pi, fmt.Errorf("info of %s: %w", tempRel, err)
	}
	return pi, nil
}

// removeTemp removes a temporary file and its info file. Only the temporary
// file's removal is reported: a left-over info file is harmless (the next
// start removes it, as it has no temporary file).
func (h *Home) removeTemp(tempRel string) error {
	err := h.root.Remove(tempRel)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		h.root.Remove(tempRel + infoSuffix)
	}
	return err
}

// walkTemps calls fn for every upload temporary file in the home (not their
// info files), with its home-relative path.
func (h *Home) walkTemps(fn func(tempRel string, fi fs.FileInfo) error) error {
	return fs.WalkDir(h.root.FS(), top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == top {
				return err
			}
			return nil // gone meanwhile
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasPrefix(name, tempPrefix) || isInfo(name) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		return fn(p, fi)
	})
}

// Partials lists the home's partial uploads, kept ones and those in
// progress, sorted by name, at most MaxPartials. A temporary file without a
// readable info file (left by a version before partial uploads were listed)
// is not listed; it still counts, and goes after StaleAfter or with its
// directory.
func (h *Home) Partials() ([]Partial, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []Partial{}
	err := h.walkTemps(func(tempRel string, fi fs.FileInfo) error {
		pi, err := h.readInfo(tempRel)
		if err != nil {
			return nil
		}
		sum, err := hex.DecodeString(pi.SHA256)
		if err != nil || checkPath(pi.Path) != nil {
			return nil
		}
		out = append(out, Partial{
			Name: pi.Path, Size: pi.Size, Have: fi.Size(), SHA256: sum,
			MtimeMs: uint64(max(0, fi.ModTime().UnixMilli())),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partial uploads: %w", err)
	}
	slices.SortFunc(out, func(a, b Partial) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Size, b.Size))
	})
	if len(out) > MaxPartials {
		out = out[:MaxPartials]
	}
	return out, nil
}

// DiscardPartials removes every kept partial upload to the path p names,
// whatever its size and hash, and frees what they used. None is ERR
// notfound; one being written by a connection is ERR conflict (and nothing
// is removed).
func (h *Home) DiscardPartials(cwd Cwd, p string) error {
	rel, err := resolve(cwd, p)
	if err != nil {
		return err
	}
	if rel == top {
		return wire.Errorf(wire.CodeNotFound, "no partial upload of %q", p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir := path.Dir(rel)
	if _, err := h.root.Stat(dir); err != nil {
		return h.err("fpart rm", p, err)
	}
	d, err := h.root.Open(dir)
	if err != nil {
		return h.err("fpart rm", p, err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return h.err("fpart rm", p, err)
	}
	var found []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, tempPrefix) || isInfo(name) {
			continue
		}
		tempRel := path.Join(dir, name)
		if pi, err := h.readInfo(tempRel); err == nil && pi.Path == rel {
			if h.active[tempRel] {
				return wire.Errorf(wire.CodeConflict, "an upload of %q is in progress", p)
			}
			found = append(found, tempRel)
		}
	}
	if len(found) == 0 {
		return wire.Errorf(wire.CodeNotFound, "no partial upload of %q", p)
	}
	for _, tempRel := range found {
		fi, err := h.root.Lstat(tempRel)
		if err != nil {
			return h.err("fpart rm", p, err)
		}
		if err := h.removeTemp(tempRel); err != nil {
			return h.err("fpart rm", p, err)
		}
		h.svc.adjust(h.use, -tempCharge(fi.Size()), -1)
	}
	return nil
}
