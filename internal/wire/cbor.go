package wire

import "github.com/vserv/vserv/canon"

// MaxDepth is the deepest nesting of arrays and maps a message may have.
const MaxDepth = canon.MaxDepth

// Marshal encodes v in Core Deterministic Encoding (package canon).
func Marshal(v any) ([]byte, error) { return canon.Marshal(v) }

// Unmarshal decodes one complete CBOR item strictly into v; trailing bytes are
// an error.
func Unmarshal(data []byte, v any) error { return canon.Unmarshal(data, v) }

// UnmarshalCanonical decodes like Unmarshal and additionally requires data to
// be exactly the deterministic encoding of what it decoded to.
func UnmarshalCanonical(data []byte, v any) error { return canon.UnmarshalCanonical(data, v) }

// RawMessage is a CBOR item kept as its bytes.
type RawMessage = canon.RawMessage
