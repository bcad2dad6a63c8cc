package server

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/vserv/vserv/internal/wire"
)

func TestGuardTurnsAPanicIntoERRInternalAndClosesOnlyThatConnection(t *testing.T) {
	c := &conn{log: slog.New(slog.DiscardHandler)}
	r, err := c.guard("boom", func() (*reply, error) { panic("handler bug") })
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeInternal {
		t.Fatalf("err = %v, want ERR internal", err)
	}
	if r == nil || !r.close {
		t.Errorf("reply = %+v, want the connection closed after the answer", r)
	}
	r, err = c.guard("fine", func() (*reply, error) { return ok("x") })
	if err != nil || r == nil || len(r.vals) != 1 {
		t.Errorf("guard of a normal handler = %+v, %v; want its reply unchanged", r, err)
	}
}
