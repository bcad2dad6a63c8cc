package apps_test

import (
	"crypto/ed25519"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/apps/uid"
)

const t0 = 1_700_000_000_000 // the ledger's first time

var (
	keyA = testKey("authority")
	keyV = testKey("voter")
	keyX = testKey("stranger")
)

type step struct {
	typ string
	p   any
	by  ed25519.PrivateKey
	at  uint64 // entry time; 0: one second after the previous entry
}

type m = map[string]any

func ballot(extra m) step {
	p := m{"ballot": "b1", "question": "Adopt the budget?", "choices": []any{"yes", "no"}}
	for k, v := range extra {
		p[k] = v
	}
	return step{typ: "ballot.open", p: p}
}

var (
	openB1   = ballot(nil)
	regAlice = step{typ: "vote.register", p: m{"voter_id": "alice"}}
	regKeyed = step{typ: "vote.register", p: m{"voter_id": "vera", "key": pubText(keyV)}}
	castYes  = step{typ: "vote.cast", p: m{"eid": "$v0", "ballot": "b1", "choice": "yes"}}
	uncast   = step{typ: "vote.uncast", p: m{"eid": "$v0", "ballot": "b1"}}
	withdraw = step{typ: "vote.withdraw", p: m{"eid": "$v0"}}
	closeB1  = step{typ: "ballot.close", p: m{"ballot": "b1"}}

	fund1 = step{typ: "fund.open", p: m{"fund": "f1", "name": "Relief", "unit": "EUR-cent"}}
	give  = func(n any) step { return step{typ: "donation.in", p: m{"fund": "f1", "amount": n}} }
	spend = func(n any) step {
		return step{typ: "donation.out", p: m{"fund": "f1", "amount": n, "purpose": "tents"}}
	}
	closeF1 = step{typ: "fund.close", p: m{"fund": "f1"}}

	acct  = func(name, unit string) step { return step{typ: "account.open", p: m{"account": name, "unit": unit}} }
	keyed = step{typ: "account.open", p: m{"account": "k", "unit": "cpu-s", "key": pubText(keyV)}}
	alloc = func(name string, n any) step { return step{typ: "alloc", p: m{"account": name, "amount": n}} }
	xfer  = func(from, to string, n any) step {
		return step{typ: "transfer", p: m{"from": from, "to": to, "amount": n}}
	}
	use    = func(name string, n any) step { return step{typ: "consume", p: m{"account": name, "amount": n}} }
	closeA = func(name string) step { return step{typ: "account.close", p: m{"account": name}} }
)

func with(s step, k string, v any) step {
	p := m{}
	for kk, vv := range s.p.(m) {
		p[kk] = vv
	}
	if v == nil {
		delete(p, k)
	} else {
		p[k] = v
	}
	s.p = p
	return s
}

func signed(s step, k ed25519.PrivateKey) step { s.by = k; return s }
func at(s step, t uint64) step                 { s.at = t; return s }

var validUID = func() m {
	v, _, err := uid.New(nil, "Jane Doe, 1 Main St")
	if err != nil {
		panic(err)
	}
	return v.Map()
}()

