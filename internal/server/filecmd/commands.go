// Package filecmd holds the file commands of DESIGN.md §3.3
// (docs/protocol.md §10): transfers (fput, fget, file + data), listings,
// directories, partial uploads and the data chunk size. Register adds them
// to a server.Table. Path rules, quotas and durability belong to
// internal/files; this package maps requests onto it.
//
// What a connection remembers between file commands — the working
// directory of each home, the upload `file` opened, the `buff` chunk size —
// is one session value (connState), released when the login ends: an
// upload in progress is then aborted, keeping its temporary file for a
// resume, and the next login starts at its home's top.
package filecmd

import (
	"context"

	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// Register adds the file commands to t. Each takes an optional options map
// as its last argument (see parseFileRequest).
func Register(t *server.Table) {
	v := cmdspec.Verified
	t.Handle("fput", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 3, MaxArgs: 4, Usage: "fput path size sha256 [{force, backup, as}] — upload: answers OK offset, then reads [\"data\", offset, bytes] messages up to size and answers the last one"}, Run: cmdFput})
	t.Handle("fget", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 3, Usage: "fget path [offset] [{as}] — download: answers OK size sha256, then sends [\"data\", offset, bytes] messages up to size"}, Run: cmdFget})
	t.Handle("file", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 3, MaxArgs: 4, Usage: "file path size sha256 [{force, backup, as}] — start an upload whose data messages are answered one by one: answers OK offset"}, Run: cmdFile})
	t.Handle("data", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 2, MaxArgs: 2, Usage: "data offset bytes — the next chunk of the upload `file` started: answers OK next-offset"}, Run: cmdData})
	t.Handle("del", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 2, Usage: "del path [{as}] — delete a file"}, Run: cmdDel})
	t.Handle("ls", server.Command{Spec: cmdspec.Spec{Min: v, MaxArgs: 2, Usage: "ls [path] [{as}] — list a directory (default: the working directory): OK [{name, size, mtime, dir}...]"}, Run: cmdLs})
	t.Handle("lsd", server.Command{Spec: cmdspec.Spec{Min: v, MaxArgs: 2, Usage: "lsd [path] [{as}] — list the subdirectories of a directory"}, Run: cmdLsd})
	t.Handle("cd", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 2, Usage: "cd path [{as}] — change the working directory: OK new-cwd"}, Run: cmdCd})
	t.Handle("pwd", server.Command{Spec: cmdspec.Spec{Min: v, MaxArgs: 1, Usage: "pwd [{as}] — the working directory, relative to the home (\"\" at its top)"}, Run: cmdPwd})
	t.Handle("stat", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 2, Usage: "stat path [{as}] — describe a file or directory: OK {name, size, mtime, dir}"}, Run: cmdStat})
	t.Handle("mkdir", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 2, Usage: "mkdir path [{as}] — create a directory"}, Run: cmdMkdir})
	t.Handle("rmdir", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 2, Usage: "rmdir path [{as}] — remove an empty directory"}, Run: cmdRmdir})
	t.Handle("fpart", server.Command{Spec: cmdspec.Spec{Min: v, MinArgs: 1, MaxArgs: 3, Usage: "fpart ls|rm [path] [{as}] — partial uploads: ls answers OK [{name, size, have, sha256, mtime}...]; rm path discards those of path"}, Run: cmdFpart})
	t.Handle("buff", server.Command{Spec: cmdspec.Spec{Min: v, MaxArgs: 2, Usage: "buff [bytes] [{as}] — get or set the chunk size of the data messages fget sends (1 to 61440)"}, Run: cmdBuff})
}

// fileInfo is the map `stat` and `ls` reply.
type fileInfo struct {
	Name  string `cbor:"name"`
	Size  uint64 `cbor:"size"`
	Mtime uint64 `cbor:"mtime"`
	Dir   bool   `cbor:"dir"`
}

func wireInfo(i files.Info) fileInfo {
	return fileInfo{Name: i.Name, Size: uint64(i.Size), Mtime: i.MtimeMs, Dir: i.Dir}
}

func cmdCd(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 1, 1, false)
	if err != nil {
		return nil, err
	}
	p, err := fr.Text(0, "path")
	if err != nil {
		return nil, err
	}
	cwd, err := fr.home.Cd(fr.cwd, p)
	if err != nil {
		return nil, err
	}
	fr.setCwd(cwd)
	return server.OK(fr.home.Pwd(cwd))
}

func cmdPwd(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 0, 0, false)
	if err != nil {
		return nil, err
	}
	return server.OK(fr.home.Pwd(fr.cwd))
}

