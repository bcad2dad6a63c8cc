package verify

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/vserv/vserv/canon"
)

// EntryVersion is the only entry version (`v`) there is.
const EntryVersion = 1

// Entry is what the home appends for an accepted record (§4.3).
type Entry struct {
	V      uint64
	Seq    uint64
	Prev   [32]byte // leaf hash of entry Seq-1; zero for Seq 0
	Time   uint64   // server unix ms, never less than the previous entry's
	Chain  string
	Origin string // the home's server-id (32 hex characters)
	Record RawMessage
}

// entryWire is Entry as encoded. Core Deterministic Encoding orders the keys
// by their encoded bytes: v, seq, prev, time, chain, origin, record.
type entryWire struct {
	V      uint64          `cbor:"v"`
	Seq    uint64          `cbor:"seq"`
	Prev   []byte          `cbor:"prev"`
	Time   uint64          `cbor:"time"`
	Chain  string          `cbor:"chain"`
	Origin string          `cbor:"origin"`
	Record cbor.RawMessage `cbor:"record"`
}

var entryDecMode cbor.DecMode

func init() {
	opts := decMode.DecOptions()
	opts.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
	var err error
	entryDecMode, err = opts.DecMode()
	if err != nil {
		panic(fmt.Sprintf("verify: cbor entry decoder options: %v", err))
	}
}

// EncodeEntry returns the deterministic encoding of e. The record is embedded
// as it is: the caller must have accepted it with CheckRecord.
func EncodeEntry(e Entry) ([]byte, error) {
	if len(e.Record) == 0 {
		return nil, recordErr("record", ErrField, "missing")
	}
	return encMode.Marshal(entryWire{
		V: e.V, Seq: e.Seq, Prev: e.Prev[:], Time: e.Time,
		Chain: e.Chain, Origin: e.Origin, Record: e.Record,
	})
}

// AppendEntry appends the deterministic encoding of e to dst: the same bytes
// as EncodeEntry, written directly instead of through the generic encoder.
// e.Record must be a record already accepted by CheckRecord; it is copied
// as it is, unchecked.
func AppendEntry(dst []byte, e Entry) []byte {
	dst = append(dst, 0xa7, 0x61, 'v')
	dst = canon.AppendHead(dst, majorUint, e.V)
	dst = append(dst, 0x63, 's', 'e', 'q')
	dst = canon.AppendHead(dst, majorUint, e.Seq)
	dst = append(dst, 0x64, 'p', 'r', 'e', 'v', 0x58, 32)
	dst = append(dst, e.Prev[:]...)
	dst = append(dst, 0x64, 't', 'i', 'm', 'e')
	dst = canon.AppendHead(dst, majorUint, e.Time)
	dst = append(dst, 0x65, 'c', 'h', 'a', 'i', 'n')
	dst = canon.AppendHead(dst, majorText, uint64(len(e.Chain)))
	dst = append(dst, e.Chain...)
	dst = append(dst, 0x66, 'o', 'r', 'i', 'g', 'i', 'n')
	dst = canon.AppendHead(dst, majorText, uint64(len(e.Origin)))
	dst = append(dst, e.Origin...)
	dst = append(dst, 0x66, 'r', 'e', 'c', 'o', 'r', 'd')
	return append(dst, e.Record...)
}

// EntrySize is the length of AppendEntry's encoding of e.
func EntrySize(e Entry) int {
	return 1 + 2 + headSize(e.V) + 4 + headSize(e.Seq) + 5 + 2 + 32 + 5 + headSize(e.Time) +
		6 + headSize(uint64(len(e.Chain))) + len(e.Chain) + 7 + headSize(uint64(len(e.Origin))) + len(e.Origin) +
		7 + len(e.Record)
}

// headSize is the length of the shortest head with argument n.
func headSize(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// ParseEntry decodes an entry strictly: exactly the seven keys with their
// types, v = 1, a valid chain name and server-id, a record that passes
// CheckRecord, and b must be its own deterministic encoding. The returned
// Record aliases b.
func ParseEntry(b []byte) (*Entry, *Record, error) {
	// 0xa7 is "map of 7 pairs": with duplicates refused and unknown keys an
	// error, it means all seven keys are present.
	if len(b) == 0 || b[0] != 0xa7 {
		return nil, nil, recordErr("entry", ErrMalformed, "not a cbor map of 7 keys")
	}
	var w entryWire
	if err := entryDecMode.Unmarshal(b, &w); err != nil {
		return nil, nil, recordErr("entry", ErrMalformed, "%v", err)
	}
	if w.V != EntryVersion {
		return nil, nil, recordErr("entry.v", ErrField, "version %d, want %d", w.V, EntryVersion)
	}
	if len(w.Prev) != 32 {
		return nil, nil, recordErr("entry.prev", ErrField, "must be 32 bytes")
	}
	if !ValidChainName(w.Chain) {
		return nil, nil, recordErr("entry.chain", ErrField, "bad chain name %q", w.Chain)
	}
	if !ValidServerID(w.Origin) {
		return nil, nil, recordErr("entry.origin", ErrField, "bad server-id %q", w.Origin)
	}
	rec, err := CheckRecord(w.Record)
	if err != nil {
		return nil, nil, err
	}
	again, err := encMode.Marshal(w)
	if err != nil {
		return nil, nil, recordErr("entry", ErrMalformed, "re-encode: %v", err)
	}
	if !bytes.Equal(again, b) {
		return nil, nil, recordErr("entry", ErrNonCanonical, "not in core deterministic encoding")
	}
	e := &Entry{V: w.V, Seq: w.Seq, Time: w.Time, Chain: w.Chain, Origin: w.Origin, Record: w.Record}
	copy(e.Prev[:], w.Prev)
	return e, rec, nil
}

// LeafHash is the RFC 6962 leaf hash of an entry: SHA-256(0x00 ‖ entry).
func LeafHash(entry []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(entry)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NodeHash is the RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
func NodeHash(left, right []byte) []byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], left)
	copy(buf[33:], right)
	h := sha256.Sum256(buf[:])
	return h[:]
}

// EmptyRoot is the root of the empty tree: SHA-256 of nothing.
var EmptyRoot = sha256.Sum256(nil)

// ValidChainName reports whether name matches [a-z0-9][a-z0-9_-]{0,63}.
func ValidChainName(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// ValidServerID reports whether id is 32 lowercase hex characters.
func ValidServerID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ServerIDFromKey derives a server-id from the server's first identity key:
// lowercase hex of SHA-256(key)[:16] (§2.4).
func ServerIDFromKey(pub []byte) string {
	h := sha256.Sum256(pub)
	return fmt.Sprintf("%x", h[:16])
}

// OriginLine is the checkpoint origin of a chain: vserv/<server-id>/<chain>.
func OriginLine(serverID, chain string) string {
	return "vserv/" + serverID + "/" + chain
}
