package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vserv/vserv/internal/wire"
)

// Fuzz targets of the two parsers that see untrusted bytes first. The seed
// corpora are in testdata/fuzz/<Name>/, so `go test` runs them every time;
// `make fuzz` explores further.

// fuzzMaxMsg is a small message limit, so the fuzzer reaches it.
const fuzzMaxMsg = 256

// modelRead is an independent reading of DESIGN.md §2.1: it returns the next
// message at data[*pos:] and how the read ends.
func modelRead(data []byte, pos *int, maxMsg int) ([]byte, outcome) {
	msg := []byte{}
	for frags := 0; ; frags++ {
		if frags == wire.MaxFragments {
			return nil, framing // a 1025th fragment is refused before it is read
		}
		rest := data[*pos:]
		switch {
		case len(rest) == 0 && frags == 0:
			return nil, cleanEOF
		case len(rest) < 4:
			return nil, truncated
		}
		n := int(binary.BigEndian.Uint32(rest))
		*pos += 4
		if n == 0 || n > wire.MaxFrame {
			return nil, framing
		}
		if len(rest)-4 < n {
			return nil, truncated
		}
		body := rest[4 : 4+n]
		*pos += n
		flag, frag := body[0], body[1:]
		if flag > 1 || (flag == 1 && len(frag) == 0) || len(msg)+len(frag) > maxMsg {
			return nil, framing
		}
		msg = append(msg, frag...)
		if flag == 0 {
			return msg, ok
		}
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c := wire.NewConn(newByteConn(data), fuzzMaxMsg)
		pos := 0
		for i := 0; ; i++ {
			got, err := c.ReadMessage(time.Time{})
			want, end := modelRead(data, &pos, fuzzMaxMsg)
			if len(got) > fuzzMaxMsg {
				t.Fatalf("message %d is %d bytes, over the %d-byte limit", i, len(got), fuzzMaxMsg)
			}
			if o := classify(err); o != end {
				t.Fatalf("message %d: err %v (outcome %d), model says outcome %d", i, err, o, end)
			}
			if end != ok {
				return
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d = %x, model says %x", i, got, want)
			}
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := wire.DecodeRequest(data)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeProto || req != nil {
				t.Fatalf("DecodeRequest(%x) = %v, %v; want nil and ERR proto", data, req, err)
			}
			return
		}
		if !utf8.ValidString(req.Cmd) {
			t.Fatalf("accepted a command name that is not UTF-8: %q", req.Cmd)
		}
		// Every accessor either yields a value or refuses with ERR proto.
		for i := 0; i <= req.NArgs(); i++ {
			for _, e := range []error{
				func() error { _, err := req.Text(i, "a"); return err }(),
				func() error { _, err := req.Bytes(i, "a"); return err }(),
				func() error { _, err := req.Uint(i, "a"); return err }(),
			} {
				if e != nil && !errors.Is(e, wire.ErrProto) {
					t.Fatalf("argument %d: %v, want nil or ERR proto", i, e)
				}
			}
			req.IsNull(i)
		}
		// An accepted request re-encodes, and the re-encoding decodes to
		// the same command and the same argument bytes.
		args := make([]any, req.NArgs())
		for i, a := range req.Args {
			args[i] = a
		}
		again, err := wire.EncodeRequest(req.Cmd, args...)
		if err != nil {
			t.Fatalf("re-encode %q with %d args from %x: %v", req.Cmd, len(args), data, err)
		}
		back, err := wire.DecodeRequest(again)
		if err != nil {
			t.Fatalf("decode the re-encoding %x of %x: %v", again, data, err)
		}
		if back.Cmd != req.Cmd || back.NArgs() != req.NArgs() {
			t.Fatalf("re-encoding changed %q/%d into %q/%d", req.Cmd, req.NArgs(), back.Cmd, back.NArgs())
		}
		for i := range req.Args {
			if !bytes.Equal(back.Args[i], req.Args[i]) {
				t.Fatalf("re-encoding changed argument %d from %x to %x", i, req.Args[i], back.Args[i])
			}
		}
	})
}
