package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/wire"
)

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return b
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msg   []byte
		cmd   string
		nargs int
	}{
		{"no arguments", mustMarshal(t, []any{"hello"}), "hello", 0},
		{"text argument", mustMarshal(t, []any{"help", "hello"}), "help", 1},
		{"mixed arguments", mustMarshal(t, []any{"sess", "kid", []byte{1, 2}, []byte{3}}), "sess", 3},
		{"null argument", mustMarshal(t, []any{"chpass", "bob", nil, "new"}), "chpass", 3},
		{"nested argument", mustMarshal(t, []any{"x", []any{uint64(1), map[string]any{"a": true}}}), "x", 1},
		{"unknown command is not the decoder's business", mustMarshal(t, []any{"nosuch"}), "nosuch", 0},
		{"empty command name", mustMarshal(t, []any{""}), "", 0},
		{"non-UTF-8 text inside an argument is left to the argument's decoder", []byte{0x82, 0x61, 'x', 0x62, 0xff, 0xfe}, "x", 1},
		{"duplicate map keys inside an argument too", []byte{0x82, 0x61, 'a', 0xa2, 0x61, 'k', 0x01, 0x61, 'k', 0x02}, "a", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := wire.DecodeRequest(tc.msg)
			if err != nil {
				t.Fatalf("DecodeRequest(%x): %v", tc.msg, err)
			}
			if req.Cmd != tc.cmd || req.NArgs() != tc.nargs {
				t.Fatalf("got %q with %d args, want %q with %d", req.Cmd, req.NArgs(), tc.cmd, tc.nargs)
			}
		})
	}
}

func TestDecodeRequestRefusesWithERRProto(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x81}, wire.MaxDepth+1), 0x80)
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"not CBOR", []byte("hello")},
		{"break byte", []byte{0xff}},
		{"truncated", []byte{0x82, 0x65, 'h', 'e'}},
		{"trailing bytes", append(mustMarshal(t, []any{"hello"}), 0x00)},
		{"two arrays", append(mustMarshal(t, []any{"a"}), mustMarshal(t, []any{"b"})...)},
		{"not an array", mustMarshal(t, "hello")},
		{"a map", mustMarshal(t, map[string]any{"hello": true})},
		{"empty array", []byte{0x80}},
		{"headed by a number", mustMarshal(t, []any{uint64(1)})},
		{"headed by bytes", mustMarshal(t, []any{[]byte("hello")})},
		{"headed by null", []byte{0x81, 0xf6}},
		{"headed by an array", mustMarshal(t, []any{[]any{"hello"}})},
		{"command not UTF-8", []byte{0x81, 0x62, 0xc3, 0x28}},
		{"indefinite-length array", []byte{0x9f, 0x61, 'a', 0xff}},
		{"indefinite-length text argument", []byte{0x82, 0x61, 'a', 0x7f, 0x61, 'b', 0xff}},
		{"tag", []byte{0x81, 0xc0, 0x61, 'a'}},
		{"tagged argument", []byte{0x82, 0x61, 'a', 0xc1, 0x01}},
		{"undefined argument", []byte{0x82, 0x61, 'a', 0xf7}},
		{"too deep", append([]byte{0x82, 0x61, 'a'}, deep...)},
		{"huge array claim", []byte{0x9b, 0, 0, 0, 1, 0, 0, 0, 0, 0x61, 'a'}},
		{"huge text claim", []byte{0x82, 0x61, 'a', 0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"NaN argument", []byte{0x82, 0x61, 'a', 0xf9, 0x7e, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := wire.DecodeRequest(tc.msg)
			if !errors.Is(err, wire.ErrProto) || req != nil {
				t.Fatalf("DecodeRequest(%x) = %+v, %v; want ERR proto", tc.msg, req, err)
			}
		})
	}
}

func request(t *testing.T, args ...any) *wire.Request {
	t.Helper()
	req, err := wire.DecodeRequest(mustMarshal(t, append([]any{"cmd"}, args...)))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return req
}

