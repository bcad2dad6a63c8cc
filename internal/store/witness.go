package store

// WitnessState is what this server, as a C2SP tlog-witness (docs/protocol.md
// "Witness endpoint"), holds for one log origin: the size and root of the
// newest checkpoint it cosigned, and that checkpoint's signed note.
type WitnessState struct {
	Size uint64
	Root [32]byte
	Note []byte
}

// WitnessFork is evidence that a log signed two inconsistent checkpoints: the
// note the witness held and the correctly signed note it was offered, with
// why they cannot both be true (same size other root, or a consistency
// proof that does not verify).
type WitnessFork struct {
	Origin  string `cbor:"origin"`
	Ms      uint64 `cbor:"ms"` // when the witness saw it (unix ms)
	Reason  string `cbor:"reason"`
	Held    []byte `cbor:"held"`
	Offered []byte `cbor:"offered"`
}

// WitnessReader reads the witness state.
type WitnessReader interface {
	// WitnessState returns the state held for origin; ok is false when the
	// witness never cosigned a checkpoint of origin.
	WitnessState(origin string) (st WitnessState, ok bool, err error)
	// WitnessForks calls fn for every fork recorded, oldest first.
	WitnessForks(fn func(WitnessFork) error) error
}

// WitnessWriter changes the witness state. The size check and the update of
// one submission are one transaction (C2SP tlog-witness: else two requests
// could roll the state back).
type WitnessWriter interface {
	PutWitnessState(origin string, st WitnessState) error
	AddWitnessFork(f WitnessFork) error
}
