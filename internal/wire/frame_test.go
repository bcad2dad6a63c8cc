package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

// byteConn is a net.Conn that reads a fixed byte string and records writes;
// deadlines are accepted and ignored.
type byteConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func newByteConn(in []byte) *byteConn { return &byteConn{r: bytes.NewReader(in)} }

func (c *byteConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *byteConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// fr builds one frame from a flag and a fragment.
func fr(flag byte, fragment []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(1+len(fragment)))
	return append(append(out, flag), fragment...)
}

// hdr is a bare 4-byte frame header.
func hdr(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fragments splits msg into n fragments (the last flagged final).
func fragments(msg []byte, n int) []byte {
	var out []byte
	for i := range n - 1 {
		out = append(out, fr(0x01, msg[i:i+1])...)
	}
	return append(out, fr(0x00, msg[n-1:])...)
}

// outcome is how a read ends.
type outcome int

const (
	ok        outcome = iota
	framing           // *wire.FramingError: the peer broke the rules
	cleanEOF          // io.EOF before any byte of a message
	truncated         // the stream ended inside a message
)

func classify(err error) outcome {
	var fe *wire.FramingError
	switch {
	case err == nil:
		return ok
	case errors.As(err, &fe):
		return framing
	case err == io.EOF:
		return cleanEOF
	}
	return truncated
}

func TestReadMessage(t *testing.T) {
	big := bytes.Repeat([]byte{'m'}, 5000)
	for _, tc := range []struct {
		name   string
		in     []byte
		maxMsg int
		want   [][]byte // messages read before the end
		end    outcome
	}{
		{"one frame", fr(0, []byte("abc")), 0, [][]byte{[]byte("abc")}, cleanEOF},
		{"two messages", cat(fr(0, []byte("a")), fr(0, []byte("b"))), 0, [][]byte{[]byte("a"), []byte("b")}, cleanEOF},
		{"three fragments", cat(fr(1, []byte("a")), fr(1, []byte("b")), fr(0, []byte("c"))), 0, [][]byte{[]byte("abc")}, cleanEOF},
		{"empty last fragment", cat(fr(1, []byte("ab")), fr(0, nil)), 0, [][]byte{[]byte("ab")}, cleanEOF},
		{"empty message", fr(0, nil), 0, [][]byte{{}}, cleanEOF},
		{"largest frame", fr(0, make([]byte, wire.MaxFrame-1)), 0, [][]byte{make([]byte, wire.MaxFrame-1)}, cleanEOF},
		{"1024 fragments", fragments(big, 1024), 0, [][]byte{big}, cleanEOF},
		{"exactly the limit", fragments(big[:4096], 3), 4096, [][]byte{big[:4096]}, cleanEOF},
		{"nothing", nil, 0, nil, cleanEOF},

		{"length 0", hdr(0), 0, nil, framing},
		{"length 65536", hdr(65536), 0, nil, framing},
		{"length 4 GiB", hdr(0xFFFFFFFF), 0, nil, framing},
		{"length 4 GiB after a message", cat(fr(0, []byte("a")), hdr(0xFFFFFFFF)), 0, [][]byte{[]byte("a")}, framing},
		{"flag 0x02", fr(2, []byte("a")), 0, nil, framing},
		{"flag 0x80", fr(0x80, []byte("a")), 0, nil, framing},
		{"empty non-final fragment", fr(1, nil), 0, nil, framing},
		{"empty non-final after data", cat(fr(1, []byte("a")), fr(1, nil), fr(0, []byte("b"))), 0, nil, framing},
		{"1025 fragments", fragments(big, 1025), 0, nil, framing},
		{"one byte over the limit", fragments(big[:4097], 3), 4096, nil, framing},
		{"over the limit in one frame", fr(0, big[:4097]), 4096, nil, framing},

		{"half a header", []byte{0, 0}, 0, nil, truncated},
		{"header without body", hdr(5), 0, nil, truncated},
		{"short body", cat(hdr(5), []byte{0, 'a'}), 0, nil, truncated},
		{"no last fragment", fr(1, []byte("a")), 0, nil, truncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wire.NewConn(newByteConn(tc.in), tc.maxMsg)
			for i, want := range tc.want {
				got, err := c.ReadMessage(time.Time{})
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(got, want) || got == nil {
					t.Fatalf("message %d = %d bytes %q, want %d bytes", i, len(got), truncateBytes(got), len(want))
				}
			}
			got, err := c.ReadMessage(time.Time{})
			if o := classify(err); o != tc.end || got != nil {
				t.Fatalf("after %d messages: %d bytes, err %v (outcome %d), want outcome %d", len(tc.want), len(got), err, o, tc.end)
			}
		})
	}
}

