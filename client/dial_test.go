package client

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

// A refused connection names the address once, in short words, and still
// unwraps to the system's error.
func TestDialRefusedSaysSoOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = Dial(context.Background(), addr, Options{})
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a closed port: %v (%T), want a *DialError wrapping ECONNREFUSED", err, err)
	}
	if want := "connect to " + addr + ": connection refused"; err.Error() != want {
		t.Errorf("Dial to a closed port says %q, want %q", err, want)
	}
}
