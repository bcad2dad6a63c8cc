package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

// fileFlags are the options every `vcli file` subcommand shares.
type fileFlags struct {
	as string
}

func (f *fileFlags) opts() *client.FileOptions { return &client.FileOptions{As: f.as} }

func (a *app) fileCmd() *cobra.Command {
	var ff fileFlags
	file := &cobra.Command{
		Use:   "file",
		Short: "Files in your private home on the server: put, get, ls, lsd, cd, pwd, stat, mkdir, rmdir, del, partial",
		Long: `vcli file moves files between this machine and your private home on the server,
over the encrypted session. Remote paths are relative to the home; nothing
outside it can be named.

Every vcli command is one connection, and the working directory that cd sets
lasts for one connection: "vcli file cd PATH" only checks PATH and prints the
directory it leads to. In "vcli shell", cd (and put/get) keep it.

Admins act in another account's home with --as USER.`,
	}
	file.PersistentFlags().StringVar(&ff.as, "as", "", "act in USER's home (admins only)")
	file.AddCommand(a.filePutCmd(&ff), a.fileGetCmd(&ff), a.fileListCmd(&ff, "ls"), a.fileListCmd(&ff, "lsd"),
		a.fileCdCmd(&ff), a.filePwdCmd(&ff), a.fileStatCmd(&ff),
		a.filePathCmd(&ff, "mkdir", "Create a directory (its parent must exist)", "created directory", (*client.Client).Mkdir),
		a.filePathCmd(&ff, "rmdir", "Remove an empty directory", "removed directory", (*client.Client).Rmdir),
		a.filePathCmd(&ff, "del", "Delete a file", "deleted", (*client.Client).DeleteFile),
		a.filePartialCmd(&ff))
	return file
}

func (a *app) fileListCmd(ff *fileFlags, name string) *cobra.Command {
	short := "List a directory (default: the top of the home)"
	if name == "lsd" {
		short = "List only the subdirectories of a directory"
	}
	return &cobra.Command{
		Use:   name + " [PATH]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := ""
			if len(args) == 1 {
				p = args[0]
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				list := c.ListFiles
				if name == "lsd" {
					list = c.ListDirs
				}
				infos, err := list(cmd.Context(), p, ff.opts())
				if err != nil {
					return err
				}
				if a.opts.json {
					if infos == nil {
						infos = []client.FileInfo{}
					}
					a.printJSON(map[string]any{"ok": true, "path": p, "entries": infos})
					return nil
				}
				width := 1
				for _, fi := range infos {
					width = max(width, len(strconv.FormatInt(fi.Size, 10)))
				}
				for _, fi := range infos {
					fmt.Fprintf(a.stdout, "%*d  %s  %s\n", width, fi.Size, mtimeText(fi.MtimeMs), displayName(fi))
				}
				return nil
			})
		},
	}
}

func displayName(fi client.FileInfo) string {
	if fi.Dir {
		return fi.Name + "/"
	}
	return fi.Name
}

func mtimeText(ms uint64) string {
	return time.UnixMilli(int64(ms)).Local().Format("2006-01-02 15:04:05")
}

// cwdText shows a working directory the way a person reads it: "/" for the
// top of the home.
func cwdText(cwd string) string { return "/" + cwd }

func (a *app) fileCdCmd(ff *fileFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cd PATH",
		Short: "Check a directory and print where it leads (the working directory lasts one connection; see vcli shell)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				cwd, err := c.Cd(cmd.Context(), args[0], ff.opts())
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "cwd": cwd}, cwdText(cwd))
				return nil
			})
		},
	}
}

func (a *app) filePwdCmd(ff *fileFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pwd",
		Short: "Print the working directory (always the top of the home, in a new connection)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				cwd, err := c.Pwd(cmd.Context(), ff.opts())
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "cwd": cwd}, cwdText(cwd))
				return nil
			})
		},
	}
}

func (a *app) fileStatCmd(ff *fileFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stat PATH",
		Short: "Describe a file or directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				fi, err := c.Stat(cmd.Context(), args[0], ff.opts())
				if err != nil {
					return err
				}
				kind := "file"
				if fi.Dir {
					kind = "directory"
				}
				a.print(map[string]any{"ok": true, "name": fi.Name, "size": fi.Size, "mtime": fi.MtimeMs, "dir": fi.Dir},
					fmt.Sprintf("%s: %s, %d bytes, modified %s", displayName(*fi), kind, fi.Size, mtimeText(fi.MtimeMs)))
				return nil
			})
		},
	}
}

func (a *app) filePathCmd(ff *fileFlags, name, short, done string, op func(*client.Client, context.Context, string, *client.FileOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " PATH",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				if err := op(c, cmd.Context(), args[0], ff.opts()); err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "path": args[0]}, done+" "+args[0])
				return nil
			})
		},
	}
}

// transferred is one file a put or get moved, as --json reports it.
type transferred struct {
	Local     string `json:"local"`
	Remote    string `json:"remote"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`
	ResumedAt int64  `json:"resumed_at,omitempty"`
}

func (a *app) reportTransfers(verb string, moved []transferred) {
	if a.opts.json {
		if moved == nil {
			moved = []transferred{}
		}
		a.printJSON(map[string]any{"ok": true, "files": moved})
		return
	}
	for _, m := range moved {
		from, to := m.Local, m.Remote
		if verb == "got" {
			from, to = m.Remote, m.Local
		}
		line := fmt.Sprintf("%s %s -> %s (%d bytes", verb, from, to, m.Size)
		if m.ResumedAt > 0 {
			line += fmt.Sprintf(", resumed at %d", m.ResumedAt)
		}
		fmt.Fprintln(a.stdout, line+")")
	}
}

// remoteJoin joins remote path parts with "/", whatever this machine uses.
func remoteJoin(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return path.Join(dir, name)
}

func hexSum(b []byte) string { return hex.EncodeToString(b) }
