package main

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// A long peer gets a line of its own and does not widen the PEER column.
func TestPeerTableKeepsLongPeersOutOfTheColumn(t *testing.T) {
	tb := newPeerTable("PEER", "ROLE", "SIZE")
	tb.add("b:1", "mirror", "3")
	tb.add("https://witness.example.com/a/long/prefix/witness", "witness", "0")
	tb.add("ünïcode:2", "home", "12")
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "PEER       ROLE     SIZE\n" +
		"b:1        mirror   3\n" +
		"https://witness.example.com/a/long/prefix/witness\n" +
		"           witness  0\n" +
		"ünïcode:2  home     12\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWitnessKeyForms(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)).Public().(ed25519.PublicKey)
	key := secure.PublicKeyText(pub)
	if !strings.HasSuffix(key, "=") {
		t.Fatalf("key %q has no padding: the test needs one", key)
	}
	id := verify.ServerIDFromKey(pub)
	other := strings.Repeat("ab", 16)
	a := &app{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}
	for _, tc := range []struct {
		in, name string
	}{
		{key, "vserv/" + id},
		{other + ":" + key, "vserv/" + other},
		{"example.com/w=" + key, "example.com/w"},
		{"vserv/" + other + "=" + key, "vserv/" + other},
		{"a:b=" + key, "a:b"},
	} {
		wk, err := a.witnessKey(tc.in)
		if err != nil || wk.KeyName() != tc.name || !bytes.Equal(wk.Key, pub) {
			t.Errorf("witnessKey(%q) = %+v (name %q), %v; want name %q", tc.in, wk, wk.KeyName(), err, tc.name)
		}
	}
	for _, bad := range []string{"", "=" + key, "a b=" + key, "a+b=" + key, "w=", "w=notakey", "a\tb=" + key} {
		if _, err := a.witnessKey(bad); err == nil {
			t.Errorf("witnessKey(%q) accepted", bad)
		}
	}
}
