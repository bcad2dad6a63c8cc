package bolt

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder guesses which process holds a lock on path from /proc/locks
// (fields: "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END"), matching
// the inode only. It returns 0 when it cannot tell. The answer is a hint for
// the operator's error message, never a decision.
func lockHolder(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	want := ":" + strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// A blocked waiter is listed as "N: -> FLOCK ..."; skip it.
		if len(fields) < 6 || fields[1] == "->" || !strings.HasSuffix(fields[5], want) {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid != os.Getpid() {
			return pid
		}
	}
	return 0
}
