//go:build unix

package files

import (
	"io/fs"
	"syscall"
)

// openNonblock is added to the flags of a download's open: a FIFO planted in
// a home must not hang the connection in open (it is refused right after, as
// not a regular file). It does not affect regular files.
const openNonblock = syscall.O_NONBLOCK

// inode is the file's inode number, part of the hash cache's key: an upload
// replaces a file by rename, so new content always comes with a new inode.
func inode(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Ino)
	}
	return 0
}
