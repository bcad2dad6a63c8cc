package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Limits of DESIGN.md §2.1.
const (
	MaxFrame            = 65535    // largest frame body
	CipherOverhead      = 16       // AES-GCM tag added to every encrypted frame body
	MaxFragments        = 1024     // fragments in one message
	DefaultMaxMsg       = 16 << 20 // default and largest message size
	flagLast       byte = 0x00
	flagMore       byte = 0x01
)

// Cipher encrypts and decrypts frame bodies once a session is established.
// Seal and Open append to dst; in-place use (dst = src[:0]) must work. Any Open
// failure is fatal for the connection.
type Cipher interface {
	Seal(dst, plaintext []byte) ([]byte, error)
	Open(dst, ciphertext []byte) ([]byte, error)
}

// A FramingError means the peer broke the framing rules; the connection must
// be closed, because the stream can no longer be trusted to be in sync.
//
// Limit marks a message refused for its size or because the read budget is
// spent (SetReadLimit): the peer may not have broken a rule of the framing,
// but the rest of the message is never read either, and a server tells the
// client with ERR limit before closing.
type FramingError struct {
	Reason string
	Limit  bool
}

func (e *FramingError) Error() string { return "framing: " + e.Reason }

// readBufferSize is what each connection keeps for reading: enough for a
// typical request and its frame header in one system call, small enough that
// 1,000 idle sessions cost 4 MB. Larger frames bypass it.
const readBufferSize = 4096

// framePool holds frame-sized buffers so that an idle connection owns only its
// 4-byte header buffer (DESIGN.md §10, "Memory").
var framePool = sync.Pool{New: func() any { b := make([]byte, 4+MaxFrame); return &b }}

// Conn reads and writes messages as frames on a stream. Reads and writes may
// proceed concurrently with each other, but not with themselves.
type Conn struct {
	nc     net.Conn
	br     *bufio.Reader // small: header and body of a short frame in one read
	maxMsg int           // the limit given to NewConn
	limit  int           // the limit of the next messages (SetReadLimit)
	budget *Budget       // charged with what partly read messages hold
	hdr    [4]byte

	rmu     sync.Mutex
	rcipher Cipher
	wmu     sync.Mutex
	wcipher Cipher
}

// readerPool recycles the read buffers of connections that called Release:
// a server makes one per connection, and short connections (one handshake)
// would otherwise allocate 4 KiB each.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// NewConn wraps nc. maxMsg bounds the size of messages read (0 = DefaultMaxMsg).
func NewConn(nc net.Conn, maxMsg int) *Conn {
	if maxMsg <= 0 || maxMsg > DefaultMaxMsg {
		maxMsg = DefaultMaxMsg
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(nc)
	return &Conn{nc: nc, br: br, maxMsg: maxMsg, limit: maxMsg}
}

// SetReadLimit applies to the messages read from now on: each may hold at
// most maxMsg bytes (0, or more than NewConn's limit, means NewConn's
// limit), and the bytes a message holds while it is partly received, beyond
// the connection's own 4 KiB read buffer, are taken from b (nil: no
// budget). A message over the limit, or one that finds b spent, ends the
// read with a *FramingError whose Limit is set, decided at the frame header
// before its body is read.
func (c *Conn) SetReadLimit(maxMsg int, b *Budget) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if maxMsg <= 0 || maxMsg > c.maxMsg {
		maxMsg = c.maxMsg
	}
	c.limit, c.budget = maxMsg, b
}

// Release gives the read buffer back for reuse by another Conn. Call it at
// most once, when nothing reads from c any more (typically after closing
// it); a later ReadMessage fails with net.ErrClosed. Not calling it is fine:
// the buffer is then garbage collected with c.
func (c *Conn) Release() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.br = nil
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// SetCipher switches both directions to c; nil switches back to clear text
// (only useful in tests). The caller orders this with its reads and writes.
func (c *Conn) SetCipher(ci Cipher) {
	c.rmu.Lock()
	c.rcipher = ci
	c.rmu.Unlock()
	c.wmu.Lock()
	c.wcipher = ci
	c.wmu.Unlock()
}

// Encrypted reports whether a cipher is installed.
func (c *Conn) Encrypted() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wcipher != nil
}

