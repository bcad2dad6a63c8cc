package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// When every pool key has gone stale and no refresh has replaced them (the
// refresh failing, say on a full disk), akey must answer ERR internal, not
// take the whole server down with a nil pointer.
func TestAkeyWithoutALivePoolKeyIsERRInternal(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s := newTestServer(t, t.TempDir(), Config{Now: now})
	msg, _ := wire.EncodeRequest("akey")
	req, err := wire.DecodeRequest(msg)
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{srv: s, log: s.log}
	if _, err := cmdAkey(context.Background(), c, req); err != nil {
		t.Fatalf("akey with a fresh pool: %v", err)
	}
	offset.Store(int64(48 * time.Hour))
	r, err := cmdAkey(context.Background(), c, req)
	if err == nil {
		t.Fatalf("akey with only stale pool keys answered %v, want an error", r)
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Code != wire.CodeInternal {
		t.Fatalf("akey with only stale pool keys: %v, want a server fault (ERR internal)", err)
	}
	if got := c.wireError(req, err); got.Code != wire.CodeInternal {
		t.Fatalf("the reply would be ERR %s, want ERR internal", got.Code)
	}
}
