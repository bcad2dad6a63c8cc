package client

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/apps/uid"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/internal/wire"
)

// Events of the application schemas (DESIGN.md §6): each builder returns the
// record type and the payload exactly as package apps checks it, with the
// optional keys left out when empty. PutEvents signs, solves the proof of
// work of and sends them.

// Event is one record of a schema chain before it is built.
type Event struct {
	Type    string
	Payload map[string]any
}

// With adds the optional `note` and `extra` of §6.1 (empty ones are left
// out) and returns the event.
func (e Event) With(note string, extra map[string]any) Event {
	if note != "" {
		e.Payload["note"] = note
	}
	if len(extra) > 0 {
		e.Payload["extra"] = extra
	}
	return e
}

// BallotOpen opens a ballot (§6.2); closes is unix ms, 0 for no deadline.
func BallotOpen(ballot, question string, choices []string, closes uint64) Event {
	p := map[string]any{"ballot": ballot, "question": question, "choices": choices}
	if closes != 0 {
		p["closes"] = closes
	}
	return Event{"ballot.open", p}
}

// BallotClose closes a ballot.
func BallotClose(ballot string) Event {
	return Event{"ballot.close", map[string]any{"ballot": ballot}}
}

// VoteRegister registers a voter; key is the voter's Ed25519 public key, or
// nil for a voter any writer may act for.
func VoteRegister(voterID string, key ed25519.PublicKey) Event {
	p := map[string]any{"voter_id": voterID}
	if key != nil {
		p["key"] = apps.KeyText(key)
	}
	return Event{"vote.register", p}
}

// VoteCast casts the voter eid's choice on a ballot.
func VoteCast(eid, ballot, choice string) Event {
	return Event{"vote.cast", map[string]any{"eid": eid, "ballot": ballot, "choice": choice}}
}

// VoteUncast takes back the voter's active cast on a ballot.
func VoteUncast(eid, ballot string) Event {
	return Event{"vote.uncast", map[string]any{"eid": eid, "ballot": ballot}}
}

// VoteWithdraw withdraws a voter for good.
func VoteWithdraw(eid string) Event {
	return Event{"vote.withdraw", map[string]any{"eid": eid}}
}

// FundOpen opens a fund (§6.3); publisher is the uid public key donors and
// targets are sealed to, "" for none.
func FundOpen(fund, name, unit, publisher string) Event {
	p := map[string]any{"fund": fund, "name": name, "unit": unit}
	if publisher != "" {
		p["publisher"] = publisher
	}
	return Event{"fund.open", p}
}

// DonationIn records a donation; donor (a uid value) and source are optional.
func DonationIn(fund string, amount uint64, donor *uid.Value, source string) Event {
	p := map[string]any{"fund": fund, "amount": amount}
	if donor != nil {
		p["donor"] = donor.Map()
	}
	if source != "" {
		p["source"] = source
	}
	return Event{"donation.in", p}
}

// DonationOut records a disbursement; target (a uid value) is optional.
func DonationOut(fund string, amount uint64, target *uid.Value, purpose string) Event {
	p := map[string]any{"fund": fund, "amount": amount, "purpose": purpose}
	if target != nil {
		p["target"] = target.Map()
	}
	return Event{"donation.out", p}
}

// FundClose closes a fund to donations.
func FundClose(fund string) Event {
	return Event{"fund.close", map[string]any{"fund": fund}}
}

// AccountOpen opens a resource account (§6.4); key (nil for none) is the
// only key that may then act for it.
func AccountOpen(account, unit string, key ed25519.PublicKey, owner string) Event {
	p := map[string]any{"account": account, "unit": unit}
	if key != nil {
		p["key"] = apps.KeyText(key)
	}
	if owner != "" {
		p["owner"] = owner
	}
	return Event{"account.open", p}
}

// Alloc adds amount to an account.
func Alloc(account string, amount uint64) Event {
	return Event{"alloc", map[string]any{"account": account, "amount": amount}}
}

// Transfer moves amount between two accounts of one unit.
func Transfer(from, to string, amount uint64) Event {
	return Event{"transfer", map[string]any{"from": from, "to": to, "amount": amount}}
}

// Consume uses up amount of an account.
func Consume(account string, amount uint64) Event {
	return Event{"consume", map[string]any{"account": account, "amount": amount}}
}

// AccountClose closes an account whose balance is 0.
func AccountClose(account string) Event {
	return Event{"account.close", map[string]any{"account": account}}
}

// PutEvents builds one record per event, signed by key when it is not nil
// (§4.2, binding this server and chain) and with the proof of work of the
// chain's pow_bits, and appends them all or nothing (rput). A vote.register's
// result carries the allocated `eid`, checked against its leaf hash.
func (c *Client) PutEvents(ctx context.Context, chain string, key ed25519.PrivateKey, receipt bool, evs ...Event) ([]PutResult, error) {
	bits, err := c.powBits(ctx, chain)
	if err != nil {
		return nil, err
	}
	opts := RecordOptions{Author: key, Origin: c.ChainOrigin(chain)}
	recs := make([][]byte, len(evs))
	for i, e := range evs {
		if recs[i], err = NewRecord(e.Payload, e.Type, bits, opts); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Type, err)
		}
	}
	res, err := c.PutRecords(ctx, chain, recs, receipt)
	if err != nil {
		return res, err
	}
	// The eid is recomputable from the entry's leaf hash (§6.2): check the
	// server's, and fill it in from a server that does not send it.
	for i, e := range evs {
		if e.Type != "vote.register" || len(res[i].Leaf) != 32 {
			continue
		}
		eid := apps.EID([32]byte(res[i].Leaf))
		if res[i].EID != "" && res[i].EID != eid {
			return res, fmt.Errorf("rput: the server answered eid %s for leaf %x, whose eid is %s", res[i].EID, res[i].Leaf, eid)
		}
		res[i].EID = eid
	}
	return res, nil
}

// View asks the server for a view of a schema chain (§6.6): the view as a
// decoded CBOR map (maps map[string]any, unsigned integers uint64) and the
// chain size it was computed at. An item that does not exist is ERR notfound.
func (c *Client) View(ctx context.Context, chain, name string, args map[string]any) (map[string]any, uint64, error) {
	raw, size, err := c.ViewRaw(ctx, chain, name, args)
	if err != nil {
		return nil, 0, err
	}
	var v map[string]any
	if err := canon.Unmarshal(raw, &v); err != nil {
		return nil, 0, fmt.Errorf("view: %w", err)
	}
	return v, size, nil
}

// ViewRaw is View with the view's CBOR bytes as the server sent them, for
// comparing with apps.ViewBytes.
func (c *Client) ViewRaw(ctx context.Context, chain, name string, args map[string]any) ([]byte, uint64, error) {
	callArgs := []any{chain, name}
	if args != nil {
		callArgs = append(callArgs, args)
	}
	vals, err := c.Call(ctx, "view", callArgs...)
	if err != nil {
		return nil, 0, err
	}
	var size uint64
	if len(vals) < 2 {
		return nil, 0, fmt.Errorf("view: reply has %d values, want 2", len(vals))
	}
	if err := wire.Unmarshal(vals[1], &size); err != nil {
		return nil, 0, fmt.Errorf("view: size: %w", err)
	}
	return []byte(vals[0]), size, nil
}
