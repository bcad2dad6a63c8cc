package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/datadir"
	"github.com/vserv/vserv/internal/wire"
)

// uini is accepted only from a loopback address (DESIGN.md §3.2). The
// integration test in security_test.go sends it over a veth pair between
// network namespaces; this one walks the address forms one by one through
// the handler and through remoteAddr, which normalises what Accept returns.

// lbAddrConn is a net.Conn whose only job is to report a remote address.
type lbAddrConn struct {
	net.Conn
	remote net.Addr
}

func (c lbAddrConn) RemoteAddr() net.Addr { return c.remote }

func TestRemoteAddrUnmapsIPv4(t *testing.T) {
	for _, tc := range []struct {
		ip       net.IP
		want     string
		loopback bool
	}{
		{net.ParseIP("127.0.0.1"), "127.0.0.1", true}, // 16-byte form, as Accept gives it
		{net.IPv4(127, 0, 0, 1).To4(), "127.0.0.1", true},
		{net.ParseIP("::ffff:127.0.0.2"), "127.0.0.2", true},
		{net.ParseIP("::1"), "::1", true},
		{net.ParseIP("10.99.0.2"), "10.99.0.2", false},
		{net.ParseIP("::ffff:10.99.0.2"), "10.99.0.2", false},
		{net.ParseIP("fe80::1"), "fe80::1", false},
	} {
		got := remoteAddr(lbAddrConn{remote: &net.TCPAddr{IP: tc.ip, Port: 4242}})
		if got.String() != tc.want || got.IsLoopback() != tc.loopback {
			t.Errorf("remoteAddr(%v) = %v (loopback %v), want %s (loopback %v)", tc.ip, got, got.IsLoopback(), tc.want, tc.loopback)
		}
	}
	if got := remoteAddr(lbAddrConn{remote: &net.UnixAddr{Name: "x", Net: "unix"}}); got.IsValid() || got.IsLoopback() {
		t.Errorf("remoteAddr of a non-TCP address = %v, want the invalid address, which is not loopback", got)
	}
}

func TestUiniChecksTheAddressBeforeAnythingElse(t *testing.T) {
	dir := t.TempDir()
	s := newTestServer(t, dir, Config{})
	raw, err := os.ReadFile(filepath.Join(dir, datadir.SetupTokenFile))
	if err != nil {
		t.Fatalf("read setup token: %v", err)
	}
	token := strings.TrimSpace(string(raw))
	uini := func(addr netip.Addr, name string) error {
		msg, err := wire.EncodeRequest("uini", name, "admin-password", token)
		if err != nil {
			t.Fatal(err)
		}
		req, err := wire.DecodeRequest(msg)
		if err != nil {
			t.Fatal(err)
		}
		c := &conn{srv: s, addr: addr, log: s.log, state: stateSession}
		_, err = cmdUini(context.Background(), c, req)
		return err
	}
	for _, a := range []string{"10.99.0.2", "192.0.2.7", "0.0.0.0", "::", "fe80::1", "2001:db8::1", "::ffff:10.99.0.2"} {
		// The right token and a valid name: only the address is wrong.
		if err := uini(netip.MustParseAddr(a), "admin"); !errors.Is(err, wire.ErrPerm) {
			t.Errorf("uini from %s: err = %v, want ERR perm", a, err)
		}
	}
	if err := uini(netip.Addr{}, "admin"); !errors.Is(err, wire.ErrPerm) {
		t.Errorf("uini from an unknown address: err = %v, want ERR perm", err)
	}
	if n, err := s.accounts.Count(t.Context()); err != nil || n != 0 {
		t.Fatalf("accounts after refused uini: %d, %v; want none", n, err)
	}
	// From loopback addresses the request gets past the address check: a
	// bad name is the next thing refused, and the token is still there.
	for _, a := range []string{"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"} {
		if err := uini(netip.MustParseAddr(a), ".."); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("uini of a bad name from %s: err = %v, want ERR invalid (past the address check)", a, err)
		}
	}
	if err := uini(netip.MustParseAddr("127.0.0.1"), "admin"); err != nil {
		t.Fatalf("uini from 127.0.0.1: %v", err)
	}
	if n, err := s.accounts.Count(t.Context()); err != nil || n != 1 {
		t.Fatalf("accounts after uini: %d, %v; want 1", n, err)
	}
}