func cmdStat(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 1, 1, false)
	if err != nil {
		return nil, err
	}
	p, err := fr.Text(0, "path")
	if err != nil {
		return nil, err
	}
	info, err := fr.home.Stat(fr.cwd, p)
	if err != nil {
		return nil, err
	}
	return server.OK(wireInfo(info))
}

func cmdLs(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return list(ctx, s, req, false)
}

func cmdLsd(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return list(ctx, s, req, true)
}

func list(ctx context.Context, s *server.Session, req *wire.Request, dirsOnly bool) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 0, 1, false)
	if err != nil {
		return nil, err
	}
	p := "." // the working directory: files.Home.List refuses an empty path
	if fr.NArgs() == 1 {
		if p, err = fr.Text(0, "path"); err != nil {
			return nil, err
		}
	}
	infos, err := fr.home.List(fr.cwd, p, dirsOnly)
	if err != nil {
		return nil, err
	}
	out := make([]fileInfo, len(infos))
	for i, info := range infos {
		out[i] = wireInfo(info)
	}
	return server.OK(out)
}

// pathCommand runs the commands that take one path and answer a bare OK.
func pathCommand(ctx context.Context, s *server.Session, req *wire.Request, op func(h *files.Home, cwd files.Cwd, p string) error) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 1, 1, false)
	if err != nil {
		return nil, err
	}
	p, err := fr.Text(0, "path")
	if err != nil {
		return nil, err
	}
	if err := op(fr.home, fr.cwd, p); err != nil {
		return nil, err
	}
	return server.OK()
}

func cmdDel(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return pathCommand(ctx, s, req, (*files.Home).Delete)
}

func cmdMkdir(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return pathCommand(ctx, s, req, (*files.Home).Mkdir)
}

func cmdRmdir(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	return pathCommand(ctx, s, req, (*files.Home).Rmdir)
}

// partialInfo is one entry of the `fpart ls` reply.
type partialInfo struct {
	Name   string `cbor:"name"`
	Size   uint64 `cbor:"size"`
	Have   uint64 `cbor:"have"`
	SHA256 []byte `cbor:"sha256"`
	Mtime  uint64 `cbor:"mtime"`
}

// cmdFpart lists (ls) or discards (rm path) the account's partial uploads:
// the kept temporary files of interrupted uploads, which count against its
// quota but no listing shows (docs/protocol.md, "Partial uploads").
func cmdFpart(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 1, 2, false)
	if err != nil {
		return nil, err
	}
	sub, err := fr.Text(0, "subcommand")
	if err != nil {
		return nil, err
	}
	switch sub {
	case "ls":
		if fr.NArgs() != 1 {
			return nil, wire.Errorf(wire.CodeProto, "fpart ls takes no path")
		}
		parts, err := fr.home.Partials()
		if err != nil {
			return nil, err
		}
		out := make([]partialInfo, len(parts))
		for i, p := range parts {
			out[i] = partialInfo{Name: p.Name, Size: uint64(p.Size), Have: uint64(p.Have), SHA256: p.SHA256, Mtime: p.MtimeMs}
		}
		return server.OK(out)
	case "rm":
		if fr.NArgs() != 2 {
			return nil, wire.Errorf(wire.CodeProto, "fpart rm takes a path")
		}
		p, err := fr.Text(1, "path")
		if err != nil {
			return nil, err
		}
		if err := fr.home.DiscardPartials(fr.cwd, p); err != nil {
			return nil, err
		}
		return server.OK()
	}
	return nil, wire.Errorf(wire.CodeInvalid, "fpart takes ls or rm, not %q", server.Truncate(sub, 32))
}

// maxChunk is the largest data payload in either direction (DESIGN.md §3.3:
// 60 KiB), so that a data message always fits in one encrypted frame.
const maxChunk = 60 << 10

func (st *connState) chunkSize() int {
	if st.chunk <= 0 {
		return maxChunk
	}
	return st.chunk
}

func cmdBuff(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 0, 1, false)
	if err != nil {
		return nil, err
	}
	if fr.NArgs() == 1 {
		n, err := fr.Uint(0, "bytes")
		if err != nil {
			return nil, err
		}
		if n < 1 || n > maxChunk {
			return nil, wire.Errorf(wire.CodeInvalid, "chunk size must be within [1, %d] bytes", maxChunk)
		}
		stateOf(s).chunk = int(n)
	}
	return server.OK(uint64(stateOf(s).chunkSize()))
}
