// Package canon is vserv's one CBOR dialect (docs/formats.md §1): RFC 8949
// §4.2.1 Core Deterministic Encoding on the way out, strict decoding on the
// way in.
//
// Decoding refuses duplicate map keys, indefinite lengths, tags, NaN and
// ±Infinity, invalid UTF-8 and every simple value except false, true and
// null (fxamacker's defaults would silently drop duplicates and turn tags 0/1
// into times), and nests at most MaxDepth deep. The protocol codec
// (internal/wire) and the public verifier (verify) both use these modes, so a
// message and a record are read by exactly the same rules. The package
// depends on nothing of the server and builds for GOOS=js GOARCH=wasm.
package canon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// MaxDepth is the deepest nesting of arrays and maps the decoder accepts.
// Records are limited further by the ledger rules.
const MaxDepth = 32

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(fmt.Sprintf("canon: cbor encoder options: %v", err))
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		NaN:              cbor.NaNDecodeForbidden,
		Inf:              cbor.InfDecodeForbidden,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
		MaxNestedLevels:  MaxDepth,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 20,
		UTF8:             cbor.UTF8RejectInvalid,
		SimpleValues:     simpleValues(),
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("canon: cbor decoder options: %v", err))
	}
}

// simpleValues forbids every simple value except false, true and null; in
// particular `undefined` (23) is rejected.
func simpleValues() *cbor.SimpleValueRegistry {
	var opts []func(*cbor.SimpleValueRegistry) error
	for v := 0; v <= 255; v++ {
		if v == 20 || v == 21 || v == 22 || (v >= 24 && v <= 31) {
			continue // false, true, null, and the reserved ones the decoder refuses itself
		}
		opts = append(opts, cbor.WithRejectedSimpleValue(cbor.SimpleValue(v)))
	}
	r, err := cbor.NewSimpleValueRegistryFromDefaults(opts...)
	if err != nil {
		panic(fmt.Sprintf("canon: cbor simple values: %v", err))
	}
	return r
}

// EncMode is the deterministic encoder.
func EncMode() cbor.EncMode { return encMode }

// DecMode is the strict decoder.
func DecMode() cbor.DecMode { return decMode }

// Marshal encodes v in Core Deterministic Encoding.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes one complete CBOR item strictly into v; trailing bytes
// are an error.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// ErrNotCanonical means well-formed CBOR that is not in Core Deterministic
// Encoding (a longer integer form, unsorted keys, a wider float).
var ErrNotCanonical = errors.New("cbor: not in core deterministic encoding")

// UnmarshalCanonical decodes like Unmarshal and additionally requires data
// to be exactly the deterministic encoding of what it decoded to.
func UnmarshalCanonical(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	var generic any
	if err := decMode.Unmarshal(data, &generic); err != nil {
		return err
	}
	again, err := encMode.Marshal(generic)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	return nil
}

// RawMessage is a CBOR item kept as its exact bytes.
type RawMessage = cbor.RawMessage

// AppendHead appends the shortest head of a CBOR item of the given major type
// (0–7) with argument n: what deterministic encoding requires. Hand-written
// encoders on hot paths use it so that their bytes are the encoder's.
func AppendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}