func TestRequestArguments(t *testing.T) {
	req := request(t, "text", []byte{1, 2}, uint64(7), nil, -3, 1.5, true, []any{"x"})
	const (
		iText = iota
		iBytes
		iUint
		iNull
		iNeg
		iFloat
		iBool
		iArray
		iMissing
	)
	if s, err := req.Text(iText, "t"); err != nil || s != "text" {
		t.Errorf("Text = %q, %v", s, err)
	}
	if b, err := req.Bytes(iBytes, "b"); err != nil || !bytes.Equal(b, []byte{1, 2}) {
		t.Errorf("Bytes = %x, %v", b, err)
	}
	if u, err := req.Uint(iUint, "u"); err != nil || u != 7 {
		t.Errorf("Uint = %d, %v", u, err)
	}
	if !req.IsNull(iNull) || req.IsNull(iText) || req.IsNull(iMissing) {
		t.Errorf("IsNull: %v %v %v, want true false false", req.IsNull(iNull), req.IsNull(iText), req.IsNull(iMissing))
	}
	// Every accessor refuses every other type, null and a missing argument
	// with ERR proto.
	for _, tc := range []struct {
		what string
		call func(i int) error
		good int
	}{
		{"Text", func(i int) error { _, err := req.Text(i, "x"); return err }, iText},
		{"Bytes", func(i int) error { _, err := req.Bytes(i, "x"); return err }, iBytes},
		{"Uint", func(i int) error { _, err := req.Uint(i, "x"); return err }, iUint},
	} {
		for i := iText; i <= iMissing; i++ {
			if i == tc.good {
				continue
			}
			if err := tc.call(i); !errors.Is(err, wire.ErrProto) {
				t.Errorf("%s of argument %d: %v, want ERR proto", tc.what, i, err)
			}
		}
	}
	for _, tc := range []struct {
		min, max int
		ok       bool
	}{
		{8, 8, true}, {0, 8, true}, {8, 9, true}, {9, 9, false}, {0, 7, false}, {2, 3, false},
	} {
		if err := req.Arity(tc.min, tc.max); (err == nil) != tc.ok || (err != nil && !errors.Is(err, wire.ErrProto)) {
			t.Errorf("Arity(%d, %d) with 8 arguments: %v, want ok=%v", tc.min, tc.max, err, tc.ok)
		}
	}
	if _, err := request(t, wire.RawMessage{0x62, 0xff, 0xfe}).Text(0, "x"); !errors.Is(err, wire.ErrProto) {
		t.Errorf("Text of non-UTF-8 text: %v, want ERR proto", err)
	}
	var m map[string]any
	if err := request(t, wire.RawMessage{0xa2, 0x61, 'k', 0x01, 0x61, 'k', 0x02}).Decode(0, "map", &m); !errors.Is(err, wire.ErrProto) {
		t.Errorf("Decode of a map with duplicate keys: %v, want ERR proto", err)
	}
}

func TestEncodeRequestIsDeterministic(t *testing.T) {
	a, err := wire.EncodeRequest("x", map[string]any{"b": uint64(1), "a": uint64(2), "aa": uint64(3)})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x82, 0x61, 'x', 0xa3, 0x61, 'a', 0x02, 0x61, 'b', 0x01, 0x62, 'a', 'a', 0x03}
	if !bytes.Equal(a, want) {
		t.Fatalf("EncodeRequest = %x, want %x (keys in length-first order)", a, want)
	}
}

func TestResponses(t *testing.T) {
	okMsg, err := wire.EncodeOK("hello", uint64(1))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wire.DecodeResponse(okMsg)
	if err != nil || resp.Err != nil || len(resp.Vals) != 2 {
		t.Fatalf("DecodeResponse(OK) = %+v, %v", resp, err)
	}

	for _, tc := range []struct {
		name string
		in   *wire.Error
		want *wire.Error
	}{
		{"plain", wire.Errorf(wire.CodeNotFound, "no %s", "x"), &wire.Error{Code: wire.CodeNotFound, Text: "no x"}},
		{"extra", &wire.Error{Code: wire.CodeInvalid, Text: "bad", Extra: []any{uint64(3)}}, &wire.Error{Code: wire.CodeInvalid, Text: "bad", Extra: []any{uint64(3)}}},
		{"text forced to UTF-8", &wire.Error{Code: wire.CodeProto, Text: "a\xffb"}, &wire.Error{Code: wire.CodeProto, Text: "a\uFFFDb"}},
		{"unencodable extra dropped", &wire.Error{Code: wire.CodeLimit, Text: "x", Extra: []any{func() {}}}, &wire.Error{Code: wire.CodeLimit, Text: "x"}},
		{"unknown code read as internal", &wire.Error{Code: "weird", Text: "x"}, &wire.Error{Code: wire.CodeInternal, Text: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := wire.DecodeResponse(wire.EncodeError(tc.in))
			if err != nil || resp.Err == nil {
				t.Fatalf("DecodeResponse: %+v, %v", resp, err)
			}
			got := resp.Err
			if got.Code != tc.want.Code || got.Text != tc.want.Text || len(got.Extra) != len(tc.want.Extra) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got.Extra {
				if got.Extra[i] != tc.want.Extra[i] {
					t.Fatalf("extra %d = %v, want %v", i, got.Extra[i], tc.want.Extra[i])
				}
			}
		})
	}

	for _, bad := range [][]byte{nil, {0x80}, mustMarshal(t, []any{"MAYBE"}), mustMarshal(t, []any{uint64(1)}), {0x81, 0x62, 'O', 'K', 0x00}} {
		if resp, err := wire.DecodeResponse(bad); err == nil {
			t.Errorf("DecodeResponse(%x) = %+v, want an error", bad, resp)
		}
	}
}

func TestErrorsIs(t *testing.T) {
	err := error(wire.Errorf(wire.CodeNotFound, "no such file"))
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, wire.ErrNotFound) || errors.Is(wrapped, wire.ErrPerm) {
		t.Errorf("errors.Is on a wrapped notfound: notfound %v, perm %v", errors.Is(wrapped, wire.ErrNotFound), errors.Is(wrapped, wire.ErrPerm))
	}
	if wire.CodeOf(wrapped) != wire.CodeNotFound || wire.CodeOf(errors.New("plain")) != wire.CodeInternal {
		t.Errorf("CodeOf: %s, %s", wire.CodeOf(wrapped), wire.CodeOf(errors.New("plain")))
	}
	if !strings.Contains(err.Error(), "notfound") {
		t.Errorf("Error() = %q, want the code in it", err.Error())
	}
}
