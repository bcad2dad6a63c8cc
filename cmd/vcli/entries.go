package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vserv/vserv/verify"
)

// Shapes in which vcli shows ledger data: entries as JSON objects with the
// decoded record, and the exact entry bytes alongside (base64) so that a
// reader can hash what the server hashed.

type entryJSON struct {
	Seq    uint64     `json:"seq"`
	Time   uint64     `json:"time"`
	Chain  string     `json:"chain"`
	Origin string     `json:"origin"`
	Prev   string     `json:"prev"`
	Leaf   string     `json:"leaf"`
	Record recordJSON `json:"record"`
	Entry  []byte     `json:"entry"`
}

type recordJSON struct {
	ID      string `json:"id"`
	Type    string `json:"type,omitempty"`
	Created uint64 `json:"created,omitempty"`
	Author  []byte `json:"author,omitempty"`
	Sig     []byte `json:"sig,omitempty"`
	PoW     []byte `json:"pow,omitempty"`
	Payload any    `json:"payload,omitempty"`
}

// parseEntryJSON decodes an entry for display. An entry the strict parser
// refuses is an error: vcli shows only what it could verify the shape of.
func parseEntryJSON(b []byte) (*entryJSON, error) {
	e, r, err := verify.ParseEntry(b)
	if err != nil {
		return nil, fmt.Errorf("entry from the server does not parse: %w", err)
	}
	leaf := verify.LeafHash(b)
	return &entryJSON{
		Seq: e.Seq, Time: e.Time, Chain: e.Chain, Origin: e.Origin,
		Prev: hex.EncodeToString(e.Prev[:]), Leaf: hex.EncodeToString(leaf[:]),
		Record: recordJSON{ID: r.ID, Type: r.Type, Created: r.Created, Author: r.Author, Sig: r.Sig, PoW: r.PoW,
			Payload: jsonable(r.Payload)},
		Entry: b,
	}, nil
}

// human is the one-line form: seq, server time, id, type, payload.
func (e *entryJSON) human() string {
	t := time.UnixMilli(int64(e.Time)).UTC().Format("2006-01-02T15:04:05.000Z")
	typ := e.Record.Type
	if typ == "" {
		typ = "-"
	}
	signed := ""
	if e.Record.Author != nil {
		signed = " signed-by " + base64.StdEncoding.EncodeToString(e.Record.Author)
	}
	return fmt.Sprintf("%d %s %s %s%s %s", e.Seq, t, e.Record.ID, typ, signed, compactJSON(e.Record.Payload))
}

// compactJSON renders v on one line without escaping <, > and & (payloads
// are shown to people, not embedded in HTML).
func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// parseTime reads a --from/--to value: unix milliseconds, or an RFC 3339 time.
func parseTime(s string) (uint64, error) {
	if ms, err := strconv.ParseUint(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, usagef("time %q: want unix milliseconds or an RFC 3339 time like 2026-01-31T12:00:00Z", s)
	}
	if t.Before(time.UnixMilli(0)) {
		return 0, usagef("time %q is before 1970", s)
	}
	return uint64(t.UnixMilli()), nil
}

// readSignKey reads a record signing key: a file holding the 32-byte Ed25519
// seed, raw (like a server's identity.key) or as base64 text.
func readSignKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("signing key: %v", err)
	}
	if len(b) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(b), nil
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, usagef("signing key %s: want a 32-byte Ed25519 seed, raw or in base64", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
