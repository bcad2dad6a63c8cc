package wire_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// limitOutcome reads one message and tells how it ended: "ok", "limit" (a
// FramingError with Limit set), "framing", or "other".
func limitOutcome(msg []byte, err error, want []byte) string {
	var fe *wire.FramingError
	switch {
	case err == nil && bytes.Equal(msg, want):
		return "ok"
	case err == nil:
		return "wrong message"
	case errors.As(err, &fe) && fe.Limit:
		return "limit"
	case errors.As(err, &fe):
		return "framing"
	}
	return "other: " + err.Error()
}

// sealedFrame is one frame whose body tagCipher seals.
func sealedFrame(flag byte, fragment []byte) []byte {
	b, _ := tagCipher{}.Seal(nil, append([]byte{flag}, fragment...))
	return cat(hdr(uint32(len(b))), b)
}

func TestSetReadLimitRefusesAtTheHeader(t *testing.T) {
	const limit = 4096
	m := bytes.Repeat([]byte{'x'}, 3*limit)
	for _, tc := range []struct {
		name      string
		in        []byte
		encrypted bool
		want      string
	}{
		{"exactly the limit in one frame", fr(0, m[:limit]), false, "ok"},
		{"one byte over in one frame", fr(0, m[:limit+1]), false, "limit"},
		{"exactly the limit fragmented", fragments(m[:limit], 7), false, "ok"},
		{"one byte over fragmented", fragments(m[:limit+1], 7), false, "limit"},
		{"exactly the limit encrypted", sealedFrame(0, m[:limit]), true, "ok"},
		{"one byte over encrypted", sealedFrame(0, m[:limit+1]), true, "limit"},
		// Only the header arrives: a limit error, not a truncated read,
		// proves that the body was never waited for.
		{"over-limit header alone", hdr(limit + 2), false, "limit"},
		{"over-limit header after a fragment", cat(fr(1, m[:limit-10]), hdr(12)), false, "limit"},
		{"largest frame header alone", hdr(wire.MaxFrame), false, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wire.NewConn(newByteConn(tc.in), 0)
			if tc.encrypted {
				c.SetCipher(tagCipher{})
			}
			c.SetReadLimit(limit, nil)
			msg, err := c.ReadMessage(time.Time{})
			if got := limitOutcome(msg, err, m[:limit]); got != tc.want {
				t.Fatalf("read %d bytes, err %v: %s, want %s", len(msg), err, got, tc.want)
			}
		})
	}
}

func TestSetReadLimitCannotRaiseTheConnectionsLimit(t *testing.T) {
	c := wire.NewConn(newByteConn(fr(0, make([]byte, 2000))), 1024)
	c.SetReadLimit(1<<20, nil)
	if _, err := c.ReadMessage(time.Time{}); limitOutcome(nil, err, nil) != "limit" {
		t.Fatalf("a 2,000-byte message under NewConn's 1,024 and SetReadLimit's 1 MiB: err %v, want a limit error", err)
	}
}

func TestReadBudget(t *testing.T) {
	big := bytes.Repeat([]byte{'b'}, 200<<10)
	for _, tc := range []struct {
		name   string
		in     []byte
		budget int64
		want   string
	}{
		{"small message needs no budget", fr(0, big[:100]), 0, "ok"},
		{"small fragments need what they assemble", fragments(big[:3000], 3), 0, "limit"},
		{"one large frame within budget", fr(0, big[:60000]), 60001, "ok"},
		{"one large frame over budget", fr(0, big[:60000]), 60000, "limit"},
		{"fragmented message within budget", cat(fr(1, big[:65000]), fr(1, big[:65000]), fr(0, big[:65000])), 1 << 20, "ok"},
		{"fragmented message over budget", cat(fr(1, big[:65000]), fr(1, big[:65000]), fr(0, big[:65000])), 128 << 10, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := wire.NewBudget(tc.budget)
			c := wire.NewConn(newByteConn(tc.in), 0)
			c.SetReadLimit(0, b)
			msg, err := c.ReadMessage(time.Time{})
			want := big[:len(msg)]
			if got := limitOutcome(msg, err, want); got != tc.want {
				t.Fatalf("read %d bytes, err %v: %s, want %s", len(msg), err, got, tc.want)
			}
			if b.Free() != tc.budget {
				t.Fatalf("after the read the budget has %d bytes free, want all %d back", b.Free(), tc.budget)
			}
		})
	}
}

func TestBudgetShareDrawsOnItsParent(t *testing.T) {
	total := wire.NewBudget(100)
	anon := total.Share(30)
	for _, step := range []struct {
		what       string
		do         func() bool
		want       bool
		anonFree   int64
		parentFree int64
	}{
		{"share takes its size", func() bool { return anon.Take(30) }, true, 0, 70},
		{"spent share refuses a byte", func() bool { return anon.Take(1) }, false, 0, 70},
		{"parent grants the rest", func() bool { return total.Take(70) }, true, 0, 0},
		{"share gives back", func() bool { anon.Give(30); return true }, true, 30, 30},
		{"parent takes what the share gave", func() bool { return total.Take(30) }, true, 30, 0},
		{"share with room refuses when the parent is spent", func() bool { return anon.Take(1) }, false, 30, 0},
		{"nil budget grants anything", func() bool { var b *wire.Budget; return b.Take(1 << 40) }, true, 30, 0},
	} {
		if got := step.do(); got != step.want {
			t.Fatalf("%s: got %v, want %v", step.what, got, step.want)
		}
		if anon.Free() != step.anonFree || total.Free() != step.parentFree {
			t.Fatalf("%s: free %d (share) and %d (parent), want %d and %d", step.what, anon.Free(), total.Free(), step.anonFree, step.parentFree)
		}
	}
}
