//go:build !unix

package files

import "io/fs"

// openNonblock is 0 where the file system has no FIFOs a download could hang
// on (Windows: named pipes live outside it).
const openNonblock = 0

// inode is 0 where os.FileInfo carries no file identity (Windows). The hash
// cache then keys on path, size and mtime only: a replaced file is still told
// apart by its new mtime, which a rename into place always brings.
func inode(fs.FileInfo) int64 { return 0 }
