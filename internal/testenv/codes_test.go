package testenv

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/wire"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// wantCodeOutcome runs WantCode on a recorder and returns what it returned
// and the failure message ("" when it passed).
func wantCodeOutcome(t *testing.T, err error, code wire.Code) (*wire.Error, string) {
	r := &fatalRecorder{TB: t}
	var got *wire.Error
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = WantCode(r, err, code, "rget")
	}()
	<-done
	return got, r.msg
}

func TestWantCodeFailsShowingWhatCameInstead(t *testing.T) {
	notFound := &wire.Error{Code: wire.CodeNotFound, Text: "no such chain"}
	for _, tc := range []struct {
		name    string
		err     error
		code    wire.Code
		wantMsg string // "" = passes
	}{
		{"the code wanted", notFound, wire.CodeNotFound, ""},
		{"the code wanted, wrapped", fmt.Errorf("rget: %w", notFound), wire.CodeNotFound, ""},
		{"success wanted and got", nil, "", ""},
		{"another code", notFound, wire.CodePerm, `rget: ERR notfound "no such chain", want ERR perm`},
		{"success instead of an ERR", nil, wire.CodePerm, "rget: succeeded, want ERR perm"},
		{"a transport error", errors.New("connection reset"), wire.CodePerm, "rget: err = connection reset (not an ERR reply), want ERR perm"},
		{"an ERR when success is wanted", notFound, "", "rget: err = ERR notfound: no such chain, want success"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := wantCodeOutcome(t, tc.err, tc.code)
			if tc.wantMsg == "" {
				if msg != "" {
					t.Fatalf("WantCode failed with %q, want it to pass", msg)
				}
				if tc.code != "" && got != notFound {
					t.Fatalf("WantCode returned %v, want the ERR reply itself", got)
				}
				return
			}
			if !strings.HasPrefix(msg, tc.wantMsg) {
				t.Fatalf("WantCode failed with %q, want %q", msg, tc.wantMsg)
			}
		})
	}
}
