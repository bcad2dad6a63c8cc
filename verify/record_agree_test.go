package verify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// The fast path of CheckRecord (scanRecord) must accept exactly what the
// reference path (checkRecordRef: decode, check, re-encode, compare) accepts,
// with the same record, and CheckRecord must refuse with the reference's
// error. These tests hold them to that.

// checkAgrees fails t unless every way of checking rec agrees with
// checkRecordRef.
func checkAgrees(t *testing.T, rec []byte) {
	t.Helper()
	want, wantErr := checkRecordRef(rec)
	if len(rec) <= MaxRecordSize {
		fast, _ := scanRecord(rec)
		if (fast != nil) != (wantErr == nil) {
			t.Fatalf("record %x: fast path accepts: %v, reference: %v", rec, fast != nil, wantErr)
		}
	}
	got, gotErr := CheckRecord(rec)
	lite, liteErr := CheckRecordNoPayload(rec)
	if wantErr != nil {
		var want *RecordError
		if !errors.As(wantErr, &want) {
			t.Fatalf("record %x: reference error %v is not a *RecordError", rec, wantErr)
		}
		for _, err := range []error{gotErr, liteErr} {
			var re *RecordError
			if !errors.As(err, &re) || !errors.Is(err, want.Err) {
				t.Fatalf("record %x: got error %v, reference %v", rec, err, wantErr)
			}
		}
		return
	}
	if gotErr != nil || liteErr != nil {
		t.Fatalf("record %x: reference accepts, got %v / %v", rec, gotErr, liteErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record %x:\n got %#v\nwant %#v", rec, got, want)
	}
	want.Payload = nil
	if !reflect.DeepEqual(lite, want) {
		t.Fatalf("record %x (no payload):\n got %#v\nwant %#v", rec, lite, want)
	}
}

// FuzzCheckRecordAgrees holds CheckRecord to the reference path on any
// input. Its seed corpus (testdata/fuzz/FuzzCheckRecordAgrees and the seeds
// below) runs in every `go test`.
func FuzzCheckRecordAgrees(f *testing.F) {
	for _, rec := range agreeSeeds(f) {
		if len(rec) < 4096 { // large inputs make the fuzzer's minimizing crawl
			f.Add(rec)
		}
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		checkAgrees(t, rec)
	})
}

