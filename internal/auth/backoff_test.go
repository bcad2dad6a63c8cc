package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestBackoffRuleDelays(t *testing.T) {
	tests := []struct {
		rule backoffRule
		n    int
		want time.Duration
	}{
		{pairRule, 1, 0},
		{pairRule, 3, 0},
		{pairRule, 4, 100 * time.Millisecond},
		{pairRule, 5, 200 * time.Millisecond},
		{pairRule, 9, 3200 * time.Millisecond},
		{pairRule, 10, 5 * time.Second},
		{pairRule, 1000, 5 * time.Second},
		{addrRule, 20, 0},
		{addrRule, 21, 100 * time.Millisecond},
		{addrRule, 30, 30 * time.Second},
		{addrRule, 100, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.rule.delay(tt.n); got != tt.want {
			t.Errorf("delay(%d) with free=%d = %v, want %v", tt.n, tt.rule.free, got, tt.want)
		}
	}
}

// 100 wrong passwords for alice from A: alice from B is not delayed at all,
// and bob from A only by the capped per-address delay.
func TestBackoffIsolation(t *testing.T) {
	clock := newTestClock(time.Unix(1_900_000_000, 0))
	b := NewBackoff(clock.Now)
	const ipA, ipB = "192.0.2.1", "198.51.100.7"
	for i := range 100 {
		if i < 3 {
			if err := b.Check("alice", ipA); err != nil {
				t.Fatalf("attempt %d refused before any delay: %v", i+1, err)
			}
		}
		b.Fail("alice", ipA)
	}
	wantAuthFailed(t, "alice from A right after 100 failures", b.Check("alice", ipA))
	wantAuthFailed(t, "bob from A right after 100 failures", b.Check("bob", ipA))
	if err := b.Check("alice", ipB); err != nil {
		t.Fatalf("alice from B: %v, want no delay", err)
	}
	if err := b.Check("ALICE", ipB); err != nil {
		t.Fatalf("ALICE from B: %v, want no delay", err)
	}
	clock.Advance(addrRule.max - time.Millisecond)
	wantAuthFailed(t, "bob from A just before the per-address cap", b.Check("bob", ipA))
	clock.Advance(time.Millisecond)
	if err := b.Check("bob", ipA); err != nil {
		t.Fatalf("bob from A after %v: %v", addrRule.max, err)
	}
	if err := b.Check("alice", ipA); err != nil {
		t.Fatalf("alice from A after %v: %v", addrRule.max, err)
	}
}

func TestBackoffPerPairCapAndSucceed(t *testing.T) {
	clock := newTestClock(time.Unix(1_900_000_000, 0))
	b := NewBackoff(clock.Now)
	for range 12 {
		b.Fail("alice", "192.0.2.1")
	}
	wantAuthFailed(t, "after 12 failures", b.Check("alice", "192.0.2.1"))
	clock.Advance(pairRule.max)
	if err := b.Check("alice", "192.0.2.1"); err != nil {
		t.Fatalf("after the %v cap: %v", pairRule.max, err)
	}
	b.Succeed("alice", "192.0.2.1")
	b.Fail("alice", "192.0.2.1")
	if err := b.Check("alice", "192.0.2.1"); err != nil {
		t.Fatalf("first failure after a success is delayed: %v", err)
	}
}

func TestBackoffIPv6CountsAsSlash64(t *testing.T) {
	clock := newTestClock(time.Unix(1_900_000_000, 0))
	b := NewBackoff(clock.Now)
	for i := range 30 {
		b.Fail(fmt.Sprintf("user%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	wantAuthFailed(t, "another host in the same /64", b.Check("newuser", "[2001:db8:1:2:ffff::1]:4711"))
	if err := b.Check("newuser", "2001:db8:1:3::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	tests := map[string]string{
		"2001:db8:1:2:aaaa::1":    "2001:db8:1:2::/64",
		"[2001:db8::1%eth0]:6666": "2001:db8::/64",
		"::ffff:192.0.2.9":        "192.0.2.9",
		"192.0.2.9:6666":          "192.0.2.9",
		"not an address":          "not an address",
		"fe80::1%eth0":            "fe80::/64",
	}
	for in, want := range tests {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoffForgetsAndIsBounded(t *testing.T) {
	clock := newTestClock(time.Unix(1_900_000_000, 0))
	b := NewBackoff(clock.Now)
	b.pairs = newBackoffTable(pairRule, 8)
	for i := range 20 {
		b.Fail(fmt.Sprintf("u%d", i), "192.0.2.1")
	}
	if n := b.pairs.len(); n != 8 {
		t.Fatalf("pair table holds %d entries, want the limit 8", n)
	}
	for range 10 {
		b.Fail("alice", "192.0.2.2")
	}
	clock.Advance(pairRule.forget + time.Second)
	b.Fail("alice", "192.0.2.2") // counts as the first failure again
	if err := b.Check("alice", "192.0.2.2"); err != nil {
		t.Fatalf("failure after a long quiet period is delayed: %v", err)
	}
}
