package files

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/vserv/vserv/internal/wire"
)

// Cwd is the working directory a connection keeps: a clean path relative to
// the home, with no "." or ".." components, "" at the top. Only [Home.Cd]
// makes one; the zero value is the top.
type Cwd string

const (
	// maxComponent is the longest name one path component may have, in bytes
	// (NAME_MAX on every file system vserv runs on).
	maxComponent = 255
	// tempPrefix starts the name of every upload temporary file. Such names are
	// hidden from listings and refused in client paths, so a client can neither
	// see nor tamper with an upload in progress.
	tempPrefix = ".vserv-upload-"
	// top is the path of the home itself, as os.Root spells it.
	top = "."
	// maxDepth is how many components a path in a home may have at most:
	// deep enough for any real tree, and it keeps a client from making
	// chains of directories that tools walking the home (and the start-up
	// scan) must descend.
	maxDepth = 32
)

// checkDepth refuses to create rel, which the client wrote as p, if it would
// be deeper than maxDepth (ERR limit).
func checkDepth(p, rel string) error {
	if n := strings.Count(rel, "/") + 1; rel != top && n > maxDepth {
		return wire.Errorf(wire.CodeLimit, "%q is %d levels deep; at most %d", p, n, maxDepth)
	}
	return nil
}

// resolve joins cwd and p into the home-relative path p names ("." for the
// top). It applies the design's lexical rules in the order a client can reason
// about: malformed names first (invalid), then attempts to leave the home
// (perm). Symbolic links are left to os.Root, which refuses any that lead out.
//
// ".." is resolved lexically against cwd, so "cd x; cd .." always returns to
// where the client was, whatever x is on disk.
func resolve(cwd Cwd, p string) (string, error) {
	if err := checkPath(p); err != nil {
		return "", err
	}
	if string(cwd) != "" {
		if err := checkPath(string(cwd)); err != nil || cwd[0] == '/' {
			return "", wire.Errorf(wire.CodePerm, "bad working directory %q", string(cwd))
		}
	}
	if p[0] == '/' {
		return "", wire.Errorf(wire.CodePerm, "absolute path %q: paths are relative to the home", p)
	}
	var stack []string
	for _, part := range append(strings.Split(string(cwd), "/"), strings.Split(p, "/")...) {
		switch {
		case part == "" || part == ".":
		case part == "..":
			if len(stack) == 0 {
				return "", wire.Errorf(wire.CodePerm, "%q leads above the top of the home", p)
			}
			stack = stack[:len(stack)-1]
		case strings.HasPrefix(part, tempPrefix):
			return "", wire.Errorf(wire.CodePerm, "%q: names starting with %q are reserved", p, tempPrefix)
		default:
			stack = append(stack, part)
		}
	}
	if len(stack) == 0 {
		return top, nil
	}
	return strings.Join(stack, "/"), nil
}

// checkPath enforces the only reasons a path is ERR invalid (DESIGN.md §3.3).
func checkPath(p string) error {
	switch {
	case p == "":
		return wire.Errorf(wire.CodeInvalid, "empty path")
	case !utf8.ValidString(p):
		return wire.Errorf(wire.CodeInvalid, "path %q is not valid UTF-8", p)
	case strings.IndexByte(p, 0) >= 0:
		return wire.Errorf(wire.CodeInvalid, "path %q contains NUL", p)
	}
	for part := range strings.SplitSeq(p, "/") {
		if len(part) > maxComponent {
			return wire.Errorf(wire.CodeInvalid, "path component of %d bytes (at most %d)", len(part), maxComponent)
		}
	}
	return nil
}

// listable reports whether a directory entry's name may be shown to a client:
// temporary files are hidden, and so are names no client could have sent
// (planted on disk), since they could not be named back.
func listable(name string) bool {
	return !strings.HasPrefix(name, tempPrefix) && checkPath(name) == nil &&
		name != "." && name != ".." && !strings.Contains(name, "/")
}

// fsError turns an error from os.Root into the reply the client gets. p is the
// path as the client wrote it, so the text never shows a host path. escape is
// os.Root's "path escapes" error, captured by New since os does not export it.
func fsError(escape error, op, p string, err error) error {
	var we *wire.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &we):
		return err
	case errors.Is(err, escape):
		return wire.Errorf(wire.CodePerm, "%q leads outside the home", p)
	case errors.Is(err, syscall.ELOOP):
		return wire.Errorf(wire.CodePerm, "%q: too many symbolic links", p)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return wire.Errorf(wire.CodeNotFound, "no such file or directory %q", p)
	case errors.Is(err, syscall.ENOTEMPTY):
		return wire.Errorf(wire.CodeExists, "directory %q is not empty", p)
	case errors.Is(err, fs.ErrExist):
		return wire.Errorf(wire.CodeExists, "%q already exists", p)
	case errors.Is(err, syscall.ENAMETOOLONG):
		return wire.Errorf(wire.CodeInvalid, "path %q is too long", p)
	case errors.Is(err, fs.ErrPermission):
		return wire.Errorf(wire.CodePerm, "%q: permission denied", p)
	}
	return fmt.Errorf("%s %q: %w", op, p, err)
}
