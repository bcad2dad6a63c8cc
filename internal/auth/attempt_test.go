package auth

import (
	"testing"
	"time"

	"github.com/vserv/vserv/internal/wire"
)

func TestBeginRefusesAnotherStepOfTheSameAddressInFlight(t *testing.T) {
	b := NewBackoff(newTestClock(time.Unix(1_900_000_000, 0)).Now)
	a, err := b.Begin("alice", "192.0.2.1")
	if err != nil {
		t.Fatalf("first step: %v", err)
	}
	tests := []struct {
		account, ip string
		refused     bool
	}{
		{"alice", "192.0.2.1", true},
		{"bob", "192.0.2.1", true},          // same address, other account
		{"alice", "198.51.100.7", false},    // other address
		{"alice", "2001:db8::1", false},     // other address
		{"carol", "2001:db8::2", true},      // same /64 as the one just begun
		{"alice", "::ffff:192.0.2.1", true}, // IPv4-mapped form of the first
	}
	var held []*Attempt
	for _, tt := range tests {
		got, err := b.Begin(tt.account, tt.ip)
		if tt.refused {
			wantAuthFailed(t, tt.account+" from "+tt.ip+" while a step is in flight", err)
			continue
		}
		if err != nil {
			t.Fatalf("%s from %s: %v, want a step of its own", tt.account, tt.ip, err)
		}
		held = append(held, got)
	}
	if n := b.InFlight(); n != 3 {
		t.Fatalf("InFlight = %d, want 3", n)
	}
	for _, h := range held {
		h.Cancel()
	}
	a.Fail()
	if _, err := b.Begin("bob", "192.0.2.1"); err != nil {
		t.Fatalf("after the first step ended: %v", err)
	}
}

func TestBeginCountsTheStepAsAFailureUntilItPasses(t *testing.T) {
	tests := []struct {
		name      string
		end       func(*Attempt)
		wantPairs int // failures left on (alice, A)
		wantAddrs int
	}{
		{"fail", (*Attempt).Fail, 1, 1},
		{"end with ERR auth", func(a *Attempt) { a.End(authFailed()) }, 1, 1},
		{"end with ERR limit", func(a *Attempt) { a.End(wire.Errorf(wire.CodeLimit, "full")) }, 0, 0},
		{"cancel", (*Attempt).Cancel, 0, 0},
		{"succeed", (*Attempt).Succeed, 0, 0},
		{"end with nil", func(a *Attempt) { a.End(nil) }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackoff(newTestClock(time.Unix(1_900_000_000, 0)).Now)
			a, err := b.Begin("alice", "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			// While in flight, the step is already counted.
			if got := b.pairs.snapshot(pairKey("alice", "192.0.2.1")).failures; got != 1 {
				t.Fatalf("in flight: pair failures = %d, want 1", got)
			}
			tt.end(a)
			tt.end(a) // a second end changes nothing
			if got := b.pairs.snapshot(pairKey("alice", "192.0.2.1")).failures; got != tt.wantPairs {
				t.Errorf("pair failures = %d, want %d", got, tt.wantPairs)
			}
			if got := b.addrs.snapshot("192.0.2.1").failures; got != tt.wantAddrs {
				t.Errorf("address failures = %d, want %d", got, tt.wantAddrs)
			}
			if b.InFlight() != 0 {
				t.Error("the address is still in flight")
			}
		})
	}
}

func TestPassedKeepsEarlierFailuresOfThePair(t *testing.T) {
	clock := newTestClock(time.Unix(1_900_000_000, 0))
	b := NewBackoff(clock.Now)
	for range 2 {
		a, err := b.Begin("alice", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		a.Fail()
	}
	a, err := b.Begin("alice", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	a.Passed()
	if got := b.pairs.snapshot(pairKey("alice", "192.0.2.1")).failures; got != 2 {
		t.Fatalf("after a passed step, pair failures = %d, want the 2 before it", got)
	}
}
