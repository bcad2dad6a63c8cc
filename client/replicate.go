package client

import (
	"context"
)

// Mirroring calls (docs/protocol.md §11): what a mirror asks of a home or
// of another mirror (ihave, rentries) and what a home sends to its mirrors
// (rpush). They are for peer accounts signed in with PeerAuth; rentries of
// a public chain needs no login.

// ChainDesc is a chain as the third value of an `ihave` answer describes
// it: what a mirror needs to create the chain on its first batch, and how
// far the answering server is from the home.
type ChainDesc struct {
	Hops      uint64   `cbor:"hops"` // 0: the answering server is the home
	Public    bool     `cbor:"public"`
	PoWBits   uint64   `cbor:"pow_bits"`
	Schema    string   `cbor:"schema"`
	Authority []string `cbor:"authority"` // authority keys, text form
}

// IHave calls `ihave origin chain size`: "I hold chain (of home origin, a
// server-id) up to size". It returns the size the server holds, its newest
// checkpoint of the chain (the signed note, with any cosignature lines)
// and the chain's description.
func (c *Client) IHave(ctx context.Context, origin, chain string, size uint64) (uint64, string, *ChainDesc, error) {
	vals, err := c.Call(ctx, "ihave", origin, chain, size)
	if err != nil {
		return 0, "", nil, err
	}
	var (
		theirs uint64
		cp     string
		desc   ChainDesc
	)
	if err := decode("ihave", vals, &theirs, &cp, &desc); err != nil {
		return 0, "", nil, err
	}
	return theirs, cp, &desc, nil
}

// Entries calls `rentries chain from to`: the entries [from, to) of chain
// (a name, or a full origin vserv/<server-id>/<name> for a mirrored one),
// as stored. The server may answer fewer (at most 1,000, or 8 MiB): the
// caller asks again from where the answer ends.
func (c *Client) Entries(ctx context.Context, chain string, from, to uint64) ([][]byte, error) {
	vals, err := c.Call(ctx, "rentries", chain, from, to)
	if err != nil {
		return nil, err
	}
	var entries [][]byte
	return entries, decode("rentries", vals, &entries)
}

// PushBatch is one `rpush`: entries [From, From+len(Entries)) of the chain
// Chain of home Origin, the checkpoint they lead to and the consistency
// proof (docs/protocol.md §11 "Mirroring"), and the pusher's hop count for
// the chain (0: the pusher is the home).
type PushBatch struct {
	Origin     string
	Chain      string
	From       uint64
	Entries    [][]byte
	Checkpoint string
	Proof      [][]byte
	Hops       uint64
	// Desc describes the chain, so that a mirror that does not hold it
	// yet creates it with this batch (nil: the mirror must hold it).
	Desc *ChainDesc
}

// Push calls `rpush`. It returns the size the mirror holds afterwards and
// its cosignature line over the checkpoint.
func (c *Client) Push(ctx context.Context, b PushBatch) (uint64, string, error) {
	entries, proof := b.Entries, b.Proof
	if entries == nil {
		entries = [][]byte{}
	}
	if proof == nil {
		proof = [][]byte{}
	}
	args := []any{b.Origin, b.Chain, b.From, entries, b.Checkpoint, proof, b.Hops}
	if b.Desc != nil {
		args = append(args, map[string]any{"public": b.Desc.Public, "pow_bits": b.Desc.PoWBits, "schema": b.Desc.Schema, "authority": nonNil(b.Desc.Authority)})
	}
	vals, err := c.Call(ctx, "rpush", args...)
	if err != nil {
		return 0, "", err
	}
	var (
		size  uint64
		cosig string
	)
	if err := decode("rpush", vals, &size, &cosig); err != nil {
		return 0, "", err
	}
	return size, cosig, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
