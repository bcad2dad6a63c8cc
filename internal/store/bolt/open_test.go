package bolt_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/store/bolt"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenDBOfADirectoryInUseIsErrDataRootInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := bolt.OpenDB(path, time.Second)
	if err != nil {
		t.Fatalf("first open: %v", err)
	}
	defer db.Close()
	if runtime.GOOS != "windows" {
		if m := fileMode(t, path); m != 0o600 {
			t.Errorf("ledger.db mode %04o, want 0600", m)
		}
	}
	start := time.Now()
	second, err := bolt.OpenDB(path, 100*time.Millisecond)
	if err == nil {
		second.Close()
		t.Fatal("second open of a held database succeeded, want ErrDataRootInUse")
	}
	if !errors.Is(err, bolt.ErrDataRootInUse) || !strings.Contains(err.Error(), "stop it, or work on a copy") {
		t.Errorf("second open: %v, want ErrDataRootInUse saying what to do", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("second open took %s, want it to give up after its timeout", el)
	}
	db.Close()
	again, err := bolt.OpenDB(path, time.Second)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	again.Close()
}
