package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"unicode/utf8"

	"github.com/vserv/vserv/canon"
)

// scanRecord is the fast path of CheckRecord: one pass over the bytes that
// accepts exactly the records the reference path (decode strictly, check the
// fields, re-encode deterministically, compare) accepts, without building
// maps or encoding anything. It returns nil for any record it does not
// accept; CheckRecord then runs the reference path, which says why.
//
// A record is accepted when it is a map whose every item is in its shortest,
// definite-length form, with text keys (valid UTF-8, sorted bytewise by
// their encodings, so also unique), no tags, no simple values other than
// false/true/null, floats in the shortest form that keeps their value and
// never NaN or ±Infinity, valid UTF-8 text, nesting at most MaxRecordDepth,
// the known keys with their types, and nothing after the map.
//
// The record hash is computed from byte ranges: the canonical encoding of a
// map without some of its pairs is the map head with the smaller count
// followed by the remaining pairs, unchanged and in the same order.
//
// The payload is not decoded; scanRecord returns its bytes for the caller
// that wants it.
func scanRecord(rec []byte) (*Record, []byte) {
	s := scanner{b: rec}
	major, n, ok := s.head()
	if !ok || major != majorMap {
		return nil, nil
	}
	r := &Record{Raw: rec}
	var (
		prevKey     []byte
		payload     []byte
		skip        [2][2]int // byte ranges of the sig and pow pairs, in order
		nskip       int
		afterHeader = s.i
	)
	for range n {
		keyStart := s.i
		key, ok := s.text()
		if !ok {
			return nil, nil
		}
		if prevKey != nil && bytes.Compare(prevKey, rec[keyStart:s.i]) >= 0 {
			return nil, nil
		}
		prevKey = rec[keyStart:s.i]
		switch string(key) {
		case "id":
			v, ok := s.text()
			if !ok || !isCanonicalUUIDBytes(v) {
				return nil, nil
			}
			r.ID = string(v)
		case "payload":
			start := s.i
			if !s.item(1) {
				return nil, nil
			}
			payload = rec[start:s.i:s.i]
		case "type":
			v, ok := s.text()
			if !ok {
				return nil, nil
			}
			r.Type, r.HasType = string(v), true
		case "created":
			major, v, ok := s.head()
			if !ok || major != majorUint {
				return nil, nil
			}
			r.Created, r.HasCreated = v, true
		case "author":
			v, ok := s.bytesOf(32, 32)
			if !ok {
				return nil, nil
			}
			r.Author = v
		case "sig":
			v, ok := s.bytesOf(64, 64)
			if !ok {
				return nil, nil
			}
			r.Sig = v
			skip[nskip] = [2]int{keyStart, s.i}
			nskip++
		case "pow":
			v, ok := s.bytesOf(1, 32)
			if !ok {
				return nil, nil
			}
			r.PoW = v
			skip[nskip] = [2]int{keyStart, s.i}
			nskip++
		default:
			return nil, nil
		}
	}
	if s.i != len(rec) || r.ID == "" || payload == nil || (r.Author == nil) != (r.Sig == nil) {
		return nil, nil
	}
	if nskip == 0 {
		r.Hash = sha256.Sum256(rec)
		return r, payload
	}
	h := sha256.New()
	h.Write(canon.AppendHead(make([]byte, 0, 9), majorMap, n-uint64(nskip)))
	from := afterHeader
	for _, sk := range skip[:nskip] {
		h.Write(rec[from:sk[0]])
		from = sk[1]
	}
	h.Write(rec[from:])
	h.Sum(r.Hash[:0])
	return r, payload
}

const (
	majorUint  = 0
	majorNeg   = 1
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	majorTag   = 6
	majorOther = 7
)

// scanner reads canonical CBOR items from b; every method returns false at
// the first byte that the strict decoder or the canonical re-encoding would
// not accept, leaving i somewhere past the item's start.
type scanner struct {
	b []byte
	i int
}

