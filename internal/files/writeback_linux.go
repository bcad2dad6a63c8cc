package files

import "golang.org/x/sys/unix"

// startWriteback starts (without waiting for) writing the data since the last
// call to disk. It is only a hint: Finish's fsync is what makes data durable,
// so a failure here is ignored.
func (u *Upload) startWriteback() {
	from, n := u.flushed, u.next-u.flushed
	u.flushed = u.next
	if rc, err := u.f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.SyncFileRange(int(fd), from, n, unix.SYNC_FILE_RANGE_WRITE)
		})
	}
}
