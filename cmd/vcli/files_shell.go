package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/vserv/vserv/client"
)

// shellTransfer runs put and get in the shell, on the shell's connection, so
// that they follow its working directory. fput and fget typed as protocol
// commands would leave their data streams unread: they are pointed here.
func (a *app) shellTransfer(ctx context.Context, c *client.Client, words []word, out io.Writer) (bool, error) {
	cmd := words[0].text
	if cmd == "fput" || cmd == "fget" {
		fmt.Fprintf(out, "error: %s streams data; in the shell use put LOCAL [REMOTE] or get REMOTE [LOCAL]\r\n", cmd)
		return false, nil
	}
	if len(words) < 2 || len(words) > 3 {
		fmt.Fprintf(out, "usage: put LOCAL [REMOTE] | get REMOTE [LOCAL]\r\n")
		return false, nil
	}
	src := words[1].text
	var err error
	var line string
	if cmd == "put" {
		dst := filepath.Base(src)
		if len(words) == 3 {
			dst = words[2].text
		}
		var at int64
		if at, err = c.UploadFile(ctx, src, dst, nil); err == nil {
			line = fmt.Sprintf("put %s -> %s", src, dst)
			if at > 0 {
				line += fmt.Sprintf(" (resumed at %d)", at)
			}
		}
	} else {
		dst := path.Base(src)
		if len(words) == 3 {
			dst = words[2].text
		}
		var n int64
		if n, err = a.shellGet(ctx, c, src, dst); err == nil {
			line = fmt.Sprintf("got %s -> %s (%d bytes)", src, dst, n)
		}
	}
	if err != nil {
		if isERR(err) {
			fmt.Fprintf(out, "ERR %s\r\n", errText(err))
			return false, err
		}
		fmt.Fprintf(out, "error: %v\r\n", err)
		// A local failure before the transfer leaves the connection usable;
		// one during it closes the connection, and the shell must end.
		return !c.Usable(), nil
	}
	fmt.Fprintf(out, "%s\r\n", line)
	return false, nil
}

// shellGet downloads into a temporary file renamed into place once checked;
// it never replaces an existing file.
func (a *app) shellGet(ctx context.Context, c *client.Client, remote, local string) (int64, error) {
	if _, err := os.Lstat(local); err == nil {
		return 0, fmt.Errorf("%s exists; remove it first", local)
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".vcli-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := c.Download(ctx, remote, tmp, nil)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), local)
}