// agreeSeeds are records around every rule: the valid shapes, and each way
// of breaking canonical form or a field rule.
func agreeSeeds(tb testing.TB) [][]byte {
	priv := testKey(5)
	origin := OriginLine(strings.Repeat("ab", 16), "vote")
	plain := mustMarshal(tb, map[string]any{"id": testID, "type": "vote.cast", "created": uint64(1764000000000),
		"payload": map[string]any{"station": 3, "n": 123456, "choice": "yes"}})
	signed, err := SignRecord(origin, plain, priv)
	if err != nil {
		tb.Fatal(err)
	}
	withPoW := mustMarshal(tb, map[string]any{"id": testID, "payload": 1, "pow": []byte{1, 2, 3}})
	signedPoW, err := SignRecord(origin, withPoW, priv)
	if err != nil {
		tb.Fatal(err)
	}
	seeds := [][]byte{plain, signed, withPoW, signedPoW, nil, {0xa0}, {0xa1}, {0xbf, 0xff}}
	payloads := []string{
		"00", "17", "1818", "1817", "190100", "1900ff", "1a00010000", "1a0000ffff", "1b0000000100000000", "1b00000000ffffffff",
		"1bffffffffffffffff", "20", "3bffffffffffffffff", "3b7fffffffffffffff", "3b8000000000000000",
		"40", "4161", "5801ff", "581800000000000000000000000000000000000000000000000000", "60", "6161", "780161",
		"62c328", "63eda080", "64f4908080", "c0", "c11a5f000000", "c2420100", "d818", "e0", "f0", "f3", "f4", "f5", "f6", "f7",
		"f800", "f814", "f820", "f8ff", "fc", "ff", "f90000", "f98000", "f90001", "f903ff", "f90400", "f93c00", "f97bff",
		"f97c00", "f9fc00", "f97e00", "f97c01", "fa00000001", "fa33800000", "fa3f800000", "fa3f800001", "fa47800000",
		"fa7f800000", "fa7fc00000", "fb3ff0000000000000", "fb3ff0000000000001", "fb0000000000000001", "fb8000000000000000",
		"fb7ff0000000000000", "fb7ff8000000000000", "fb3fb999999999999a", "80", "8101", "820102", "9f01ff", "98020102",
		"a0", "a16161f6", "a2616101616102", "a262626201616102", "a2616101616202", "a10101", "a1416101", "a1f401",
		"a1626161a1616201", "7f6161ff", "5f4161ff", "bf6161f6ff", "8180", "a1616280",
		"", "01", "8201",
	}
	for _, p := range payloads {
		b, err := hexBytes(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, payloadRecord(b))
	}
	for _, d := range []int{14, 15, 16, 17, 40} {
		seeds = append(seeds, mustMarshal(tb, map[string]any{"id": testID, "payload": nested(d)}))
		seeds = append(seeds, mustMarshal(tb, map[string]any{"id": testID, "payload": nestedMaps(d)}))
	}
	fields := []map[string]any{
		{"id": testID},
		{"payload": 1},
		{"id": testID, "payload": 1, "extra": 1},
		{"id": strings.ToUpper(testID), "payload": 1},
		{"id": []byte(testID), "payload": 1},
		{"id": testID, "payload": 1, "type": 5},
		{"id": testID, "payload": 1, "type": ""},
		{"id": testID, "payload": 1, "created": -1},
		{"id": testID, "payload": 1, "created": 1.5},
		{"id": testID, "payload": 1, "created": uint64(math.MaxUint64)},
		{"id": testID, "payload": 1, "author": make([]byte, 32)},
		{"id": testID, "payload": 1, "sig": make([]byte, 64)},
		{"id": testID, "payload": 1, "author": make([]byte, 31), "sig": make([]byte, 64)},
		{"id": testID, "payload": 1, "author": make([]byte, 32), "sig": make([]byte, 63)},
		{"id": testID, "payload": 1, "pow": []byte{}},
		{"id": testID, "payload": 1, "pow": make([]byte, 32)},
		{"id": testID, "payload": 1, "pow": make([]byte, 33)},
		{"id": testID, "payload": 1, "pow": "ab"},
		{"id": testID, "payload": strings.Repeat("x", MaxRecordSize-60)},
		{"id": testID, "payload": strings.Repeat("x", MaxRecordSize)},
	}
	for _, m := range fields {
		seeds = append(seeds, mustMarshal(tb, m))
	}
	seeds = append(seeds, append(bytes.Clone(plain), 0))
	seeds = append(seeds, plain[:len(plain)-1])
	return seeds
}

func hexBytes(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			default:
				return nil, errors.New("bad hex")
			}
		}
		b[i] = v
	}
	return b, nil
}

// payloadRecord is {id, payload} with the payload's raw bytes as given.
func payloadRecord(payload []byte) []byte {
	b := []byte{0xa2, 0x62, 'i', 'd', 0x78, 36}
	b = append(b, testID...)
	b = append(b, 0x67)
	b = append(b, "payload"...)
	return append(b, payload...)
}

func nestedMaps(levels int) any {
	var v any = 1
	for range levels {
		v = map[string]any{"k": v}
	}
	return v
}

func TestCheckRecordAgreesOnSeeds(t *testing.T) {
	for _, rec := range agreeSeeds(t) {
		checkAgrees(t, rec)
	}
}

