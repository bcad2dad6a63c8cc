package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vserv/vserv/client"
)

// transfer holds one put or get run: its connection (which --resume may
// replace after a failure) and its progress bar.
type transfer struct {
	a   *app
	ctx context.Context
	c   *client.Client
	ff  *fileFlags
	bar *transferBar
}

func (a *app) startTransfer(ctx context.Context, ff *fileFlags) (*transfer, error) {
	c, err := a.dialLogin(ctx)
	if err != nil {
		return nil, err
	}
	return &transfer{a: a, ctx: ctx, c: c, ff: ff}, nil
}

func (t *transfer) close() {
	_ = t.c.Quit(t.ctx)
}

// isRemoteDir reports whether p names a directory on the server.
func (t *transfer) isRemoteDir(p string) (bool, error) {
	fi, err := t.c.Stat(t.ctx, p, t.ff.opts())
	if errors.Is(err, client.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Dir, nil
}

func (a *app) filePutCmd(ff *fileFlags) *cobra.Command {
	var force, backup, resume, recursive bool
	cmd := &cobra.Command{
		Use:   "put LOCAL [REMOTE]",
		Short: "Upload a file, or with -R a directory tree",
		Long: `vcli file put uploads LOCAL to REMOTE (default: LOCAL's name at the top of the
home; into REMOTE if it is a directory or ends with /). The server checks the
size and SHA-256 before the file appears under its name; an existing file is
replaced only with --force (--backup keeps the old one as NAME~).

An upload that was cut off resumes where it stopped when the same file is put
again. --resume sends it chunk by chunk, each acknowledged, and reconnects and
continues after a broken connection.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			local := args[0]
			fi, err := os.Stat(local)
			if err != nil {
				return usagef("%v", err)
			}
			if fi.IsDir() && !recursive {
				return usagef("%s is a directory: use -R to upload a tree", local)
			}
			if !fi.IsDir() && !fi.Mode().IsRegular() {
				return usagef("%s is not a regular file", local)
			}
			t, err := a.startTransfer(cmd.Context(), ff)
			if err != nil {
				return err
			}
			defer t.c.Close()
			opts := &client.UploadOptions{Force: force, Backup: backup, As: ff.as}
			remote, err := t.putTarget(local, args[1:])
			if err != nil {
				return err
			}
			jobs, total, err := t.planPut(local, remote, fi.IsDir())
			if err != nil {
				return err
			}
			t.bar = a.newBar("put "+filepath.Base(local), total)
			var moved []transferred
			var base int64
			for _, j := range jobs {
				if j.dir {
					if err := t.mkdirRemote(j.remote); err != nil {
						return err
					}
					continue
				}
				m, err := t.put(j.local, j.remote, opts, resume, base)
				if err != nil {
					t.bar.finish()
					return err
				}
				base += m.Size
				moved = append(moved, m)
			}
			t.bar.finish()
			t.close()
			a.reportTransfers("put", moved)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&force, "force", false, "replace an existing remote file")
	f.BoolVar(&backup, "backup", false, "with --force, keep the replaced file as NAME~")
	f.BoolVar(&resume, "resume", false, "send chunk by chunk with acknowledgements, reconnecting and continuing after a broken connection")
	f.BoolVarP(&recursive, "recursive", "R", false, "upload a directory and everything in it")
	return cmd
}

// putTarget decides the remote name, like cp: into a remote directory when
// REMOTE is one (or ends with /), else REMOTE itself.
func (t *transfer) putTarget(local string, rest []string) (string, error) {
	name := filepath.Base(filepath.Clean(local))
	if len(rest) == 0 {
		return name, nil
	}
	remote := rest[0]
	if strings.HasSuffix(remote, "/") {
		return remoteJoin(strings.TrimRight(remote, "/"), name), nil
	}
	dir, err := t.isRemoteDir(remote)
	if err != nil {
		return "", err
	}
	if dir {
		return remoteJoin(remote, name), nil
	}
	return remote, nil
}

type putJob struct {
	local, remote string
	dir           bool
	size          int64
}

// planPut lists what to upload: one file, or a tree walked in lexical order
// (directories before what they hold). Links and special files in a tree are
// skipped with a notice: only regular files and directories are uploaded.
func (t *transfer) planPut(local, remote string, isDir bool) ([]putJob, int64, error) {
	if !isDir {
		fi, err := os.Stat(local)
		if err != nil {
			return nil, 0, err
		}
		return []putJob{{local: local, remote: remote, size: fi.Size()}}, fi.Size(), nil
	}
	var jobs []putJob
	var total int64
	err := filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(local, p)
		if err != nil {
			return err
		}
		r := remote
		if rel != "." {
			r = remoteJoin(remote, filepath.ToSlash(rel))
		}
		switch {
		case d.IsDir():
			jobs = append(jobs, putJob{local: p, remote: r, dir: true})
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			jobs = append(jobs, putJob{local: p, remote: r, size: fi.Size()})
			total += fi.Size()
		default:
			t.a.fileNotice("skipping %s: not a regular file or directory", p)
		}
		return nil
	})
	return jobs, total, err
}

func (t *transfer) mkdirRemote(p string) error {
	err := t.c.Mkdir(t.ctx, p, t.ff.opts())
	if errors.Is(err, client.ErrExists) {
		if dir, serr := t.isRemoteDir(p); serr == nil && dir {
			return nil
		}
	}
	return err
}

// resumeAttempts bounds how often --resume reconnects for one file.
const resumeAttempts = 5

func (t *transfer) put(local, remote string, opts *client.UploadOptions, resume bool, base int64) (transferred, error) {
	size, sum, err := client.HashFile(local)
	if err != nil {
		return transferred{}, usagef("%v", err)
	}
	f, err := os.Open(local)
	if err != nil {
		return transferred{}, usagef("%v", err)
	}
	defer f.Close()
	o := *opts
	o.Progress = func(done, _ int64) { t.bar.set(base + done) }
	m := transferred{Local: local, Remote: remote, Size: size, SHA256: hexSum(sum)}
	if !resume {
		m.ResumedAt, err = t.c.Upload(t.ctx, f, size, sum, remote, &o)
		return m, err
	}
	for attempt := 1; ; attempt++ {
		at, err := t.c.ResumeUpload(t.ctx, f, size, sum, remote, &o)
		if attempt == 1 {
			m.ResumedAt = at
		}
		if err == nil || t.ctx.Err() != nil || attempt == resumeAttempts {
			return m, err
		}
		switch {
		case errors.Is(err, client.ErrConflict):
			// The server still holds the upload of the connection that broke.
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		case isERR(err):
			return m, err
		default:
			t.a.fileNotice("connection lost during %s (%v); reconnecting", local, err)
			t.c.Close()
			c, derr := t.a.dialLogin(t.ctx)
			if derr != nil {
				return m, err
			}
			t.c = c
		}
	}
}

func isERR(err error) bool {
	var we *client.Error
	return errors.As(err, &we)
}

func (a *app) fileGetCmd(ff *fileFlags) *cobra.Command {
	var force, recursive bool
	cmd := &cobra.Command{
		Use:   "get REMOTE [LOCAL]",
		Short: "Download a file, or with -R a directory tree",
		Long: `vcli file get downloads REMOTE to LOCAL (default: REMOTE's name in the current
directory; into LOCAL if it is a directory; "-" writes to standard output).
The size and SHA-256 the server announces are checked before the file
appears under its name; an existing local file is replaced only with --force.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			remote := args[0]
			t, err := a.startTransfer(cmd.Context(), ff)
			if err != nil {
				return err
			}
			defer t.c.Close()
			isDir, err := t.isRemoteDir(remote)
			if err != nil {
				return err
			}
			if isDir && !recursive {
				return usagef("%s is a directory: use -R to download a tree", remote)
			}
			local, err := getTarget(remote, args[1:])
			if err != nil {
				return err
			}
			if isDir && local == "-" {
				return usagef("a directory cannot go to standard output")
			}
			jobs, total, err := t.planGet(remote, local, isDir)
			if err != nil {
				return err
			}
			t.bar = a.newBar("get "+path.Base(remote), total)
			var moved []transferred
			var base int64
			for _, j := range jobs {
				if j.dir {
					if err := os.MkdirAll(j.local, 0o755); err != nil {
						return usagef("%v", err)
					}
					continue
				}
				m, err := t.get(j.remote, j.local, force, base)
				if err != nil {
					t.bar.finish()
					return err
				}
				base += m.Size
				moved = append(moved, m)
			}
			t.bar.finish()
			t.close()
			if local != "-" {
				a.reportTransfers("got", moved)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing local file")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "download a directory and everything in it")
	return cmd
}

func getTarget(remote string, rest []string) (string, error) {
	name := path.Base(strings.TrimRight(remote, "/"))
	if len(rest) == 0 {
		if name == "." || name == ".." || name == "/" || name == "" {
			return "", usagef("say where to put %q: vcli file get %s LOCAL", remote, remote)
		}
		return name, nil
	}
	local := rest[0]
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		return filepath.Join(local, name), nil
	}
	return local, nil
}

// planGet lists what to download: one file, or a remote tree.
func (t *transfer) planGet(remote, local string, isDir bool) ([]putJob, int64, error) {
	if !isDir {
		fi, err := t.c.Stat(t.ctx, remote, t.ff.opts())
		if err != nil {
			return nil, 0, err
		}
		return []putJob{{local: local, remote: remote, size: fi.Size}}, fi.Size, nil
	}
	jobs := []putJob{{local: local, remote: remote, dir: true}}
	var total int64
	var walk func(r, l string) error
	walk = func(r, l string) error {
		infos, err := t.c.ListFiles(t.ctx, r, t.ff.opts())
		if err != nil {
			return err
		}
		for _, fi := range infos {
			rr, ll := remoteJoin(r, fi.Name), filepath.Join(l, fi.Name)
			if fi.Dir {
				jobs = append(jobs, putJob{local: ll, remote: rr, dir: true})
				if err := walk(rr, ll); err != nil {
					return err
				}
				continue
			}
			jobs = append(jobs, putJob{local: ll, remote: rr, size: fi.Size})
			total += fi.Size
		}
		return nil
	}
	return jobs, total, walk(remote, local)
}

// get downloads one file into a temporary file next to local and renames it
// into place only once its size and hash are checked.
func (t *transfer) get(remote, local string, force bool, base int64) (transferred, error) {
	m := transferred{Local: local, Remote: remote}
	o := &client.DownloadOptions{As: t.ff.as, Progress: func(done, _ int64) { t.bar.set(base + done) }}
	if local == "-" {
		n, err := t.c.Download(t.ctx, remote, t.a.stdout, o)
		m.Size = n
		return m, err
	}
	if _, err := os.Lstat(local); err == nil && !force {
		return m, usagef("%s exists: use --force to replace it", local)
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".vcli-*")
	if err != nil {
		return m, usagef("%v", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	n, err := t.c.Download(t.ctx, remote, tmp, o)
	m.Size = n
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return m, err
	}
	return m, os.Rename(tmp.Name(), local)
}

// transferBar is the progress bar of DESIGN.md §7.2: shown on a terminal,
// without -q or --json, once a transfer has run for a second.
type transferBar struct {
	a       *app
	desc    string
	total   int64
	start   time.Time
	enabled bool
	bar     *progressbar.ProgressBar
}

func (a *app) newBar(desc string, total int64) *transferBar {
	f, isFile := a.stderr.(*os.File)
	on := isFile && term.IsTerminal(int(f.Fd())) && !a.opts.quiet && !a.opts.json
	return &transferBar{a: a, desc: desc, total: total, start: time.Now(), enabled: on}
}

func (b *transferBar) set(done int64) {
	if b == nil || !b.enabled {
		return
	}
	if b.bar == nil {
		if time.Since(b.start) < time.Second || done >= b.total {
			return
		}
		b.bar = progressbar.NewOptions64(b.total,
			progressbar.OptionSetWriter(b.a.stderr),
			progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	_ = b.bar.Set64(done)
}

func (b *transferBar) finish() {
	if b != nil && b.bar != nil {
		_ = b.bar.Finish()
	}
}

// fileNotice tells the person something on stderr, unless -q or --json.
func (a *app) fileNotice(format string, args ...any) {
	if !a.opts.quiet && !a.opts.json {
		fmt.Fprintf(a.stderr, "vcli: "+format+"\n", args...)
	}
}
