//go:build !linux

package files

// startWriteback does nothing where there is no sync_file_range(2) (macOS,
// Windows, the BSDs): the data is still made durable by Finish's fsync, which
// then has the whole file to write instead of only the tail.
func (u *Upload) startWriteback() { u.flushed = u.next }