// ReadMessage reads one complete message. deadline, if non-zero, bounds the
// time until the whole message has arrived. A returned error is fatal.
//
// Memory: a frame that fits the connection's read buffer is decrypted where
// it lies there; larger frames and the message being assembled are charged
// to the read budget before they are allocated, and the message grows as
// fragments arrive, never from a size the peer claims.
func (c *Conn) ReadMessage(deadline time.Time) ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.br == nil {
		return nil, net.ErrClosed
	}
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	overhead := 1 // the flag byte
	if c.rcipher != nil {
		overhead += CipherOverhead
	}
	var msg []byte
	var held int64 // taken from c.budget
	defer func() { c.budget.Give(held) }()
	take := func(n int) error {
		if !c.budget.Take(int64(n)) {
			return &FramingError{Reason: "the server's budget for partly received messages is spent", Limit: true}
		}
		held += int64(n)
		return nil
	}
	for frag := 0; ; frag++ {
		if frag == MaxFragments {
			return nil, &FramingError{Reason: fmt.Sprintf("more than %d fragments", MaxFragments)}
		}
		if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
			if frag == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, midMessage(err)
		}
		n := int(binary.BigEndian.Uint32(c.hdr[:]))
		// Checked before anything is allocated or read: a 4 GiB
		// announcement costs nothing, and neither does a fragment that
		// would take the message over its limit.
		if n == 0 || n > MaxFrame {
			return nil, &FramingError{Reason: fmt.Sprintf("frame length %d out of range [1, %d]", n, MaxFrame)}
		}
		if len(msg)+n-overhead > c.limit {
			return nil, &FramingError{Reason: fmt.Sprintf("message over %d bytes", c.limit), Limit: true}
		}
		var body []byte
		var bp *[]byte
		var frameHeld int64 // the part of held that is this frame's buffer
		switch {
		case n <= readBufferSize:
			// Decrypted in place in the read buffer and copied out below,
			// before the next read: a connection that stalls inside a
			// small frame holds no other buffer.
			var err error
			if body, err = c.br.Peek(n); err != nil {
				return nil, midMessage(err)
			}
		case frag == 0:
			// A large first frame gets a buffer of its own: when it is the
			// whole message, the plaintext is returned as it is, which
			// saves a 64 KiB copy per file chunk.
			if err := take(n); err != nil {
				return nil, err
			}
			frameHeld = int64(n)
			body = make([]byte, n)
		default:
			bp = framePool.Get().(*[]byte)
			if err := take(cap(*bp)); err != nil {
				framePool.Put(bp)
				return nil, err
			}
			frameHeld = int64(cap(*bp))
			body = (*bp)[:n]
		}
		flag, fragment, err := c.readFrame(body, bp == nil && n <= readBufferSize)
		if err == nil {
			switch {
			case n > readBufferSize && bp == nil && flag == flagLast:
				return fragment, nil
			case msg == nil && flag == flagLast:
				msg = append(make([]byte, 0, len(fragment)), fragment...)
			default:
				if msg, err = c.grow(msg, len(fragment), take); err == nil {
					msg = append(msg, fragment...)
				}
			}
		}
		if n <= readBufferSize {
			_, _ = c.br.Discard(n)
		}
		if bp != nil {
			framePool.Put(bp)
		}
		// The frame's buffer is copied into msg (or pooled) now.
		c.budget.Give(frameHeld)
		held -= frameHeld
		if err != nil {
			return nil, err
		}
		if flag == flagLast {
			return msg, nil
		}
	}
}

// grow makes room for more bytes in msg, doubling its capacity up to the
// read limit, and charges the new capacity with take before allocating it.
func (c *Conn) grow(msg []byte, more int, take func(int) error) ([]byte, error) {
	need := len(msg) + more
	if need <= cap(msg) {
		return msg, nil
	}
	size := max(2*cap(msg), need, readBufferSize)
	size = min(size, max(c.limit, need))
	if err := take(size - cap(msg)); err != nil {
		return nil, err
	}
	return append(make([]byte, 0, size), msg...), nil
}

// readFrame reads one frame body of len(body) bytes into body (unless
// peeked, when body already holds it), decrypts it in place and checks the
// flag byte. fragment aliases body.
func (c *Conn) readFrame(body []byte, peeked bool) (flag byte, fragment []byte, err error) {
	if !peeked {
		if _, err := io.ReadFull(c.br, body); err != nil {
			return 0, nil, midMessage(err)
		}
	}
	p := body
	if c.rcipher != nil {
		if p, err = c.rcipher.Open(body[:0], body); err != nil {
			return 0, nil, fmt.Errorf("decrypt frame: %w", err)
		}
	}
	if len(p) == 0 {
		return 0, nil, &FramingError{Reason: "frame without flag byte"}
	}
	flag, fragment = p[0], p[1:]
	if flag != flagLast && flag != flagMore {
		return 0, nil, &FramingError{Reason: fmt.Sprintf("bad fragment flag 0x%02x", flag)}
	}
	if flag == flagMore && len(fragment) == 0 {
		return 0, nil, &FramingError{Reason: "empty non-final fragment"}
	}
	return flag, fragment, nil
}

// midMessage reports a stream that ended inside a message as
// io.ErrUnexpectedEOF: only an end between messages is a clean io.EOF.
func midMessage(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteMessage writes msg as one or more frames. deadline, if non-zero, bounds
// the write. A returned error is fatal.
func (c *Conn) WriteMessage(msg []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(deadline); err != nil {
		return err
	}
	maxPlain := MaxFrame
	if c.wcipher != nil {
		maxPlain -= CipherOverhead
	}
	maxFrag := maxPlain - 1
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	buf := *bp
	for first := true; first || len(msg) > 0; first = false {
		frag := msg
		flag := flagLast
		if len(frag) > maxFrag {
			frag, flag = frag[:maxFrag], flagMore
		}
		msg = msg[len(frag):]
		buf[4] = flag
		copy(buf[5:], frag)
		body := buf[4 : 5+len(frag)]
		if c.wcipher != nil {
			var err error
			if body, err = c.wcipher.Seal(body[:0], body); err != nil {
				return fmt.Errorf("encrypt frame: %w", err)
			}
		}
		binary.BigEndian.PutUint32(buf[:4], uint32(len(body)))
		if _, err := c.nc.Write(buf[:4+len(body)]); err != nil {
			return err
		}
	}
	return nil
}

// WriteRaw writes bytes as they are; tests use it to send broken frames.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}
