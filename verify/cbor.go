package verify

import "github.com/vserv/vserv/canon"

// The CBOR modes of the formats are the project's one dialect (package
// canon): deterministic encoding, strict decoding.
var (
	encMode = canon.EncMode()
	decMode = canon.DecMode()
)

// RawMessage is a CBOR item kept as its exact bytes.
type RawMessage = canon.RawMessage
