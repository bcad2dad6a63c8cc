package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/testenv"
)

// runVserv runs the vserv binary to its end (at most 30 s) and returns its
// stdout, stderr and exit status.
func runVserv(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Bin(t, "vserv"), args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "GORACE=atexit_sleep_ms=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("vserv %v did not exit within 30 s; stderr:\n%s", args, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run vserv: %v", err)
	}
	return out.String(), errb.String(), code
}

// TestVservThatCannotOpenItsDataDirectoryNeverSaysListening pins that
// "listening on" means the server will serve: a second vserv on a data
// directory in use, or one whose key file others may read, exits 1 with
// one reason and without ever printing the line a script waits for.
func TestVservThatCannotOpenItsDataDirectoryNeverSaysListening(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string) (want string)
	}{
		{"database held by a running vserv", func(t *testing.T, dir string) string {
			first := testenv.Start(t, testenv.WithDataRoot(dir))
			return fmt.Sprintf("the data directory is in use by another vserv (pid %d?)", first.Pid())
		}},
		{"identity key readable by others", func(t *testing.T, dir string) string {
			chmod(t, filepath.Join(dir, "identity.key"), 0o644)
			return "identity.key has mode 0644"
		}},
		{"secret key readable by group", func(t *testing.T, dir string) string {
			chmod(t, filepath.Join(dir, "secret.key"), 0o640)
			return "secret.key is accessible to group or others"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			// A first start makes the data directory with all its files.
			if err := testenv.Start(t, testenv.WithDataRoot(dir)).Stop(); err != nil {
				t.Fatalf("first server: %v", err)
			}
			want := tc.prepare(t, dir)
			start := time.Now()
			_, stderr, code := runVserv(t, "-p", "0", "-r", dir, "--test-kdf")
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			if strings.Contains(stderr, "listening on") {
				t.Errorf("stderr says \"listening on\" though the server exited:\n%s", stderr)
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %v to give up, want about 1 s", d)
			}
		})
	}
}

// TestVservFirstStderrLineIsListeningThenLogRecords pins the order on a
// first start, where opening the data directory logs records (a created
// identity) before the server can serve: the line comes first, the records
// right after it.
func TestVservFirstStderrLineIsListeningThenLogRecords(t *testing.T) {
	srv := testenv.Start(t) // fails unless the first line is "listening on"
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	lines := strings.Split(srv.Stderr(), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "listening on 127.0.0.1:") {
		t.Fatalf("stderr does not start with the listening line:\n%s", srv.Stderr())
	}
	rest := strings.Join(lines[1:], "\n")
	if !strings.Contains(rest, `msg="created server identity"`) || !strings.Contains(rest, "msg=serving") {
		t.Errorf("the start-up log records do not follow the listening line:\n%s", srv.Stderr())
	}
	if strings.Contains(rest, "web panel") {
		t.Errorf("a start without --http logs about the web panel:\n%s", srv.Stderr())
	}
}

// TestVservHTTPServesTheWitnessEndpoint: --http serves POST
// /witness/add-checkpoint; a log it does not witness is 404 and another
// method 405, with the endpoint's own bodies.
func TestVservHTTPServesTheWitnessEndpoint(t *testing.T) {
	srv := testenv.Start(t, testenv.WithHTTP())
	url := "http://" + srv.HTTPAddr + "/witness/add-checkpoint"
	body := "old 0\n\nexample.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAAAAAA\n"
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || string(got) != "unknown log origin\n" {
		t.Errorf("POST for an unknown log: %d %q, want 404 \"unknown log origin\\n\"", resp.StatusCode, got)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if !strings.Contains(srv.Stderr(), "witness_vkey=vserv/") {
		t.Errorf("the start log does not give the witness's vkey:\n%s", srv.Stderr())
	}
}

// TestVservHTTPBusyGivenAddressExitsOne: an --http address the operator gave
// must bind; a busy one stops the start with status 1.
func TestVservHTTPBusyGivenAddressExitsOne(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, stderr, code := runVserv(t, "-p", "0", "-r", filepath.Join(t.TempDir(), "data"), "--test-kdf", "--http", busy.Addr().String())
	if code != 1 || !strings.Contains(stderr, "listen --http "+busy.Addr().String()) {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and the busy address named", code, stderr)
	}
	if strings.Contains(stderr, "listening on") {
		t.Errorf("said \"listening on\" though it exits:\n%s", stderr)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
