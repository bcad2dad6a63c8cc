package testenv

import (
	"errors"
	"testing"

	"github.com/vserv/vserv/internal/wire"
)

// WantCode fails the test unless err is an ERR reply (a *wire.Error, also
// when wrapped) with the given code, and returns it so that the caller can
// check its text or extra values. With code "" it wants err to be nil and
// returns nil. what names the call in the failure message (the line is
// there anyway when it is ""), which shows the error and code actually
// received.
func WantCode(t testing.TB, err error, code wire.Code, what string) *wire.Error {
	t.Helper()
	if what == "" {
		what = "the call"
	}
	var we *wire.Error
	switch {
	case code == "" && err != nil:
		t.Fatalf("%s: err = %v, want success", what, err)
	case code == "":
		return nil
	case err == nil:
		t.Fatalf("%s: succeeded, want ERR %s", what, code)
	case !errors.As(err, &we):
		t.Fatalf("%s: err = %v (not an ERR reply), want ERR %s", what, err, code)
	case we.Code != code:
		t.Fatalf("%s: ERR %s %q, want ERR %s", what, we.Code, we.Text, code)
	}
	return we
}
