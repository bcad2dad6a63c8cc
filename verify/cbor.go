package verify

import (
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// The CBOR modes of the formats: the same options as the protocol's codec
// (internal/wire), repeated here because this package must not depend on the
// server. Encoding is RFC 8949 §4.2.1 Core Deterministic Encoding; decoding
// refuses duplicate keys, indefinite lengths, tags, NaN/Inf and every simple
// value except false, true and null, instead of silently dropping or
// converting them as fxamacker's defaults do.
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

// maxDecodeDepth bounds the decoder itself; records are limited further
// (MaxRecordDepth) by an explicit walk so that the error can say why.
const maxDecodeDepth = 32

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("verify: cbor encoder options: %v", err))
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		NaN:              cbor.NaNDecodeForbidden,
		Inf:              cbor.InfDecodeForbidden,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
		MaxNestedLevels:  maxDecodeDepth,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 20,
		UTF8:             cbor.UTF8RejectInvalid,
		SimpleValues:     simpleValues(),
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("verify: cbor decoder options: %v", err))
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
		panic(fmt.Sprintf("verify: cbor simple values: %v", err))
	}
	return r
}

// RawMessage is a CBOR item kept as its exact bytes.
type RawMessage = cbor.RawMessage
