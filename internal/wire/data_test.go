package wire

import (
	"bytes"
	"testing"
)

func TestDataMessageIsTheDeterministicEncoding(t *testing.T) {
	offsets := []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<63 - 1}
	sizes := []int{0, 1, 23, 24, 255, 256, 61440, 65535}
	for _, off := range offsets {
		for _, n := range sizes {
			payload := bytes.Repeat([]byte{byte(n)}, n)
			buf := make([]byte, DataHeaderRoom+n)
			copy(buf[DataHeaderRoom:], payload)
			got := DataMessage(buf, off, n)
			want, err := Marshal([]any{"data", off, payload})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("DataMessage(offset %d, %d bytes) = %x..., want %x...", off, n, got[:min(len(got), 24)], want[:min(len(want), 24)])
			}
			gotOff, gotPayload, ok := ParseData(want)
			if !ok || gotOff != off || !bytes.Equal(gotPayload, payload) {
				t.Fatalf("ParseData(offset %d, %d bytes) = %d, %d bytes, %v", off, n, gotOff, len(gotPayload), ok)
			}
		}
	}
}

func TestParseDataLeavesEverythingElseToTheDecoder(t *testing.T) {
	mk := func(v any) []byte {
		b, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := mk([]any{"data", uint64(300), []byte("abc")})
	cases := map[string][]byte{
		"other command":          mk([]any{"date", uint64(1), []byte("x")}),
		"text payload":           mk([]any{"data", uint64(1), "x"}),
		"negative offset":        mk([]any{"data", int64(-1), []byte("x")}),
		"four elements":          mk([]any{"data", uint64(1), []byte("x"), uint64(2)}),
		"two elements":           mk([]any{"data", uint64(1)}),
		"trailing byte":          append(bytes.Clone(good), 0),
		"short payload":          good[:len(good)-1],
		"non-minimal offset":     {0x83, 0x64, 'd', 'a', 't', 'a', 0x18, 0x05, 0x41, 'x'},
		"non-minimal length":     {0x83, 0x64, 'd', 'a', 't', 'a', 0x01, 0x58, 0x01, 'x'},
		"indefinite byte string": {0x83, 0x64, 'd', 'a', 't', 'a', 0x01, 0x5f, 0x41, 'x', 0xff},
		"empty":                  {},
	}
	for name, msg := range cases {
		if _, _, ok := ParseData(msg); ok {
			t.Errorf("%s: ParseData accepted %x", name, msg)
		}
	}
}

func BenchmarkDataMessage(b *testing.B) {
	buf := make([]byte, DataHeaderRoom+61440)
	b.SetBytes(61440)
	for i := range b.N {
		msg := DataMessage(buf, uint64(i)*61440, 61440)
		if _, _, ok := ParseData(msg); !ok {
			b.Fatal("not parsed")
		}
	}
}
