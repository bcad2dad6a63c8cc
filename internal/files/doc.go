// Package files is the per-account file service of DESIGN.md §3.3: each
// account has a private home under <dataroot>/files/<lowercase name>/, and
// every path a client names is resolved inside that home through [os.Root].
//
// Containment is the kernel's job, not a string comparison: a home is an
// [os.Root], so a symbolic link that leads outside it, `..` past its top or an
// absolute path can never reach another account's files or the host's. This
// package adds only the lexical rules the design states on top (which ERR code
// each mistake gets) and never compares path prefixes.
//
// Error codes, as the server sends them (all *wire.Error):
//
//   - invalid: a name that is empty, not UTF-8, contains NUL or has a
//     component over 255 bytes; also an operation on the wrong kind of entry
//     (cd to a file, del of a directory, upload onto a directory), a bad size,
//     hash or offset, and a hash mismatch at the end of an upload.
//   - perm: an absolute path, `..` past the top of the home, a symbolic link
//     that leads outside it, a name starting with ".vserv-upload-" (the
//     upload temporary files, which are hidden), and rmdir of the home itself.
//   - notfound: a missing file or directory (or a path through a file).
//   - exists: upload or mkdir onto an existing name without force, and rmdir
//     of a directory that is not empty (POSIX rmdir may say EEXIST too).
//   - conflict: an upload whose temporary file another upload is writing
//     (same path, size and hash at the same time).
//   - limit: a quota would be exceeded.
//   - state: Write or Finish on an upload that has already ended.
//
// Any other error is an I/O fault wrapped with context; the server answers
// it as ERR internal.
//
// Durability: an upload's data is fsynced before its rename into place, and
// the directory is fsynced after it, so an acknowledged upload survives a
// crash; a file never appears half-written under its own name.
package files
