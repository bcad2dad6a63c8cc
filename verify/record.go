package verify

import (
	"bytes"
	"crypto/sha256"
	"errors"

	"github.com/fxamacker/cbor/v2"
)

// Limits of §4.2.
const (
	MaxRecordSize  = 65000 // bytes of encoded record: every entry then fits the 65,535 bytes of a C2SP tlog-tiles entry
	MaxRecordDepth = 16    // the record map is depth 1; each map or array inside adds 1
)

// Record is a checked record (§4.2). Raw holds the exact accepted bytes.
type Record struct {
	ID         string
	Payload    any
	Type       string
	HasType    bool
	Created    uint64
	HasCreated bool
	Author     []byte // 32 bytes or nil
	Sig        []byte // 64 bytes or nil
	PoW        []byte // 1–32 bytes or nil
	Hash       [32]byte
	Raw        []byte
}

// CheckRecord decodes rec strictly and enforces every rule of §4.2: only the
// known keys with their types, no tags, undefined, other simple values, NaN,
// ±Infinity or non-text map keys, nesting at most MaxRecordDepth, at most
// MaxRecordSize bytes, and rec must be exactly its own deterministic
// re-encoding. It also computes the record hash.
//
// A valid record is checked in one pass over its bytes (scanRecord) and only
// its payload is decoded; a record that pass refuses goes through the
// reference path (decode, check, re-encode, compare), which gives the reason.
func CheckRecord(rec []byte) (*Record, error) {
	if len(rec) <= MaxRecordSize {
		if r, payload := scanRecord(rec); r != nil {
			if err := decMode.Unmarshal(payload, &r.Payload); err == nil {
				return r, nil
			}
		}
	}
	return checkRecordRef(rec)
}

// CheckRecordNoPayload is CheckRecord without decoding the payload: the
// returned Record's Payload is nil. It accepts and refuses exactly what
// CheckRecord does, for callers that need only the other fields and the
// record hash (the server's append path).
func CheckRecordNoPayload(rec []byte) (*Record, error) {
	if len(rec) <= MaxRecordSize {
		if r, _ := scanRecord(rec); r != nil {
			return r, nil
		}
	}
	r, err := checkRecordRef(rec)
	if err != nil {
		return nil, err
	}
	r.Payload = nil
	return r, nil
}

// checkRecordRef is the reference implementation of CheckRecord: decode into
// generic values, check the fields, re-encode deterministically and compare,
// then encode again without `sig` and `pow` for the record hash. The tests
// hold the fast path to exactly its decisions (FuzzCheckRecordAgrees).
func checkRecordRef(rec []byte) (*Record, error) {
	if len(rec) > MaxRecordSize {
		return nil, recordErr("", ErrTooLarge, "%d bytes, the limit is %d", len(rec), MaxRecordSize)
	}
	if len(rec) == 0 || rec[0]>>5 != 5 {
		return nil, recordErr("", ErrMalformed, "not a cbor map")
	}
	var m map[string]any
	if err := decMode.Unmarshal(rec, &m); err != nil {
		return nil, decodeErr(err)
	}
	if d := depth(m, 1); d > MaxRecordDepth {
		return nil, recordErr("", ErrField, "nested %d deep, the limit is %d", d, MaxRecordDepth)
	}
	r := &Record{Raw: rec}
	if err := r.fill(m); err != nil {
		return nil, err
	}
	again, err := encMode.Marshal(m)
	if err != nil {
		return nil, recordErr("", ErrMalformed, "re-encode: %v", err)
	}
	if !bytes.Equal(again, rec) {
		return nil, recordErr("", ErrNonCanonical, "not in core deterministic encoding")
	}
	if r.Sig == nil && r.PoW == nil {
		r.Hash = sha256.Sum256(rec)
	} else {
		delete(m, "sig")
		delete(m, "pow")
		unsigned, err := encMode.Marshal(m)
		if err != nil {
			return nil, recordErr("", ErrMalformed, "re-encode: %v", err)
		}
		r.Hash = sha256.Sum256(unsigned)
	}
	return r, nil
}

// RecordHash is the record hash (§4.2) of a valid record: SHA-256 of its
// deterministic encoding without `sig` and `pow`.
func RecordHash(rec []byte) ([32]byte, error) {
	r, err := CheckRecord(rec)
	if err != nil {
		return [32]byte{}, err
	}
	return r.Hash, nil
}

func (r *Record) fill(m map[string]any) error {
	for k, v := range m {
		switch k {
		case "id":
			s, ok := v.(string)
			if !ok || !IsCanonicalUUID(s) {
				return recordErr("id", ErrField, "must be a canonical lowercase uuid as text")
			}
			r.ID = s
		case "payload":
			r.Payload = v
		case "type":
			s, ok := v.(string)
			if !ok {
				return recordErr("type", ErrField, "must be text")
			}
			r.Type, r.HasType = s, true
		case "created":
			u, ok := v.(uint64)
			if !ok {
				return recordErr("created", ErrField, "must be an unsigned integer")
			}
			r.Created, r.HasCreated = u, true
		case "author":
			b, ok := v.([]byte)
			if !ok || len(b) != 32 {
				return recordErr("author", ErrField, "must be 32 bytes")
			}
			r.Author = b
		case "sig":
			b, ok := v.([]byte)
			if !ok || len(b) != 64 {
				return recordErr("sig", ErrField, "must be 64 bytes")
			}
			r.Sig = b
		case "pow":
			b, ok := v.([]byte)
			if !ok || len(b) < 1 || len(b) > 32 {
				return recordErr("pow", ErrField, "must be 1 to 32 bytes")
			}
			r.PoW = b
		default:
			return recordErr(k, ErrField, "unknown key")
		}
	}
	if r.ID == "" {
		return recordErr("id", ErrField, "required")
	}
	if _, ok := m["payload"]; !ok {
		return recordErr("payload", ErrField, "required")
	}
	if (r.Author == nil) != (r.Sig == nil) {
		return recordErr("sig", ErrField, "author and sig must be present together")
	}
	return nil
}

// depth is the nesting depth of the containers in v, v being a container at
// depth d: scalars add nothing, each map or array inside adds 1.
func depth(v any, d int) int {
	max := d
	visit := func(e any) {
		switch e.(type) {
		case map[string]any, []any:
			if n := depth(e, d+1); n > max {
				max = n
			}
		}
	}
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			visit(e)
		}
	case []any:
		for _, e := range t {
			visit(e)
		}
	}
	return max
}

// decodeErr turns a decoder failure into a RecordError with a reason a client
// can act on.
func decodeErr(err error) error {
	var (
		typeErr  *cbor.UnmarshalTypeError
		depthErr *cbor.MaxNestedLevelError
	)
	switch {
	case errors.As(err, &depthErr):
		return recordErr("", ErrField, "nested deeper than %d", MaxRecordDepth)
	case errors.As(err, &typeErr):
		return recordErr("", ErrField, "map keys must be text (%v)", err)
	}
	return recordErr("", ErrMalformed, "%v", err)
}

// IsCanonicalUUID reports whether s is a UUID in its canonical lowercase text
// form (8-4-4-4-12 hex digits), of any version.
func IsCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}
