package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/vserv/vserv/internal/wire"
	"github.com/vserv/vserv/verify"
)

// RecordOptions are the optional parts of a record built by NewRecord.
type RecordOptions struct {
	// Author, when set, signs the record (§4.2 `author` and `sig`); Origin
	// must then be the chain's origin line, vserv/<server-id>/<chain>
	// (verify.OriginLine), because the signature binds it.
	Author ed25519.PrivateKey
	Origin string
	// ID overrides the new UUIDv7 (to resend a record, say); it must be a
	// canonical lowercase UUID.
	ID string
	// Now overrides the clock for `created` (time.Now when nil).
	Now func() time.Time
}

// NewRecord builds a record ready for PutRecords: a CBOR map in Core Deterministic
// Encoding with a fresh UUIDv7 `id`, `created` in unix ms, the payload, `type`
// when typ is not empty, a signature when opts.Author is set, and a `pow`
// meeting powBits (the chain's pow_bits, see Chains). payload is any value
// wire.Marshal encodes as record payload allows: maps with text keys, slices,
// strings, []byte, integers, floats, booleans, nil (PayloadFromJSON makes one
// from JSON). The result is checked with verify.CheckRecord before it is
// returned.
func NewRecord(payload any, typ string, powBits int, opts RecordOptions) ([]byte, error) {
	if powBits < 0 || powBits > verify.MaxPoWBits {
		return nil, fmt.Errorf("record: pow bits %d out of range 0..%d", powBits, verify.MaxPoWBits)
	}
	if opts.Author != nil && opts.Origin == "" {
		return nil, errors.New("record: a signed record needs the chain's origin")
	}
	id := opts.ID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("record: new id: %w", err)
		}
		id = u.String()
	}
	if !verify.IsCanonicalUUID(id) {
		return nil, fmt.Errorf("record: id %q is not a canonical lowercase UUID", id)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p, err := wire.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("record: encode payload: %w", err)
	}
	// The payload is encoded once and embedded as raw bytes in every
	// re-encoding below, so signing and proof of work see identical bytes.
	m := map[string]any{"id": id, "payload": wire.RawMessage(p), "created": uint64(now().UnixMilli())}
	if typ != "" {
		m["type"] = typ
	}
	rec, err := wire.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("record: encode: %w", err)
	}
	if opts.Author != nil {
		if rec, err = verify.SignRecord(opts.Origin, rec, opts.Author); err != nil {
			return nil, fmt.Errorf("record: sign: %w", err)
		}
	}
	r, err := verify.CheckRecord(rec)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if powBits > 0 {
		if r.Author != nil {
			m["author"], m["sig"] = r.Author, r.Sig
		}
		m["pow"] = verify.SolvePoW(r.Hash, powBits)
		if rec, err = wire.Marshal(m); err != nil {
			return nil, fmt.Errorf("record: encode: %w", err)
		}
		if _, err := verify.CheckRecord(rec); err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
	}
	return rec, nil
}

// PayloadFromJSON converts one JSON value into a record payload: objects
// become maps with text keys, arrays arrays, strings text, true/false/null
// themselves, and numbers integers when they are whole numbers that fit in 64
// bits, floats otherwise. Duplicate object keys are refused rather than
// silently collapsed, since the record would then say less than the JSON.
func PayloadFromJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec, payloadDepth)
	if err != nil {
		return nil, fmt.Errorf("payload JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("payload JSON: more than one value")
	}
	return v, nil
}

// payloadDepth is how deep the payload's top-level value sits in the record
// (the record map is depth 1 and the payload's map or array inside it 2).
const payloadDepth = 2

// jsonValue reads one value whose containers, if it is one, sit at depth.
func jsonValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("no value")
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth > verify.MaxRecordDepth {
			return nil, fmt.Errorf("nested deeper than a record allows (%d levels)", verify.MaxRecordDepth)
		}
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string) // the decoder guarantees object keys are strings
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				if m[k], err = jsonValue(dec, depth+1); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token() // '}'
			return m, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token() // ']'
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return jsonNumber(t)
	default: // string, bool, nil
		return t, nil
	}
}

// jsonNumber keeps whole numbers exact: 2, -7, 18446744073709551615 and 1e3
// are integers; 2.5 and 1e300 floats.
func jsonNumber(n json.Number) (any, error) {
	s := n.String()
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %w", s, err)
	}
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f), nil
	}
	return f, nil
}
