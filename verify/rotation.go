package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// Identity rotation (DESIGN.md §2.4). A server's identity key signs its
// checkpoints; when it is replaced, the old key signs a record of type
// key.rotate naming the new key, the server appends it to its public chain
// `keys`, and the checkpoint that first covers it is signed by the old key.
// Whoever trusts the old key can then follow the rotation through that
// entry's receipt, verified with the key it replaces.
//
// The history is anchored: the server-id is derived from the server's FIRST
// identity key, so the first rotation must be signed by the key whose
// SHA-256 starts with the server-id, and each later one by the key the
// previous one introduced. Forging a history therefore needs the private key
// of the link it replaces.

// RotateType is the record type of an identity rotation.
const RotateType = "key.rotate"

// KeysChain is the public, server-written chain that holds rotations.
const KeysChain = "keys"

// Errors about rotations.
var (
	ErrBadRotation    = errors.New("not a valid key rotation record")
	ErrBrokenRotation = errors.New("key rotations do not link")
)

// NewRotationRecord builds the key.rotate record by which old hands over to
// next: payload {"new": <next as padded standard base64>}, author = old's
// public key, and sig by old for the origin vserv/<serverID>/keys.
func NewRotationRecord(serverID, id string, createdMs uint64, old ed25519.PrivateKey, next ed25519.PublicKey) ([]byte, error) {
	if len(next) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: new key must be 32 bytes", ErrBadRotation)
	}
	rec, err := encMode.Marshal(map[string]any{
		"id":      id,
		"type":    RotateType,
		"created": createdMs,
		"payload": map[string]any{"new": base64.StdEncoding.EncodeToString(next)},
	})
	if err != nil {
		return nil, fmt.Errorf("encode rotation record: %w", err)
	}
	signed, err := SignRecord(OriginLine(serverID, KeysChain), rec, old)
	if err != nil {
		return nil, err
	}
	if _, _, err := ParseRotation(serverID, signed); err != nil {
		return nil, err
	}
	return signed, nil
}

// ParseRotation checks a key.rotate record of the server serverID and
// returns the key it retires (its author) and the key it introduces. The
// record must be valid (CheckRecord), of type key.rotate, signed by its
// author for the origin vserv/<serverID>/keys, with the payload exactly
// {"new": <32-byte key as padded standard base64>}, naming a key other than
// the author.
func ParseRotation(serverID string, record []byte) (old, next ed25519.PublicKey, err error) {
	rec, err := CheckRecord(record)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadRotation, err)
	}
	return parseRotation(serverID, rec)
}

func parseRotation(serverID string, rec *Record) (old, next ed25519.PublicKey, err error) {
	if !ValidServerID(serverID) {
		return nil, nil, fmt.Errorf("%w: bad server-id %q", ErrBadRotation, serverID)
	}
	if !rec.HasType || rec.Type != RotateType {
		return nil, nil, fmt.Errorf("%w: type %q, want %q", ErrBadRotation, rec.Type, RotateType)
	}
	if err := rec.CheckSig(OriginLine(serverID, KeysChain)); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadRotation, err)
	}
	p, ok := rec.Payload.(map[string]any)
	if !ok || len(p) != 1 {
		return nil, nil, fmt.Errorf("%w: payload must be exactly {\"new\": key}", ErrBadRotation)
	}
	text, ok := p["new"].(string)
	if !ok {
		return nil, nil, fmt.Errorf("%w: payload must be exactly {\"new\": key}", ErrBadRotation)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || len(b) != ed25519.PublicKeySize || base64.StdEncoding.EncodeToString(b) != text {
		return nil, nil, fmt.Errorf("%w: new key %q is not 32 bytes in padded standard base64", ErrBadRotation, text)
	}
	if bytes.Equal(b, rec.Author) {
		return nil, nil, fmt.Errorf("%w: the new key is the old one", ErrBadRotation)
	}
	return ed25519.PublicKey(bytes.Clone(rec.Author)), ed25519.PublicKey(b), nil
}

