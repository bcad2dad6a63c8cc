package canon

import (
	"errors"
	"testing"
)

func TestDecodeRefusesWhatTheDefaultsWouldAccept(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{"duplicate map key", []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}},
		{"indefinite-length array", []byte{0x9f, 0x01, 0xff}},
		{"tag 1 (epoch time)", []byte{0xc1, 0x01}},
		{"undefined", []byte{0xf7}},
		{"simple value 16", []byte{0xf0}},
		{"NaN", []byte{0xf9, 0x7e, 0x00}},
		{"+Infinity", []byte{0xf9, 0x7c, 0x00}},
		{"invalid UTF-8 text", []byte{0x61, 0xff}},
		{"trailing bytes", []byte{0x01, 0x02}},
		{"nesting deeper than MaxDepth", deepArray(MaxDepth + 1)},
	}
	for _, tc := range cases {
		var v any
		if err := Unmarshal(tc.data, &v); err == nil {
			t.Errorf("%s: decoded to %v, want an error", tc.name, v)
		}
	}
	var v any
	if err := Unmarshal(deepArray(MaxDepth), &v); err != nil {
		t.Errorf("nesting exactly MaxDepth: %v, want it accepted", err)
	}
	for _, ok := range [][]byte{{0xf4}, {0xf5}, {0xf6}} {
		if err := Unmarshal(ok, &v); err != nil {
			t.Errorf("%x (false/true/null): %v, want it accepted", ok, err)
		}
	}
}

func deepArray(depth int) []byte {
	b := make([]byte, 0, depth+1)
	for range depth {
		b = append(b, 0x81) // array of one element
	}
	return append(b, 0x00)
}

func TestEncodingIsDeterministic(t *testing.T) {
	m := map[string]any{"b": uint64(1), "a": "x", "aa": []any{int64(-1), 1.5}}
	first, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Keys sorted by their encoding: "a" (0x61 0x61) < "b" < "aa" (longer).
	want := []byte{0xa3, 0x61, 'a', 0x61, 'x', 0x61, 'b', 0x01, 0x62, 'a', 'a', 0x82, 0x20, 0xf9, 0x3e, 0x00}
	if string(first) != string(want) {
		t.Errorf("Marshal = %x, want %x", first, want)
	}
}

func TestUnmarshalCanonicalRefusesLongForms(t *testing.T) {
	var v any
	// 1 encoded in two bytes (0x18 0x01) instead of one.
	if err := UnmarshalCanonical([]byte{0x18, 0x01}, &v); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("long integer form: err = %v, want ErrNotCanonical", err)
	}
	// Keys out of order.
	if err := UnmarshalCanonical([]byte{0xa2, 0x61, 'b', 0x01, 0x61, 'a', 0x02}, &v); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("unsorted keys: err = %v, want ErrNotCanonical", err)
	}
	if err := UnmarshalCanonical([]byte{0xa2, 0x61, 'a', 0x02, 0x61, 'b', 0x01}, &v); err != nil {
		t.Errorf("canonical map: %v", err)
	}
}

func TestAppendHeadMatchesTheEncoder(t *testing.T) {
	for _, n := range []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		want, err := Marshal(n) // major type 0 is the head alone
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendHead(nil, 0, n); string(got) != string(want) {
			t.Errorf("AppendHead(0, %d) = %x, want %x", n, got, want)
		}
		text, _ := Marshal(string(make([]byte, min(n, 300))))
		if n <= 300 {
			if got := AppendHead(nil, 3, n); string(got) != string(text[:len(got)]) {
				t.Errorf("AppendHead(3, %d) = %x, want the head of %x", n, got, text[:len(got)])
			}
		}
	}
}