func truncateBytes(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

func TestDefaultLimitIs16MiB(t *testing.T) {
	for _, maxMsg := range []int{0, -1, wire.DefaultMaxMsg + 1} {
		msg := make([]byte, wire.DefaultMaxMsg+1)
		var in []byte
		for len(msg) > 0 {
			n := min(len(msg), wire.MaxFrame-1)
			flag := byte(1)
			if n == len(msg) {
				flag = 0
			}
			in = append(in, fr(flag, msg[:n])...)
			msg = msg[n:]
		}
		_, err := wire.NewConn(newByteConn(in), maxMsg).ReadMessage(time.Time{})
		if classify(err) != framing {
			t.Errorf("maxMsg %d: a 16 MiB + 1 message: err %v, want a framing error", maxMsg, err)
		}
	}
}

func TestHugeFrameHeaderAllocatesNothing(t *testing.T) {
	const runs = 100
	conns := make([]*wire.Conn, runs)
	for i := range conns {
		conns[i] = wire.NewConn(newByteConn(hdr(0xFFFFFFFF)), 0)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range conns {
		if _, err := c.ReadMessage(time.Time{}); classify(err) != framing {
			t.Fatalf("err %v, want a framing error", err)
		}
	}
	runtime.ReadMemStats(&after)
	// The error costs a few hundred bytes; a frame buffer would be 64 KiB.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1024 {
		t.Errorf("a 4 GiB frame header costs %d bytes of allocation, want next to none", per)
	}
}

// tagCipher is a stand-in for the session cipher: it XORs with 0x5a and
// appends a 16-byte tag of the plaintext's checksum, so tampering is seen.
type tagCipher struct{ failOpen bool }

func (tagCipher) sum(b []byte) byte {
	var s byte
	for _, x := range b {
		s += x
	}
	return s
}

func (c tagCipher) Seal(dst, plaintext []byte) ([]byte, error) {
	s := c.sum(plaintext)
	out := dst
	for _, b := range plaintext {
		out = append(out, b^0x5a)
	}
	return append(out, bytes.Repeat([]byte{s}, wire.CipherOverhead)...), nil
}

func (c tagCipher) Open(dst, ciphertext []byte) ([]byte, error) {
	if c.failOpen || len(ciphertext) < wire.CipherOverhead {
		return nil, errors.New("open: authentication failed")
	}
	body, tag := ciphertext[:len(ciphertext)-wire.CipherOverhead], ciphertext[len(ciphertext)-wire.CipherOverhead]
	out := dst
	for _, b := range body {
		out = append(out, b^0x5a)
	}
	if c.sum(out[len(dst):]) != tag {
		return nil, errors.New("open: authentication failed")
	}
	return out, nil
}

// frames splits a written stream into frame bodies.
func frames(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(stream) > 0 {
		if len(stream) < 4 {
			t.Fatalf("stream ends inside a header")
		}
		n := binary.BigEndian.Uint32(stream)
		if n == 0 || n > wire.MaxFrame || int(n) > len(stream)-4 {
			t.Fatalf("frame length %d (%d bytes left)", n, len(stream)-4)
		}
		out = append(out, stream[4:4+n])
		stream = stream[4+n:]
	}
	return out
}

func TestWriteMessageFragments(t *testing.T) {
	const clearFrag, sealedFrag = wire.MaxFrame - 1, wire.MaxFrame - wire.CipherOverhead - 1
	for _, tc := range []struct {
		size   int
		cipher bool
		frames int
	}{
		{0, false, 1},
		{1, false, 1},
		{clearFrag, false, 1},
		{clearFrag + 1, false, 2},
		{3*clearFrag + 7, false, 4},
		{0, true, 1},
		{sealedFrag, true, 1},
		{sealedFrag + 1, true, 2},
		{5 << 20, true, (5<<20)/sealedFrag + 1},
	} {
		msg := make([]byte, tc.size)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		conn := newByteConn(nil)
		w := wire.NewConn(conn, 0)
		if tc.cipher {
			w.SetCipher(tagCipher{})
		}
		if err := w.WriteMessage(msg, time.Time{}); err != nil {
			t.Fatalf("size %d: write: %v", tc.size, err)
		}
		stream := bytes.Clone(conn.w.Bytes())
		bodies := frames(t, stream)
		if len(bodies) != tc.frames {
			t.Errorf("size %d (cipher %v): %d frames, want %d", tc.size, tc.cipher, len(bodies), tc.frames)
		}
		if !tc.cipher {
			for i, b := range bodies {
				last := i == len(bodies)-1
				if (b[0] == 0) != last || (!last && len(b) == 1) {
					t.Errorf("size %d: frame %d flag %#x (%d bytes), want 0x01 on every non-empty fragment but the last", tc.size, i, b[0], len(b))
				}
			}
		}
		r := wire.NewConn(newByteConn(stream), 0)
		if tc.cipher {
			r.SetCipher(tagCipher{})
		}
		got, err := r.ReadMessage(time.Time{})
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("size %d (cipher %v): read back %d bytes, %v", tc.size, tc.cipher, len(got), err)
		}
	}
}

