package filecmd

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/wire"
)

// Transfers of DESIGN.md §3.3. fput and fget stream: after their first reply,
// data messages flow one way without individual answers, which is what lets
// one session move hundreds of MB/s. file + data is the answered variant, for
// a client that wants every offset acknowledged. An upload holds at most
// chunkQueue+2 messages in memory, a download one chunk.

// beginUpload decodes the arguments fput and file share and starts the upload.
func beginUpload(ctx context.Context, s *server.Session, req *wire.Request) (*files.Upload, int64, error) {
	fr, err := parseFileRequest(ctx, s, req, 3, 3, true)
	if err != nil {
		return nil, 0, err
	}
	p, err := fr.Text(0, "path")
	if err != nil {
		return nil, 0, err
	}
	size, err := fr.Uint(1, "size")
	if err != nil {
		return nil, 0, err
	}
	sum, err := fr.Bytes(2, "sha256")
	if err != nil {
		return nil, 0, err
	}
	if size > math.MaxInt64 {
		return nil, 0, wire.Errorf(wire.CodeInvalid, "size %d is too large", size)
	}
	// A new upload replaces one still open on this connection; the old one
	// keeps its temporary file, so it can still be resumed.
	stateOf(s).endUpload()
	return fr.home.BeginUpload(fr.cwd, p, int64(size), sum, fr.force, fr.backup)
}

// endUpload ends the upload in progress, keeping what it received so that the
// same upload can resume. Release calls it when the login or the
// connection ends, whatever the reason.
func (st *connState) endUpload() {
	if st.upload == nil {
		return
	}
	if err := st.upload.Abort(); err != nil {
		st.log.Error("keep interrupted upload", "err", err)
	}
	st.upload = nil
}

// checkChunk refuses what no upload accepts, before the upload sees it.
func checkChunk(offset uint64, data []byte) error {
	switch {
	case offset > math.MaxInt64:
		return wire.Errorf(wire.CodeInvalid, "offset %d is too large", offset)
	case len(data) > maxChunk:
		return wire.Errorf(wire.CodeLimit, "data of %d bytes; at most %d per message", len(data), maxChunk)
	}
	return nil
}

// writeData stores one chunk of the current `file` upload and, when it
// completes the declared size, puts the file in place. A wrong offset or
// length leaves the upload open (the client may resend); any other failure
// ends it.
func (st *connState) writeData(offset uint64, data []byte) (next int64, err error) {
	u := st.upload
	if u == nil {
		return 0, wire.Errorf(wire.CodeState, "no upload in progress: start one with file or fput")
	}
	if err := checkChunk(offset, data); err != nil {
		return u.Next(), err
	}
	next, err = u.Write(int64(offset), data)
	if err != nil {
		if !errors.Is(err, wire.ErrInvalid) {
			st.endUpload()
		}
		return next, err
	}
	if next == u.Size() {
		st.upload = nil // Finish ends the upload whatever it answers
		if err := u.Finish(); err != nil {
			return next, err
		}
	}
	return next, nil
}

func cmdFile(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	u, start, err := beginUpload(ctx, s, req)
	if err != nil {
		return nil, err
	}
	stateOf(s).upload = u
	return server.OK(uint64(start))
}

func cmdData(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	offset, err := req.Uint(0, "offset")
	if err != nil {
		return nil, err
	}
	data, err := req.Bytes(1, "bytes")
	if err != nil {
		return nil, err
	}
	next, err := stateOf(s).writeData(offset, data)
	if err != nil {
		return nil, err
	}
	return server.OK(uint64(next))
}

func cmdFput(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	u, start, err := beginUpload(ctx, s, req)
	if err != nil {
		return nil, err
	}
	stateOf(s).upload = u
	return server.StreamReply(func(context.Context) error { return receiveStream(s, start) }), nil
}

// dataRequest is one message read during an fput stream.
type dataRequest struct {
	isData bool   // a request named "data", well-formed or not
	offset uint64 // valid when err is nil
	data   []byte
	err    error // why a data request is malformed
}

// final reports whether d is the message that ends a stream of size bytes.
func (d dataRequest) final(size int64) bool {
	return d.isData && d.err == nil && d.offset <= uint64(size) && uint64(len(d.data)) == uint64(size)-d.offset
}

func parseDataRequest(msg []byte) dataRequest {
	if off, data, ok := wire.ParseData(msg); ok {
		return dataRequest{isData: true, offset: off, data: data}
	}
	req, err := wire.DecodeRequest(msg)
	if err != nil || req.Cmd != "data" {
		return dataRequest{}
	}
	d := dataRequest{isData: true}
	if d.err = req.Arity(2, 2); d.err != nil {
		return d
	}
	if d.offset, d.err = req.Uint(0, "offset"); d.err != nil {
		return d
	}
	d.data, d.err = req.Bytes(1, "bytes")
	return d
}