// head reads an item head of major types 0–5 in its shortest form and
// returns its argument. Tags, major type 7, reserved additional information
// and indefinite lengths are refused.
func (s *scanner) head() (major byte, arg uint64, ok bool) {
	if s.i >= len(s.b) {
		return 0, 0, false
	}
	c := s.b[s.i]
	major, ai := c>>5, c&0x1f
	if major >= majorTag {
		return 0, 0, false
	}
	s.i++
	switch {
	case ai < 24:
		return major, uint64(ai), true
	case ai == 24:
		if s.i+1 > len(s.b) {
			return 0, 0, false
		}
		arg = uint64(s.b[s.i])
		s.i++
		return major, arg, arg >= 24
	case ai == 25:
		if s.i+2 > len(s.b) {
			return 0, 0, false
		}
		arg = uint64(binary.BigEndian.Uint16(s.b[s.i:]))
		s.i += 2
		return major, arg, arg > math.MaxUint8
	case ai == 26:
		if s.i+4 > len(s.b) {
			return 0, 0, false
		}
		arg = uint64(binary.BigEndian.Uint32(s.b[s.i:]))
		s.i += 4
		return major, arg, arg > math.MaxUint16
	case ai == 27:
		if s.i+8 > len(s.b) {
			return 0, 0, false
		}
		arg = binary.BigEndian.Uint64(s.b[s.i:])
		s.i += 8
		return major, arg, arg > math.MaxUint32
	}
	return 0, 0, false // 28–30 reserved, 31 indefinite
}

// str reads the content of a byte or text string whose head said n bytes.
func (s *scanner) str(n uint64) ([]byte, bool) {
	if n > uint64(len(s.b)-s.i) {
		return nil, false
	}
	v := s.b[s.i : s.i+int(n)]
	s.i += int(n)
	return v, true
}

// text reads a text string of valid UTF-8.
func (s *scanner) text() ([]byte, bool) {
	major, n, ok := s.head()
	if !ok || major != majorText {
		return nil, false
	}
	v, ok := s.str(n)
	return v, ok && utf8.Valid(v)
}

// bytesOf reads a byte string of min to max bytes and returns a copy.
func (s *scanner) bytesOf(min, max uint64) ([]byte, bool) {
	major, n, ok := s.head()
	if !ok || major != majorBytes || n < min || n > max {
		return nil, false
	}
	v, ok := s.str(n)
	return bytes.Clone(v), ok
}

// item reads one data item inside a container at depth d (the record map is
// depth 1; a map or array inside a container at depth d is at depth d+1).
func (s *scanner) item(d int) bool {
	if s.i >= len(s.b) {
		return false
	}
	if s.b[s.i]>>5 == majorOther {
		return s.simple()
	}
	major, n, ok := s.head()
	if !ok {
		return false
	}
	switch major {
	case majorUint, majorNeg:
		return true
	case majorBytes:
		_, ok := s.str(n)
		return ok
	case majorText:
		v, ok := s.str(n)
		return ok && utf8.Valid(v)
	case majorArray:
		if d+1 > MaxRecordDepth {
			return false
		}
		for range n {
			if !s.item(d + 1) {
				return false
			}
		}
		return true
	case majorMap:
		if d+1 > MaxRecordDepth {
			return false
		}
		var prev []byte
		for range n {
			start := s.i
			if _, ok := s.text(); !ok {
				return false
			}
			key := s.b[start:s.i]
			if prev != nil && bytes.Compare(prev, key) >= 0 {
				return false
			}
			prev = key
			if !s.item(d + 1) {
				return false
			}
		}
		return true
	}
	return false
}

// simple reads an item of major type 7: false, true, null, or a float that
// is neither NaN nor ±Infinity and is the shortest encoding of its value.
func (s *scanner) simple() bool {
	var f float64
	start := s.i
	switch s.b[s.i] {
	case 0xf4, 0xf5, 0xf6:
		s.i++
		return true
	case 0xf9:
		if s.i+3 > len(s.b) {
			return false
		}
		f = float16to64(binary.BigEndian.Uint16(s.b[s.i+1:]))
		s.i += 3
	case 0xfa:
		if s.i+5 > len(s.b) {
			return false
		}
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(s.b[s.i+1:])))
		s.i += 5
	case 0xfb:
		if s.i+9 > len(s.b) {
			return false
		}
		f = math.Float64frombits(binary.BigEndian.Uint64(s.b[s.i+1:]))
		s.i += 9
	default:
		return false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return false
	}
	// Floats are rare in records: let the deterministic encoder say which
	// form is the shortest, so the rule is the encoder's by construction.
	again, err := encMode.Marshal(f)
	return err == nil && bytes.Equal(again, s.b[start:s.i])
}

// float16to64 is the value of an IEEE 754 half-precision float.
func float16to64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// isCanonicalUUIDBytes is IsCanonicalUUID without converting to a string.
func isCanonicalUUIDBytes(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
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