// TestCheckRecordAgreesOnFloats covers the half-precision floats (every one
// with the smallest and largest exponents, subnormals, infinities and NaNs
// among them; every 7th of the rest), and random single and double precision
// floats, half of them exactly representable in the next smaller form.
func TestCheckRecordAgreesOnFloats(t *testing.T) {
	for h := range 1 << 16 {
		if exp := h >> 10 & 0x1f; exp > 1 && exp < 30 && h%7 != 0 {
			continue
		}
		checkAgrees(t, payloadRecord([]byte{0xf9, byte(h >> 8), byte(h)}))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		f32 := r.Uint32()
		if r.IntN(2) == 0 {
			f32 &^= 0x1fff // often exactly a half float
		}
		checkAgrees(t, payloadRecord(binary.BigEndian.AppendUint32([]byte{0xfa}, f32)))
		f64 := r.Uint64()
		if r.IntN(2) == 0 {
			f64 &^= 0x1fffffff // often exactly a single float
		}
		checkAgrees(t, payloadRecord(binary.BigEndian.AppendUint64([]byte{0xfb}, f64)))
	}
}

// TestCheckRecordAgreesOnRandom generates random records, canonical and
// then damaged a few bytes at a time, and checks both paths agree on each.
func TestCheckRecordAgreesOnRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 5000
	if testing.Short() {
		n = 500
	}
	for range n {
		m := map[string]any{"id": testID, "payload": randValue(r, 0)}
		if r.IntN(3) == 0 {
			m["type"] = randText(r)
		}
		if r.IntN(3) == 0 {
			m["created"] = r.Uint64() >> r.IntN(64)
		}
		if r.IntN(4) == 0 {
			m["author"], m["sig"] = randBytes(r, 32), randBytes(r, 64)
		}
		if r.IntN(4) == 0 {
			m["pow"] = randBytes(r, 1+r.IntN(32))
		}
		rec := mustMarshal(t, m)
		checkAgrees(t, rec)
		for range 1 + r.IntN(3) {
			rec = mutate(r, rec)
		}
		checkAgrees(t, rec)
	}
}

func randValue(r *rand.Rand, depth int) any {
	k := r.IntN(12)
	if depth > 17 {
		k = r.IntN(8)
	}
	switch k {
	case 0:
		return r.Uint64() >> r.IntN(64)
	case 1:
		return -int64(r.Uint64()>>r.IntN(64)>>1) - 1
	case 2:
		return randText(r)
	case 3:
		return randBytes(r, r.IntN(40))
	case 4:
		return []any{true, false, nil}[r.IntN(3)]
	case 5:
		return math.Float64frombits(r.Uint64() &^ (uint64(1)<<r.IntN(64) - 1))
	case 6:
		return float64(float32(r.NormFloat64()))
	case 7:
		return []float64{0, math.Copysign(0, -1), 1, 0.5, 65504, 1e-7, 5.960464477539063e-8, math.MaxFloat64, math.SmallestNonzeroFloat64}[r.IntN(9)]
	case 8, 9:
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = randValue(r, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for range r.IntN(4) {
			m[randText(r)] = randValue(r, depth+1)
		}
		return m
	}
}

func randText(r *rand.Rand) string {
	pieces := []string{"a", "b", "id", "payload", "sig", "pow", "é", "😀", "\x00", strings.Repeat("z", 24), strings.Repeat("y", 300)}
	var sb strings.Builder
	for range r.IntN(4) {
		sb.WriteString(pieces[r.IntN(len(pieces))])
	}
	return sb.String()
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mutate damages rec in one of the ways that matter to a canonical check.
func mutate(r *rand.Rand, rec []byte) []byte {
	rec = bytes.Clone(rec)
	if len(rec) == 0 {
		return []byte{byte(r.Uint32())}
	}
	i := r.IntN(len(rec))
	switch r.IntN(6) {
	case 0:
		rec[i] ^= 1 << r.IntN(8)
	case 1:
		rec[i] = byte(r.Uint32())
	case 2:
		return append(rec[:i:i], rec[i+1:]...)
	case 3:
		return append(rec[:i:i], append([]byte{byte(r.Uint32())}, rec[i:]...)...)
	case 4:
		rec[i] = []byte{0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xff, 0x18, 0x19, 0x9f, 0xbf, 0xc0, 0x60, 0x80, 0xa0}[r.IntN(17)]
	case 5:
		rec[i]++
	}
	return rec
}