// receiveStream runs the data stream of an fput whose upload the session's
// connState holds:
// it answers the fput with the offset to start from, then reads data messages
// until the one that reaches the size, and answers that one with OK once the
// file is in place, or the first error it met. After an error it discards
// data messages until that last one. A request other than data ends the
// stream early: the upload keeps what it has (resumable) and the request is
// handed back to the connection loop (Session.Unread) to be answered normally. Every read counts for the idle
// timeout. Only a broken connection is returned as an error; the connection
// loop then ends and keeps the upload's temporary file for a resume.
//
// The chunks are written by a chunkWriter, so that reading and decrypting
// the next message overlaps writing and hashing this one. Mistakes in a
// message are answered at once; an I/O error the writer meets is answered at
// the next message, which is soon enough: a client reads the one answer of
// the stream after its last message.
func receiveStream(s *server.Session, start int64) error {
	st := stateOf(s)
	u := st.upload
	size := u.Size()
	first, _ := wire.EncodeOK(uint64(start))
	if err := s.WriteMessage(first); err != nil {
		return err
	}
	w := startChunkWriter(u)
	defer w.stop()
	next := start // where the next chunk must start; Upload.Write checks it again
	failed := false
	answerError := func(err error) error {
		w.stop()
		st.endUpload()
		failed = true
		return s.WriteError("fput", err)
	}
	for {
		msg, err := s.ReadMessage()
		if err != nil {
			return err
		}
		d := parseDataRequest(msg)
		if !d.isData {
			w.stop()
			st.endUpload()
			s.Unread(msg)
			return nil
		}
		final := d.final(size)
		if failed {
			if final {
				return nil
			}
			continue
		}
		err = d.err
		if err == nil {
			err = checkChunk(d.offset, d.data)
		}
		if err == nil {
			err = checkPlace(d.offset, len(d.data), next, size)
		}
		if err == nil {
			err = w.write(int64(d.offset), d.data)
			next += int64(len(d.data))
		}
		if err == nil && final {
			err = w.stop()
		}
		if err != nil {
			if werr := answerError(err); werr != nil || final {
				return werr
			}
			continue
		}
		if final {
			st.upload = nil // Finish ends the upload whatever it answers
			if err := u.Finish(); err != nil {
				return s.WriteError("fput", err)
			}
			done, _ := wire.EncodeOK()
			return s.WriteMessage(done)
		}
	}
}

// checkPlace refuses a chunk that does not start where the previous one
// ended or goes past the size, as Upload.Write would, so that the stream
// answers at once rather than when the writer gets to it.
func checkPlace(offset uint64, n int, next, size int64) error {
	switch {
	case offset != uint64(next):
		return wire.Errorf(wire.CodeInvalid, "data at offset %d, expected %d", offset, next)
	case int64(n) > size-next:
		return wire.Errorf(wire.CodeInvalid, "data of %d bytes at %d goes past the size %d", n, offset, size)
	}
	return nil
}

// chunkWriter writes an upload's chunks in order in its own goroutine. At
// most chunkQueue chunks wait for it, which bounds an upload's memory.
type chunkWriter struct {
	u        *files.Upload
	queue    chan chunk
	done     chan struct{}
	stopOnce sync.Once
	failed   atomic.Bool
	err      error // the first write error; read after done is closed or failed is set
}

type chunk struct {
	offset int64
	data   []byte
}

const chunkQueue = 4

func startChunkWriter(u *files.Upload) *chunkWriter {
	w := &chunkWriter{u: u, queue: make(chan chunk, chunkQueue), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *chunkWriter) run() {
	defer close(w.done)
	for ch := range w.queue {
		if w.err != nil {
			continue // drain, so that write never blocks after a failure
		}
		if _, err := w.u.Write(ch.offset, ch.data); err != nil {
			w.err = err
			w.failed.Store(true)
		}
	}
}

// write queues a chunk, or returns the error an earlier chunk met.
func (w *chunkWriter) write(offset int64, data []byte) error {
	if w.failed.Load() {
		return w.stop()
	}
	w.queue <- chunk{offset, data}
	return nil
}

// stop waits until every queued chunk is written and returns the first
// error. It may be called more than once.
func (w *chunkWriter) stop() error {
	w.stopOnce.Do(func() { close(w.queue) })
	<-w.done
	return w.err
}

func cmdFget(ctx context.Context, s *server.Session, req *wire.Request) (*server.Reply, error) {
	fr, err := parseFileRequest(ctx, s, req, 1, 2, false)
	if err != nil {
		return nil, err
	}
	p, err := fr.Text(0, "path")
	if err != nil {
		return nil, err
	}
	var offset uint64
	if fr.NArgs() == 2 {
		if offset, err = fr.Uint(1, "offset"); err != nil {
			return nil, err
		}
		if offset > math.MaxInt64 {
			return nil, wire.Errorf(wire.CodeInvalid, "offset %d is too large", offset)
		}
	}
	d, err := fr.home.OpenDownload(fr.cwd, p, int64(offset))
	if err != nil {
		return nil, err
	}
	return server.StreamReply(func(context.Context) error {
		defer d.Close()
		return sendStream(s, d)
	}), nil
}

// sendStream answers fget with the size and hash, then sends the file from
// the requested offset in data messages of the `buff` chunk size. Like an
// upload stream it always ends with the message that reaches the size: for
// nothing left to send that is one data message with an empty payload. If the file cannot be
// read to its end, an ERR message takes the place of the next data message
// and ends the stream. Each chunk is read straight into the buffer the
// message is built in.
func sendStream(s *server.Session, d *files.Download) error {
	first, err := wire.EncodeOK(uint64(d.Size()), d.SHA256())
	if err != nil {
		return err
	}
	if err := s.WriteMessage(first); err != nil {
		return err
	}
	buf := make([]byte, wire.DataHeaderRoom+stateOf(s).chunkSize())
	for {
		off, n, err := d.ReadChunk(buf[wire.DataHeaderRoom:])
		if err != nil && !errors.Is(err, io.EOF) {
			return s.WriteError("fget", err)
		}
		if err := s.WriteMessage(wire.DataMessage(buf, uint64(off), n)); err != nil {
			return err
		}
		if off+int64(n) == d.Size() {
			return nil
		}
	}
}