func TestEncryptedFrameFailures(t *testing.T) {
	sealed := func(plain []byte) []byte {
		b, _ := tagCipher{}.Seal(nil, plain)
		return cat(hdr(uint32(len(b))), b)
	}
	good := sealed(append([]byte{0}, "msg"...))
	flipped := bytes.Clone(good)
	flipped[6] ^= 0x01
	for _, tc := range []struct {
		name   string
		in     []byte
		cipher tagCipher
		end    outcome
	}{
		{"good", good, tagCipher{}, cleanEOF},
		{"flipped byte", flipped, tagCipher{}, truncated}, // a decryption error: fatal, not framing
		{"open fails", good, tagCipher{failOpen: true}, truncated},
		{"no flag byte inside", sealed(nil), tagCipher{}, framing},
		{"bad flag inside", sealed([]byte{7, 'x'}), tagCipher{}, framing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wire.NewConn(newByteConn(tc.in), 0)
			c.SetCipher(tc.cipher)
			msg, err := c.ReadMessage(time.Time{})
			if tc.end == cleanEOF {
				if err != nil || string(msg) != "msg" {
					t.Fatalf("read %q, %v; want \"msg\"", msg, err)
				}
				_, err = c.ReadMessage(time.Time{})
			}
			if o := classify(err); o != tc.end {
				t.Fatalf("err %v (outcome %d), want outcome %d", err, o, tc.end)
			}
		})
	}
}

func TestReadMessageDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := wire.NewConn(a, 0)
	start := time.Now()
	_, err := c.ReadMessage(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read with nothing coming: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout after %v, want about 50 ms", d)
	}
}

func TestWriteRawSendsBytesAsTheyAre(t *testing.T) {
	conn := newByteConn(nil)
	c := wire.NewConn(conn, 0)
	c.SetCipher(tagCipher{})
	raw := []byte{0xde, 0xad, 0xbe, 0xef}
	if err := c.WriteRaw(raw); err != nil || !bytes.Equal(conn.w.Bytes(), raw) {
		t.Fatalf("WriteRaw wrote %x, %v; want %x", conn.w.Bytes(), err, raw)
	}
	if !c.Encrypted() {
		t.Fatalf("Encrypted() = false with a cipher installed")
	}
	c.SetCipher(nil)
	if c.Encrypted() {
		t.Fatalf("Encrypted() = true after SetCipher(nil)")
	}
}
