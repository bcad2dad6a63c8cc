package wire

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// The CBOR modes of the protocol. Encoding is RFC 8949 §4.2.1 Core
// Deterministic Encoding, so equal values always give equal bytes. Decoding is
// strict: duplicate map keys, indefinite lengths, tags and NaN/Inf are refused
// rather than silently dropped or converted (fxamacker's defaults do both).
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

// MaxDepth is the deepest nesting of arrays and maps a message may have.
const MaxDepth = 32

func init() {
	var err error
	encOpts := cbor.CoreDetEncOptions()
	encMode, err = encOpts.EncMode()
	if err != nil {
		panic(fmt.Sprintf("wire: cbor encoder options: %v", err))
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
		panic(fmt.Sprintf("wire: cbor decoder options: %v", err))
	}
}

// simpleValues forbids every simple value except false, true and null; in
// particular `undefined` (23) is rejected.
func simpleValues() *cbor.SimpleValueRegistry {
	var opts []func(*cbor.SimpleValueRegistry) error
	for v := 0; v <= 255; v++ {
		if v == 20 || v == 21 || v == 22 || (v >= 24 && v <= 31) {
			continue // false, true, null, and the reserved ones the decoder handles itself
		}
		opts = append(opts, cbor.WithRejectedSimpleValue(cbor.SimpleValue(v)))
	}
	r, err := cbor.NewSimpleValueRegistryFromDefaults(opts...)
	if err != nil {
		panic(fmt.Sprintf("wire: cbor simple values: %v", err))
	}
	return r
}

// Marshal encodes v in Core Deterministic Encoding.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes one complete CBOR item strictly into v; trailing bytes are
// an error.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// UnmarshalCanonical decodes like Unmarshal and additionally requires data to
// be exactly the deterministic encoding of what it decoded to.
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
		return fmt.Errorf("cbor: not in core deterministic encoding")
	}
	return nil
}

// RawMessage is a CBOR item kept as its bytes.
type RawMessage = cbor.RawMessage