// KeyHistory walks the key.rotate entries among keysChainEntries (the
// entries of the server's keys chain, in seq order; other record types are
// skipped) and returns every identity key the server has had, oldest first:
// [k0, k1, ..., kn]. The first rotation must be signed by the key from which
// serverID is derived, and each later one by the key the one before
// introduced; no key may come back. With no rotations it returns nil: the
// caller's current key is then the only one.
func KeyHistory(serverID string, keysChainEntries [][]byte) ([]ed25519.PublicKey, error) {
	if !ValidServerID(serverID) {
		return nil, fmt.Errorf("%w: bad server-id %q", ErrBadRotation, serverID)
	}
	var history []ed25519.PublicKey
	var lastSeq uint64
	for i, b := range keysChainEntries {
		e, rec, err := ParseEntry(b)
		if err != nil {
			return nil, fmt.Errorf("%w: keys entry %d: %w", ErrBadRotation, i, err)
		}
		if e.Chain != KeysChain || e.Origin != serverID {
			return nil, fmt.Errorf("%w: entry %d is of chain %q of server %s, want %q of %s",
				ErrBadRotation, e.Seq, e.Chain, e.Origin, KeysChain, serverID)
		}
		if i > 0 && e.Seq <= lastSeq {
			return nil, fmt.Errorf("%w: entry %d follows entry %d", ErrBrokenRotation, e.Seq, lastSeq)
		}
		lastSeq = e.Seq
		if rec.Type != RotateType {
			continue
		}
		old, next, err := parseRotation(serverID, rec)
		if err != nil {
			return nil, fmt.Errorf("keys entry %d: %w", e.Seq, err)
		}
		switch {
		case history == nil && ServerIDFromKey(old) != serverID:
			return nil, fmt.Errorf("%w: the first rotation (entry %d) is signed by a key that is not the server's first key", ErrBrokenRotation, e.Seq)
		case history != nil && !bytes.Equal(old, history[len(history)-1]):
			return nil, fmt.Errorf("%w: the rotation at entry %d is signed by a key that the rotation before did not introduce", ErrBrokenRotation, e.Seq)
		case history == nil:
			history = append(history, old)
		}
		for _, k := range history {
			if bytes.Equal(k, next) {
				return nil, fmt.Errorf("%w: the rotation at entry %d returns to a retired key", ErrBrokenRotation, e.Seq)
			}
		}
		history = append(history, next)
	}
	return history, nil
}

// FollowRotations is how a client that trusts an identity key of server
// serverID learns a newer one from the rotation receipts `id` returns
// (oldest first). Receipts older than the trusted key are skipped until the
// first one authored by it; from there every receipt must verify with the
// key trusted at that point (the key it retires, never the one it
// introduces), be a key.rotate entry of the keys chain authored by that key,
// and hand over to the next. It returns the key the last receipt introduces,
// and an error if none starts from trusted.
func FollowRotations(trusted ed25519.PublicKey, serverID string, receipts [][]byte) (ed25519.PublicKey, error) {
	if len(trusted) != ed25519.PublicKeySize {
		return nil, errors.New("follow rotations: trusted key must be 32 bytes")
	}
	if !ValidServerID(serverID) {
		return nil, fmt.Errorf("follow rotations: bad server-id %q", serverID)
	}
	steps := 0
	for i, r := range receipts {
		// Unverified, only to find where the trusted key's part begins; the
		// receipt is verified in full before anything is taken from it.
		author, err := receiptAuthor(r)
		if err != nil {
			return nil, fmt.Errorf("rotation receipt %d: %w", i, err)
		}
		if !bytes.Equal(author, trusted) {
			if steps == 0 {
				continue
			}
			return nil, fmt.Errorf("%w: receipt %d is not authored by the key receipt %d introduced", ErrBrokenRotation, i, i-1)
		}
		v, err := VerifyReceipt(r, ReceiptOptions{ServerKey: trusted, ServerID: serverID})
		if err != nil {
			return nil, fmt.Errorf("rotation receipt %d: %w", i, err)
		}
		if v.Entry.Chain != KeysChain {
			return nil, fmt.Errorf("%w: receipt %d is of chain %q, not %q", ErrBadRotation, i, v.Entry.Chain, KeysChain)
		}
		old, next, err := parseRotation(serverID, v.Record)
		if err != nil {
			return nil, fmt.Errorf("rotation receipt %d: %w", i, err)
		}
		if !bytes.Equal(old, trusted) {
			return nil, fmt.Errorf("%w: receipt %d retires another key", ErrBrokenRotation, i)
		}
		trusted = next
		steps++
	}
	if steps == 0 {
		return nil, fmt.Errorf("%w: no rotation receipt starts from the trusted key", ErrBrokenRotation)
	}
	return trusted, nil
}

// receiptAuthor is the `author` of the record in a receipt's entry, read
// without checking anything but the entry's format.
func receiptAuthor(receipt []byte) ([]byte, error) {
	p, err := parseReceipt(receipt)
	if err != nil {
		return nil, err
	}
	_, rec, err := ParseEntry(p.entry)
	if err != nil {
		return nil, fmt.Errorf("%w: entry: %w", ErrBadReceipt, err)
	}
	return rec.Author, nil
}
