package verify

import (
	"errors"
	"fmt"
)

// Sentinels a caller maps to protocol answers. Every error this package
// returns about a record is a *RecordError wrapping one of them, so
// errors.Is(err, ErrTooLarge) selects ERR limit and anything else ERR invalid.
var (
	ErrTooLarge     = errors.New("too large")
	ErrMalformed    = errors.New("malformed cbor")
	ErrNonCanonical = errors.New("not in core deterministic encoding")
	ErrField        = errors.New("bad field")
	ErrUnsigned     = errors.New("no signature")
	ErrBadSignature = errors.New("bad signature")
	ErrBadPoW       = errors.New("proof of work does not meet the chain's bits")
)

// RecordError says which field of a record (or entry) broke which rule. Field
// is empty for rules about the whole item.
type RecordError struct {
	Field  string
	Reason string
	Err    error // one of the sentinels above
}

func (e *RecordError) Error() string {
	if e.Field == "" {
		return "record: " + e.Reason
	}
	return fmt.Sprintf("record %s: %s", e.Field, e.Reason)
}

func (e *RecordError) Unwrap() error { return e.Err }

func recordErr(field string, sentinel error, format string, args ...any) *RecordError {
	return &RecordError{Field: field, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// Errors about proofs, checkpoints and receipts.
var (
	ErrBadNote       = errors.New("malformed checkpoint note")
	ErrBadReceipt    = errors.New("malformed receipt")
	ErrNotIncluded   = errors.New("inclusion proof does not match the checkpoint")
	ErrInconsistent  = errors.New("checkpoints are not consistent")
	ErrWrongOrigin   = errors.New("wrong origin")
	ErrQuorum        = errors.New("not enough witness cosignatures")
	ErrNoLogSig      = errors.New("no valid signature by the server key")
	ErrWitnessFailed = errors.New("a listed witness's cosignature does not verify")
)
