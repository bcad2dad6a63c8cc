package main

import (
	"bytes"
	"io"
	"sync"
)

// maxHeld bounds what heldWriter keeps: opening a data directory logs a few
// lines, and the log file has them all anyway.
const maxHeld = 64 << 10

// heldWriter keeps what is written to it (the log records of the start) until
// release, so that "listening on HOST:PORT" can be the first line on stderr
// and still be written only once the server will serve (docs/operations.md,
// "Starting").
type heldWriter struct {
	mu      sync.Mutex
	w       io.Writer
	held    bool
	buf     bytes.Buffer
	dropped bool
}

func newHeldWriter(w io.Writer) *heldWriter { return &heldWriter{w: w, held: true} }

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		return h.w.Write(p)
	}
	if h.buf.Len()+len(p) > maxHeld {
		h.dropped = true
		return len(p), nil
	}
	return h.buf.Write(p)
}

// release writes first (if any), then what was held, and from then on
// passes writes straight through.
func (h *heldWriter) release(first string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		return
	}
	h.held = false
	_, _ = io.WriteString(h.w, first)
	_, _ = h.w.Write(h.buf.Bytes())
	if h.dropped {
		_, _ = io.WriteString(h.w, "(more start-up log records are in the log file)\n")
	}
	h.buf = bytes.Buffer{}
}
