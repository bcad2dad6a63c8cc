package apps

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/vserv/vserv/apps/uid"
)

// Limits of §6.1–6.3.
const (
	MaxNote       = 1024 // bytes of the optional `note`
	MaxVoterID    = 128  // bytes of a voter_id
	MinChoices    = 2
	MaxChoices    = 64
	MaxChoiceText = 256 // bytes of one choice
)

// kind is the type a payload field must have.
type kind int

const (
	kName      kind = iota // [a-z0-9][a-z0-9_-]{0,63}
	kText                  // non-empty text
	kAmount                // uint > 0
	kUint                  // any uint
	kKey                   // Ed25519 public key text (§2.4)
	kVoterID               // text, 1–128 bytes, no control characters
	kChoices               // 2–64 distinct non-empty texts, each ≤ 256 bytes
	kEID                   // 16 lowercase base32 characters
	kUID                   // uid value (§6.5)
	kPublisher             // uid public key text (§6.5)
)

type field struct {
	key      string
	kind     kind
	optional bool
}

func req(k string, kd kind) field { return field{key: k, kind: kd} }
func opt(k string, kd kind) field { return field{key: k, kind: kd, optional: true} }

// payload is a checked payload: every value has its field's kind.
type payload map[string]any

func (p payload) str(k string) string { s, _ := p[k].(string); return s }
func (p payload) u64(k string) uint64 { u, _ := p[k].(uint64); return u }
func (p payload) has(k string) bool   { _, ok := p[k]; return ok }

// checkPayload enforces §6.1's payload rules: a map with exactly the listed
// keys (optional ones may be absent) plus optional `note` and `extra`, each
// of its kind.
func checkPayload(typ string, x any, fields []field) (payload, error) {
	m, ok := x.(map[string]any)
	if !ok {
		return nil, refuse(typ, "payload", "payload must be a map")
	}
	for k := range m {
		known := k == "note" || k == "extra"
		for _, f := range fields {
			known = known || f.key == k
		}
		if !known {
			return nil, refuse(typ, "payload", "unknown payload key %q", k)
		}
	}
	if v, ok := m["note"]; ok {
		s, ok := v.(string)
		if !ok || !utf8.ValidString(s) || len(s) > MaxNote {
			return nil, refuse(typ, "payload", "note must be text of at most %d bytes", MaxNote)
		}
	}
	if v, ok := m["extra"]; ok {
		if _, ok := v.(map[string]any); !ok {
			return nil, refuse(typ, "payload", "extra must be a map")
		}
	}
	for _, f := range fields {
		v, ok := m[f.key]
		if !ok {
			if f.optional {
				continue
			}
			return nil, refuse(typ, "payload", "%s is required", f.key)
		}
		if msg := checkKind(f.kind, v); msg != "" {
			return nil, refuse(typ, "payload", "%s %s", f.key, msg)
		}
	}
	return payload(m), nil
}

// checkKind says what is wrong with v as a value of kind k; "" if nothing.
func checkKind(k kind, v any) string {
	switch k {
	case kName:
		if s, ok := v.(string); !ok || !ValidName(s) {
			return "must be a name matching [a-z0-9][a-z0-9_-]{0,63}"
		}
	case kText:
		if s, ok := v.(string); !ok || s == "" || !utf8.ValidString(s) {
			return "must be non-empty text"
		}
	case kAmount:
		if u, ok := v.(uint64); !ok || u == 0 {
			return "must be an unsigned integer greater than 0"
		}
	case kUint:
		if _, ok := v.(uint64); !ok {
			return "must be an unsigned integer"
		}
	case kKey:
		s, ok := v.(string)
		if !ok {
			return "must be an Ed25519 public key as padded standard base64 (44 characters)"
		}
		if _, err := ParseKey(s); err != nil {
			return err.Error()
		}
	case kVoterID:
		if s, ok := v.(string); !ok || !validVoterID(s) {
			return fmt.Sprintf("must be text of 1 to %d bytes without control characters", MaxVoterID)
		}
	case kChoices:
		return checkChoices(v)
	case kEID:
		if s, ok := v.(string); !ok || !ValidEID(s) {
			return "must be an electronic ID (16 lowercase base32 characters)"
		}
	case kUID:
		if _, err := uid.CheckValue(v); err != nil {
			return fmt.Sprintf("must be a uid value {uid, sealed?}: %v", err)
		}
	case kPublisher:
		s, ok := v.(string)
		if !ok {
			return "must be a uid public key as text"
		}
		if _, err := uid.ParsePublicKey(s); err != nil {
			return err.Error()
		}
	default:
		return "has an unknown kind"
	}
	return ""
}

func checkChoices(v any) string {
	a, ok := v.([]any)
	if !ok || len(a) < MinChoices || len(a) > MaxChoices {
		return fmt.Sprintf("must be an array of %d to %d texts", MinChoices, MaxChoices)
	}
	seen := make(map[string]bool, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok || s == "" || len(s) > MaxChoiceText || !utf8.ValidString(s) {
			return fmt.Sprintf("must each be non-empty text of at most %d bytes", MaxChoiceText)
		}
		if seen[s] {
			return fmt.Sprintf("must be distinct (%q repeats)", s)
		}
		seen[s] = true
	}
	return ""
}

// ValidName reports whether s matches [a-z0-9][a-z0-9_-]{0,63}, the form of
// ballot, fund and account names (§6.1).
func ValidName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

func validVoterID(s string) bool {
	if len(s) < 1 || len(s) > MaxVoterID || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
