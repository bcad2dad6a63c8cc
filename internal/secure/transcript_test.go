package secure

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func TestTranscriptPrologue(t *testing.T) {
	signOn := []byte("\x83bOKx\x12vserv 0.1.0 readyx 66687aadf862bd776c8fc18b8e9f8e20")
	akey := []byte("\x81dakey")
	hh := bytes.Repeat([]byte{7}, 32)

	sum := func(parts ...[]byte) []byte {
		h := sha256.Sum256(bytes.Join(parts, nil))
		return append([]byte("vserv-v1"), h[:]...)
	}
	tests := []struct {
		name string
		t    *Transcript
		msgs [][]byte
		want []byte
	}{
		{"empty", NewTranscript(), nil, sum()},
		{"sign-on", NewTranscript(), [][]byte{signOn},
			sum([]byte{0, 0, 0, byte(len(signOn))}, signOn)},
		{"sign-on and akey", NewTranscript(), [][]byte{signOn, akey},
			sum([]byte{0, 0, 0, byte(len(signOn))}, signOn, []byte{0, 0, 0, byte(len(akey))}, akey)},
		{"empty message counts", NewTranscript(), [][]byte{{}},
			sum([]byte{0, 0, 0, 0})},
		{"inside a session", NewSessionTranscript(hh), [][]byte{akey},
			sum(hh, []byte{0, 0, 0, byte(len(akey))}, akey)},
	}
	for _, tt := range tests {
		for _, m := range tt.msgs {
			tt.t.Add(m)
		}
		got := tt.t.Prologue()
		if !bytes.Equal(got, tt.want) || len(got) != 40 {
			t.Errorf("%s: prologue %x, want %x", tt.name, got, tt.want)
		}
		if again := tt.t.Prologue(); !bytes.Equal(again, got) {
			t.Errorf("%s: Prologue is not repeatable", tt.name)
		}
	}
}

func TestTranscriptSplitsMessagesUnambiguously(t *testing.T) {
	a, b := NewTranscript(), NewTranscript()
	a.Add([]byte("ab"))
	a.Add([]byte("c"))
	b.Add([]byte("a"))
	b.Add([]byte("bc"))
	if bytes.Equal(a.Prologue(), b.Prologue()) {
		t.Error("different message boundaries gave the same prologue")
	}
}
