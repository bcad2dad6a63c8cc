package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// The worked example of docs/formats.md §9, built with NewRecord: the same
// inputs must give the same bytes, down to the proof-of-work nonce.
const formatsExampleRecord = `
a7626964782430313930613563342d376432652d376233612d396631652d3263
3364346535663661376263706f774800000000000000c8637369675840761628
111300b75226de25476bf45597ade61062457e2ff97345e0ac3360561c277b7b
af1b8c686f50001b9bff0bfaf969cbc0f41e148199b47194d463111605647479
706569766f74652e6361737466617574686f7258208139770ea87d175f56a354
66c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39467637265617465641b0000
018bcfe56800677061796c6f6164a26662616c6c6f746262316663686f696365
66d986d8b9d985`

func TestNewRecordReproducesTheFormatsExample(t *testing.T) {
	want, err := hex.DecodeString(strings.Join(strings.Fields(formatsExampleRecord), ""))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := PayloadFromJSON([]byte(`{"ballot": "b1", "choice": "نعم"}`))
	if err != nil {
		t.Fatal(err)
	}
	author := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	got, err := NewRecord(payload, "vote.cast", 8, RecordOptions{
		Author: author,
		Origin: "vserv/34750f98bd59fcfc946da45aaabe933b/vote",
		ID:     "0190a5c4-7d2e-7b3a-9f1e-2c3d4e5f6a7b",
		Now:    func() time.Time { return time.UnixMilli(1700000000000) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("record\n got %x\nwant %x", got, want)
	}
}

func TestNewRecordIsValidForTheChain(t *testing.T) {
	origin := verify.OriginLine(strings.Repeat("ab", 16), "vote")
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		payload any
		typ     string
		bits    int
		opts    RecordOptions
	}{
		{"plain", map[string]any{"n": 1}, "", 0, RecordOptions{}},
		{"typed with pow", "x", "vote.cast", 10, RecordOptions{}},
		{"signed", []any{"a", 1.5, nil, true}, "t", 0, RecordOptions{Author: priv, Origin: origin}},
		{"signed with pow", map[string]any{"ok": false}, "t", 12, RecordOptions{Author: priv, Origin: origin}},
		{"non-ASCII", map[string]any{"ar": "مرحبا", "ru": "Привет", "zh": "你好", "emoji": "🗳️✅"}, "", 4, RecordOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().UnixMilli()
			rec, err := NewRecord(tc.payload, tc.typ, tc.bits, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			r, err := verify.CheckRecord(rec)
			if err != nil {
				t.Fatalf("CheckRecord: %v", err)
			}
			if r.ID[14] != '7' {
				t.Errorf("id %s is not a UUIDv7", r.ID)
			}
			if !r.HasCreated || int64(r.Created) < before || int64(r.Created) > time.Now().UnixMilli() {
				t.Errorf("created = %d (present %v), want the current unix ms", r.Created, r.HasCreated)
			}
			if r.Type != tc.typ || r.HasType != (tc.typ != "") {
				t.Errorf("type = %q (present %v), want %q", r.Type, r.HasType, tc.typ)
			}
			if !verify.PoWValid(r.Hash, r.PoW, tc.bits) {
				t.Errorf("pow %x does not meet %d bits", r.PoW, tc.bits)
			}
			if (r.PoW != nil) != (tc.bits > 0) {
				t.Errorf("pow = %x, want one only for bits > 0", r.PoW)
			}
			if tc.opts.Author != nil {
				if err := r.CheckSig(origin); err != nil {
					t.Errorf("signature: %v", err)
				}
				if err := r.CheckSig(verify.OriginLine(strings.Repeat("ab", 16), "other")); err == nil {
					t.Error("the signature also verifies for another chain")
				}
			} else if r.Sig != nil || r.Author != nil {
				t.Errorf("unsigned record has author %x sig %x", r.Author, r.Sig)
			}
			wantPayload, _ := wire.Marshal(tc.payload)
			var gotPayload struct {
				Payload wire.RawMessage `cbor:"payload"`
			}
			if err := wire.Unmarshal(rec, &gotPayload); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotPayload.Payload, wantPayload) {
				t.Errorf("payload %x, want %x", gotPayload.Payload, wantPayload)
			}
		})
	}
}

func TestNewRecordRefusesBadInput(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name    string
		payload any
		bits    int
		opts    RecordOptions
		want    string
	}{
		{"pow bits too high", 1, 33, RecordOptions{}, "pow bits 33"},
		{"negative pow bits", 1, -1, RecordOptions{}, "pow bits -1"},
		{"signed without origin", 1, 0, RecordOptions{Author: priv}, "needs the chain's origin"},
		{"upper-case id", 1, 0, RecordOptions{ID: "0190A5C4-7D2E-7B3A-9F1E-2C3D4E5F6A7B"}, "not a canonical"},
		{"NaN payload", math.NaN(), 0, RecordOptions{}, "record:"},
		{"integer map key", map[int]string{1: "a"}, 0, RecordOptions{}, "record:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRecord(tc.payload, "", tc.bits, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPayloadFromJSON(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{`1`, int64(1)},
		{`-7`, int64(-7)},
		{`2.0`, int64(2)},
		{`1e3`, int64(1000)},
		{`18446744073709551615`, uint64(math.MaxUint64)},
		{`2.5`, 2.5},
		{`1e300`, 1e300},
		{`-1e19`, -1e19},
		{`"نعم"`, "نعم"},
		{`true`, true},
		{`null`, nil},
		{`{"a": [1, "x", {"b": null}], "é": 0.5}`, map[string]any{"a": []any{int64(1), "x", map[string]any{"b": nil}}, "é": 0.5}},
		{`[]`, []any{}},
		{`{}`, map[string]any{}},
	}
	deepest := strings.Repeat("[", 15) + strings.Repeat("]", 15) // record depth 16
	if p, err := PayloadFromJSON([]byte(deepest)); err != nil {
		t.Errorf("15 nested arrays (record depth 16): %v", err)
	} else if _, err := NewRecord(p, "", 0, RecordOptions{}); err != nil {
		t.Errorf("15 nested arrays (record depth 16): NewRecord: %v", err)
	}
	for _, tc := range cases {
		got, err := PayloadFromJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestPayloadFromJSONRefuses(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a": 1, "a": 2}`, `duplicate key "a"`},
		{`1 2`, "more than one value"},
		{``, "no value"},
		{`{"a": }`, "invalid character"},
		{strings.Repeat("[", 16) + strings.Repeat("]", 16), "nested deeper"},
	}
	for _, tc := range cases {
		_, err := PayloadFromJSON([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}