// TestRules runs every rule of §6.1–6.4 once accepted and once refused: the
// setup must be accepted, then the last step is accepted (rule "") or
// refused by the named rule, leaving the state unchanged.
func TestRules(t *testing.T) {
	long := strings.Repeat("x", 257)
	choices65 := make([]any, 65)
	for i := range choices65 {
		choices65[i] = string(rune('a'+i%26)) + strings.Repeat("z", i/26)
	}
	tests := []struct {
		name      string
		schema    string
		authority bool // the chain has keyA as its authority key
		setup     []step
		do        step
		rule      string // "" = accepted
		needs     apps.Right
	}{
		// §6.1 common rules, on vote
		{name: "UnknownTypeIsRefused", schema: "vote", do: step{typ: "vote.recast", p: m{}}, rule: "type"},
		{name: "EmptyTypeIsRefused", schema: "vote", do: step{typ: "", p: m{}}, rule: "type"},
		{name: "TypeOfAnotherSchemaIsRefused", schema: "vote", do: fund1, rule: "type"},
		{name: "PayloadNotAMapIsRefused", schema: "vote", do: step{typ: "ballot.open", p: []any{"b1"}}, rule: "payload"},
		{name: "PayloadTextIsRefused", schema: "vote", do: step{typ: "ballot.open", p: "b1"}, rule: "payload"},
		{name: "UnknownPayloadKeyIsRefused", schema: "vote", do: ballot(m{"colour": "red"}), rule: "payload"},
		{name: "MissingRequiredKeyIsRefused", schema: "vote", do: with(openB1, "question", nil), rule: "payload"},
		{name: "NoteOf1024BytesIsAccepted", schema: "vote", do: ballot(m{"note": strings.Repeat("n", 1024)}), needs: apps.Manage},
		{name: "NoteOf1025BytesIsRefused", schema: "vote", do: ballot(m{"note": strings.Repeat("n", 1025)}), rule: "payload"},
		{name: "NoteNotTextIsRefused", schema: "vote", do: ballot(m{"note": []byte("n")}), rule: "payload"},
		{name: "ExtraMapIsAccepted", schema: "vote", do: ballot(m{"extra": m{"source": "city", "n": 3}}), needs: apps.Manage},
		{name: "ExtraNotAMapIsRefused", schema: "vote", do: ballot(m{"extra": []any{1}}), rule: "payload"},
		{name: "UppercaseNameIsRefused", schema: "vote", do: ballot(m{"ballot": "B1"}), rule: "payload"},
		{name: "NameStartingWithDashIsRefused", schema: "vote", do: ballot(m{"ballot": "-b"}), rule: "payload"},
		{name: "NameOf64IsAccepted", schema: "vote", do: ballot(m{"ballot": strings.Repeat("b", 64)}), needs: apps.Manage},
		{name: "NameOf65IsRefused", schema: "vote", do: ballot(m{"ballot": strings.Repeat("b", 65)}), rule: "payload"},
		{name: "NameNotTextIsRefused", schema: "vote", do: ballot(m{"ballot": 7}), rule: "payload"},
		{name: "AuthorityEventUnsignedOnKeyedChainIsRefused", schema: "vote", authority: true, do: openB1, rule: "authority"},
		{name: "AuthorityEventByStrangerIsRefused", schema: "vote", authority: true, do: signed(openB1, keyX), rule: "authority"},
		{name: "AuthorityEventByAuthorityKeyIsAccepted", schema: "vote", authority: true, do: signed(openB1, keyA), needs: apps.Manage},
		{name: "SignedAuthorityEventOnKeylessChainIsAccepted", schema: "vote", do: signed(openB1, keyX), needs: apps.Manage},

		// §6.2 vote: ballot.open
		{name: "BallotOpenIsAccepted", schema: "vote", do: ballot(m{"closes": uint64(t0 + 60_000)}), needs: apps.Manage},
		{name: "BallotOpenTwiceIsRefused", schema: "vote", setup: []step{openB1}, do: openB1, rule: "ballot-new"},
		{name: "BallotOneChoiceIsRefused", schema: "vote", do: ballot(m{"choices": []any{"yes"}}), rule: "payload"},
		{name: "Ballot64ChoicesIsAccepted", schema: "vote", do: ballot(m{"choices": choices65[:64]}), needs: apps.Manage},
		{name: "Ballot65ChoicesIsRefused", schema: "vote", do: ballot(m{"choices": choices65}), rule: "payload"},
		{name: "BallotRepeatedChoiceIsRefused", schema: "vote", do: ballot(m{"choices": []any{"yes", "yes"}}), rule: "payload"},
		{name: "BallotChoiceOf257BytesIsRefused", schema: "vote", do: ballot(m{"choices": []any{"yes", long}}), rule: "payload"},
		{name: "BallotEmptyChoiceIsRefused", schema: "vote", do: ballot(m{"choices": []any{"yes", ""}}), rule: "payload"},
		{name: "BallotChoiceNotTextIsRefused", schema: "vote", do: ballot(m{"choices": []any{"yes", 1}}), rule: "payload"},
		{name: "BallotChoicesNotArrayIsRefused", schema: "vote", do: ballot(m{"choices": "yes,no"}), rule: "payload"},
		{name: "BallotEmptyQuestionIsRefused", schema: "vote", do: ballot(m{"question": ""}), rule: "payload"},
		{name: "BallotNegativeClosesIsRefused", schema: "vote", do: ballot(m{"closes": -1}), rule: "payload"},
		{name: "BallotFloatClosesIsRefused", schema: "vote", do: ballot(m{"closes": 1.5}), rule: "payload"},
		{name: "BallotHugeClosesIsAccepted", schema: "vote", do: ballot(m{"closes": uint64(math.MaxUint64)}), needs: apps.Manage},
		// ballot.close
		{name: "BallotCloseIsAccepted", schema: "vote", setup: []step{openB1}, do: closeB1, needs: apps.Manage},
		{name: "BallotCloseTwiceIsRefused", schema: "vote", setup: []step{openB1, closeB1}, do: closeB1, rule: "ballot-open"},
		{name: "BallotCloseUnknownIsRefused", schema: "vote", do: closeB1, rule: "ballot-exists"},
		{name: "BallotCloseAfterClosesIsRefused", schema: "vote", setup: []step{ballot(m{"closes": uint64(t0 + 5000)})}, do: at(closeB1, t0+5000), rule: "ballot-open"},
		{name: "BallotCloseByStrangerIsRefused", schema: "vote", authority: true, setup: []step{signed(openB1, keyA)}, do: signed(closeB1, keyX), rule: "authority"},
		// vote.register
		{name: "RegisterIsAccepted", schema: "vote", do: regAlice, needs: apps.Manage},
		{name: "RegisterWithKeyIsAccepted", schema: "vote", do: regKeyed, needs: apps.Manage},
		{name: "RegisterTwiceIsRefused", schema: "vote", setup: []step{regAlice}, do: regAlice, rule: "register-once"},
		{name: "RegisterAfterWithdrawIsRefused", schema: "vote", setup: []step{regAlice, withdraw}, do: regAlice, rule: "register-once"},
		{name: "RegisterEmptyVoterIDIsRefused", schema: "vote", do: with(regAlice, "voter_id", ""), rule: "payload"},
		{name: "RegisterVoterIDOf128IsAccepted", schema: "vote", do: with(regAlice, "voter_id", strings.Repeat("é", 64)), needs: apps.Manage},
		{name: "RegisterVoterIDOf129IsRefused", schema: "vote", do: with(regAlice, "voter_id", strings.Repeat("v", 129)), rule: "payload"},
		{name: "RegisterVoterIDControlCharIsRefused", schema: "vote", do: with(regAlice, "voter_id", "ali\x07ce"), rule: "payload"},
		{name: "RegisterVoterIDC1ControlIsRefused", schema: "vote", do: with(regAlice, "voter_id", "ali\u0085ce"), rule: "payload"},
		{name: "RegisterVoterIDNumberIsRefused", schema: "vote", do: with(regAlice, "voter_id", 42), rule: "payload"},
		{name: "RegisterKeyNotBase64IsRefused", schema: "vote", do: with(regAlice, "key", "not a key"), rule: "payload"},
		{name: "RegisterKeyAsBytesIsRefused", schema: "vote", do: with(regAlice, "key", []byte(keyV.Public().(ed25519.PublicKey))), rule: "payload"},
		{name: "RegisterKeyOf31BytesIsRefused", schema: "vote", do: with(regAlice, "key", apps.KeyText(make([]byte, 31))), rule: "payload"},
		{name: "RegisterKeyUnpaddedIsRefused", schema: "vote", do: with(regAlice, "key", strings.TrimRight(pubText(keyV), "=")), rule: "payload"},
		{name: "RegisterUnsignedOnKeyedChainIsRefused", schema: "vote", authority: true, do: regAlice, rule: "authority"},
		// vote.cast
		{name: "CastIsAccepted", schema: "vote", setup: []step{openB1, regAlice}, do: castYes, needs: apps.Write},
		{name: "CastTwiceOnOneBallotIsRefused", schema: "vote", setup: []step{openB1, regAlice, castYes}, do: with(castYes, "choice", "no"), rule: "one-active-cast"},
		{name: "CastAfterUncastIsAccepted", schema: "vote", setup: []step{openB1, regAlice, castYes, uncast}, do: with(castYes, "choice", "no"), needs: apps.Write},
		{name: "CastUnregisteredEIDIsRefused", schema: "vote", setup: []step{openB1}, do: with(castYes, "eid", "aaaaaaaaaaaaaaaa"), rule: "registered"},
		{name: "CastMalformedEIDIsRefused", schema: "vote", setup: []step{openB1, regAlice}, do: with(castYes, "eid", "AAAAAAAAAAAAAAAA"), rule: "payload"},
		{name: "CastShortEIDIsRefused", schema: "vote", setup: []step{openB1, regAlice}, do: with(castYes, "eid", "aaaa"), rule: "payload"},
		{name: "CastUnknownChoiceIsRefused", schema: "vote", setup: []step{openB1, regAlice}, do: with(castYes, "choice", "maybe"), rule: "choice"},
		{name: "CastUnknownBallotIsRefused", schema: "vote", setup: []step{regAlice}, do: castYes, rule: "ballot-exists"},
		{name: "CastOnClosedBallotIsRefused", schema: "vote", setup: []step{openB1, regAlice, closeB1}, do: castYes, rule: "ballot-open"},
		{name: "CastAtClosesIsRefused", schema: "vote", setup: []step{ballot(m{"closes": uint64(t0 + 5000)}), regAlice}, do: at(castYes, t0+5000), rule: "ballot-open"},
		{name: "CastJustBeforeClosesIsAccepted", schema: "vote", setup: []step{ballot(m{"closes": uint64(t0 + 5000)}), regAlice}, do: at(castYes, t0+4999), needs: apps.Write},
		{name: "CastAfterWithdrawIsRefused", schema: "vote", setup: []step{openB1, regAlice, withdraw}, do: castYes, rule: "not-withdrawn"},
		{name: "CastForKeyedVoterUnsignedIsRefused", schema: "vote", setup: []step{openB1, regKeyed}, do: castYes, rule: "actor-key"},
		{name: "CastForKeyedVoterByStrangerIsRefused", schema: "vote", setup: []step{openB1, regKeyed}, do: signed(castYes, keyX), rule: "actor-key"},
		{name: "CastForKeyedVoterByItsKeyIsAccepted", schema: "vote", setup: []step{openB1, regKeyed}, do: signed(castYes, keyV), needs: apps.Write},
		{name: "CastByAuthorityForKeyedVoterIsRefused", schema: "vote", authority: true, setup: []step{signed(openB1, keyA), signed(regKeyed, keyA)}, do: signed(castYes, keyA), rule: "actor-key"},
		{name: "CastWithExtraKeyIsRefused", schema: "vote", setup: []step{openB1, regAlice}, do: with(castYes, "weight", 2), rule: "payload"},
		// vote.uncast
		{name: "UncastIsAccepted", schema: "vote", setup: []step{openB1, regAlice, castYes}, do: uncast, needs: apps.Write},
		{name: "UncastWithoutCastIsRefused", schema: "vote", setup: []step{openB1, regAlice}, do: uncast, rule: "active-cast"},
		{name: "UncastTwiceIsRefused", schema: "vote", setup: []step{openB1, regAlice, castYes, uncast}, do: uncast, rule: "active-cast"},
		{name: "UncastOnClosedBallotIsRefused", schema: "vote", setup: []step{openB1, regAlice, castYes, closeB1}, do: uncast, rule: "ballot-open"},
		{name: "UncastForKeyedVoterUnsignedIsRefused", schema: "vote", setup: []step{openB1, regKeyed, signed(castYes, keyV)}, do: uncast, rule: "actor-key"},
		// vote.withdraw
		{name: "WithdrawIsAccepted", schema: "vote", setup: []step{regAlice}, do: withdraw, needs: apps.Write},
		{name: "WithdrawTwiceIsRefused", schema: "vote", setup: []step{regAlice, withdraw}, do: withdraw, rule: "not-withdrawn"},
		{name: "WithdrawUnregisteredIsRefused", schema: "vote", do: with(withdraw, "eid", "aaaaaaaaaaaaaaaa"), rule: "registered"},
		{name: "WithdrawKeyedVoterByItsKeyIsAccepted", schema: "vote", setup: []step{regKeyed}, do: signed(withdraw, keyV), needs: apps.Write},
		{name: "WithdrawKeyedVoterUnsignedIsAuthorityEvent", schema: "vote", setup: []step{regKeyed}, do: withdraw, needs: apps.Manage},
		{name: "WithdrawKeyedVoterByAuthorityKeyIsAccepted", schema: "vote", authority: true, setup: []step{signed(regKeyed, keyA)}, do: signed(withdraw, keyA), needs: apps.Manage},
		{name: "WithdrawKeyedVoterByStrangerIsRefused", schema: "vote", authority: true, setup: []step{signed(regKeyed, keyA)}, do: signed(withdraw, keyX), rule: "voter-or-authority"},
		{name: "WithdrawUnkeyedVoterByStrangerIsAccepted", schema: "vote", authority: true, setup: []step{signed(regAlice, keyA)}, do: signed(withdraw, keyX), needs: apps.Write},

		// §6.3 donation
		{name: "FundOpenIsAccepted", schema: "donation", do: fund1, needs: apps.Manage},
		{name: "FundOpenWithPublisherIsAccepted", schema: "donation", do: with(fund1, "publisher", testPublisher), needs: apps.Manage},
		{name: "FundOpenBadPublisherIsRefused", schema: "donation", do: with(fund1, "publisher", pubText(keyA)), rule: "payload"},
		{name: "FundOpenTwiceIsRefused", schema: "donation", setup: []step{fund1}, do: fund1, rule: "fund-new"},
		{name: "FundOpenEmptyUnitIsRefused", schema: "donation", do: with(fund1, "unit", ""), rule: "payload"},
		{name: "FundOpenUnsignedOnKeyedChainIsRefused", schema: "donation", authority: true, do: fund1, rule: "authority"},
		{name: "DonationInIsAccepted", schema: "donation", setup: []step{fund1}, do: give(5), needs: apps.Write},
		{name: "DonationInWithDonorAndSourceIsAccepted", schema: "donation", setup: []step{fund1}, do: with(with(give(5), "donor", validUID), "source", "bank transfer"), needs: apps.Write},
		{name: "DonationInUnsignedOnKeyedChainIsAccepted", schema: "donation", authority: true, setup: []step{signed(fund1, keyA)}, do: give(5), needs: apps.Write},
		{name: "DonationInUnknownFundIsRefused", schema: "donation", do: give(5), rule: "fund-exists"},
		{name: "DonationInClosedFundIsRefused", schema: "donation", setup: []step{fund1, closeF1}, do: give(5), rule: "fund-open"},
		{name: "DonationInZeroIsRefused", schema: "donation", setup: []step{fund1}, do: give(0), rule: "payload"},
		{name: "DonationInNegativeIsRefused", schema: "donation", setup: []step{fund1}, do: give(-5), rule: "payload"},
		{name: "DonationInFloatIsRefused", schema: "donation", setup: []step{fund1}, do: give(5.0), rule: "payload"},
		{name: "DonationInTextAmountIsRefused", schema: "donation", setup: []step{fund1}, do: give("5"), rule: "payload"},
		{name: "DonationInMaxAmountIsAccepted", schema: "donation", setup: []step{fund1}, do: give(uint64(math.MaxUint64)), needs: apps.Write},
		{name: "DonationInOverflowIsRefused", schema: "donation", setup: []step{fund1, give(uint64(math.MaxUint64))}, do: give(1), rule: "overflow"},
		{name: "DonationInEmptySourceIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "source", ""), rule: "payload"},
		{name: "DonationInDonorShortUIDIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "donor", m{"uid": "uabc"}), rule: "payload"},
		{name: "DonationInDonorUppercaseUIDIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "donor", m{"uid": "U" + strings.Repeat("a", 32)}), rule: "payload"},
		{name: "DonationInDonorExtraKeyIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "donor", m{"uid": validUID["uid"], "name": "Jane"}), rule: "payload"},
		{name: "DonationInDonorSealedTooLargeIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "donor", m{"uid": validUID["uid"], "sealed": make([]byte, 4097)}), rule: "payload"},
		{name: "DonationInDonorSealedAsTextIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "donor", m{"uid": validUID["uid"], "sealed": "x"}), rule: "payload"},
		{name: "DonationInDonorAsTextIsRefused", schema: "donation", setup: []step{fund1}, do: with(give(5), "donor", "Jane"), rule: "payload"},
		{name: "DonationOutIsAccepted", schema: "donation", setup: []step{fund1, give(5)}, do: with(spend(5), "target", validUID), needs: apps.Manage},
		{name: "DonationOutOverdrawnIsRefused", schema: "donation", setup: []step{fund1, give(5)}, do: spend(6), rule: "balance"},
		{name: "DonationOutEmptyFundIsRefused", schema: "donation", setup: []step{fund1}, do: spend(1), rule: "balance"},
		{name: "DonationOutWithoutPurposeIsRefused", schema: "donation", setup: []step{fund1, give(5)}, do: with(spend(5), "purpose", nil), rule: "payload"},
		{name: "DonationOutAfterCloseIsAccepted", schema: "donation", setup: []step{fund1, give(5), closeF1}, do: spend(5), needs: apps.Manage},
		{name: "DonationOutByStrangerIsRefused", schema: "donation", authority: true, setup: []step{signed(fund1, keyA), give(5)}, do: signed(spend(5), keyX), rule: "authority"},
		{name: "FundCloseIsAccepted", schema: "donation", setup: []step{fund1}, do: closeF1, needs: apps.Manage},
		{name: "FundCloseTwiceIsRefused", schema: "donation", setup: []step{fund1, closeF1}, do: closeF1, rule: "fund-open"},
		{name: "FundCloseUnknownIsRefused", schema: "donation", do: closeF1, rule: "fund-exists"},

		// §6.4 resource
		{name: "AccountOpenIsAccepted", schema: "resource", do: with(acct("a", "cpu-s"), "owner", "team a"), needs: apps.Manage},
		{name: "AccountOpenTwiceIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s")}, do: acct("a", "gpu-s"), rule: "account-new"},
		{name: "AccountOpenBadKeyIsRefused", schema: "resource", do: with(acct("a", "cpu-s"), "key", "AAAA"), rule: "payload"},
		{name: "AccountOpenEmptyOwnerIsRefused", schema: "resource", do: with(acct("a", "cpu-s"), "owner", ""), rule: "payload"},
		{name: "AllocIsAccepted", schema: "resource", setup: []step{acct("a", "cpu-s")}, do: alloc("a", 10), needs: apps.Manage},
		{name: "AllocUnknownIsRefused", schema: "resource", do: alloc("a", 10), rule: "account-exists"},
		{name: "AllocClosedIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), closeA("a")}, do: alloc("a", 10), rule: "account-open"},
		{name: "AllocOverflowIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", uint64(math.MaxUint64))}, do: alloc("a", 1), rule: "overflow"},
		{name: "AllocTotalOverflowIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", uint64(math.MaxUint64)), use("a", uint64(math.MaxUint64))}, do: alloc("a", 1), rule: "overflow"},
		{name: "AllocZeroIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s")}, do: alloc("a", 0), rule: "payload"},
		{name: "AllocByStrangerIsRefused", schema: "resource", authority: true, setup: []step{signed(acct("a", "cpu-s"), keyA)}, do: signed(alloc("a", 1), keyX), rule: "authority"},
		{name: "TransferIsAccepted", schema: "resource", setup: []step{acct("a", "cpu-s"), acct("b", "cpu-s"), alloc("a", 10)}, do: xfer("a", "b", 10), needs: apps.Write},
		{name: "TransferToSelfIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", 10)}, do: xfer("a", "a", 1), rule: "distinct"},
		{name: "TransferOtherUnitIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), acct("b", "gpu-s"), alloc("a", 10)}, do: xfer("a", "b", 1), rule: "same-unit"},
		{name: "TransferOverBalanceIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), acct("b", "cpu-s"), alloc("a", 10)}, do: xfer("a", "b", 11), rule: "balance"},
		{name: "TransferToClosedIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), acct("b", "cpu-s"), alloc("a", 10), closeA("b")}, do: xfer("a", "b", 1), rule: "account-open"},
		{name: "TransferToUnknownIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", 10)}, do: xfer("a", "b", 1), rule: "account-exists"},
		{name: "TransferOverflowIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), acct("b", "cpu-s"), alloc("a", 1), alloc("b", uint64(math.MaxUint64))}, do: xfer("a", "b", 1), rule: "overflow"},
		{name: "TransferFromKeyedUnsignedIsRefused", schema: "resource", setup: []step{keyed, acct("b", "cpu-s"), alloc("k", 10)}, do: xfer("k", "b", 1), rule: "actor-key"},
		{name: "TransferFromKeyedByItsKeyIsAccepted", schema: "resource", setup: []step{keyed, acct("b", "cpu-s"), alloc("k", 10)}, do: signed(xfer("k", "b", 1), keyV), needs: apps.Write},
		{name: "TransferToKeyedUnsignedIsAccepted", schema: "resource", setup: []step{keyed, acct("b", "cpu-s"), alloc("b", 10)}, do: xfer("b", "k", 1), needs: apps.Write},
		{name: "ConsumeIsAccepted", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", 10)}, do: use("a", 10), needs: apps.Write},
		{name: "ConsumeOverBalanceIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", 10)}, do: use("a", 11), rule: "balance"},
		{name: "ConsumeUnknownIsRefused", schema: "resource", do: use("a", 1), rule: "account-exists"},
		{name: "ConsumeKeyedByStrangerIsRefused", schema: "resource", setup: []step{keyed, alloc("k", 10)}, do: signed(use("k", 1), keyX), rule: "actor-key"},
		{name: "ConsumeKeyedByItsKeyIsAccepted", schema: "resource", setup: []step{keyed, alloc("k", 10)}, do: signed(use("k", 1), keyV), needs: apps.Write},
		{name: "AccountCloseAtZeroIsAccepted", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", 10), use("a", 10)}, do: closeA("a"), needs: apps.Manage},
		{name: "AccountCloseWithBalanceIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), alloc("a", 10)}, do: closeA("a"), rule: "balance-zero"},
		{name: "AccountCloseTwiceIsRefused", schema: "resource", setup: []step{acct("a", "cpu-s"), closeA("a")}, do: closeA("a"), rule: "account-open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l *ledger
			if tc.authority {
				l = newLedger(t, tc.schema, keyA)
			} else {
				l = newLedger(t, tc.schema)
			}
			for _, s := range tc.setup {
				if _, err := l.apply(s.typ, l.subst(s.p), s.by, s.at); err != nil {
					t.Fatalf("setup %s: %v", s.typ, err)
				}
			}
			before := maps(l.kv)
			res, err := l.apply(tc.do.typ, l.subst(tc.do.p), tc.do.by, tc.do.at)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused, want accepted: %v", err)
				}
				if res.Needs != tc.needs {
					t.Errorf("needs %v, want %v", res.Needs, tc.needs)
				}
				return
			}
			var re *apps.RuleError
			if !errors.As(err, &re) || !errors.Is(err, apps.ErrRefused) {
				t.Fatalf("got %v, want a *RuleError for rule %s", err, tc.rule)
			}
			if re.Rule != tc.rule || re.Type != tc.do.typ {
				t.Errorf("refused by %s/%s (%v), want %s/%s", re.Type, re.Rule, err, tc.do.typ, tc.rule)
			}
			if !strings.HasPrefix(err.Error(), tc.do.typ+": ") && tc.do.typ != "" {
				t.Errorf("text %q does not name the type", err)
			}
			if after := maps(l.kv); after != before {
				t.Errorf("a refused event changed the state")
			}
		})
	}
}

// maps is a printable snapshot of a MapKV.
func maps(kv apps.MapKV) string {
	var b strings.Builder
	for _, k := range sortedKeys(kv) {
		b.WriteString(k)
		b.WriteByte('=')
		b.Write(kv[k])
		b.WriteByte('\n')
	}
	return b.String()
}
