package apps

import (
	"crypto/sha256"
	"encoding/base32"
	"slices"
)

// The vote schema (§6.2). State:
//
//	"b" 0 ballot  → ballot       "bt" 0 ballot → []uint64 counts per choice
//	"v" 0 eid     → voter        "vi" 0 voter_id → eid
//	"ve" 0 eid 0 i → voterEvent  "ballots", "voters": numbered lists
//	"vg"          → voteTotals
var voteSchema = &schema{
	name: "vote",
	types: map[string]eventType{
		"ballot.open": {
			fields: []field{req("ballot", kName), req("question", kText), req("choices", kChoices), opt("closes", kUint)},
			apply:  ballotOpen,
		},
		"ballot.close":  {fields: []field{req("ballot", kName)}, apply: ballotClose},
		"vote.register": {fields: []field{req("voter_id", kVoterID), opt("key", kKey)}, apply: voteRegister},
		"vote.cast":     {fields: []field{req("eid", kEID), req("ballot", kName), req("choice", kText)}, apply: voteCast},
		"vote.uncast":   {fields: []field{req("eid", kEID), req("ballot", kName)}, apply: voteUncast},
		"vote.withdraw": {fields: []field{req("eid", kEID)}, apply: voteWithdraw},
	},
	views: map[string]viewFunc{
		"tally":   viewTally,
		"voter":   viewVoter,
		"ballots": func(st *state, args map[string]any) (any, error) { return ballotList.page(st, "ballots", args) },
		"voters":  func(st *state, args map[string]any) (any, error) { return voterList.page(st, "voters", args) },
	},
	queries: func(st *state) ([]Query, error) {
		qs, err := ballotList.queries(st, "ballots", "tally", "ballot")
		if err != nil {
			return nil, err
		}
		more, err := voterList.queries(st, "voters", "voter", "eid")
		return append(qs, more...), err
	},
}

var (
	ballotList = list{"ballots"}
	voterList  = list{"voters"}
	keyTotals  = []byte("vg")
)

type ballot struct {
	_         struct{} `cbor:",toarray"`
	Question  string
	Choices   []string
	Closes    uint64
	HasCloses bool
	Closed    bool // by ballot.close
}

// openAt reports whether the ballot is open at time t: not closed and
// t < closes.
func (b *ballot) openAt(t uint64) bool { return !b.Closed && (!b.HasCloses || t < b.Closes) }

type voter struct {
	_         struct{} `cbor:",toarray"`
	VoterID   string
	Key       []byte
	Withdrawn bool
	Events    uint64
	Casts     []activeCast // the voter's active casts, in the order cast
}

type activeCast struct {
	_      struct{} `cbor:",toarray"`
	Ballot string
	Choice uint64 // index into the ballot's choices
}

type voterEvent struct {
	_      struct{} `cbor:",toarray"`
	Seq    uint64
	Type   string
	Ballot string
	Choice string
}

type voteTotals struct {
	_          struct{} `cbor:",toarray"`
	Registered uint64
	Withdrawn  uint64
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// EID is the electronic ID of the voter registered by the entry with leaf
// hash leaf (§6.2): lowercase unpadded base32 of
// SHA-256("vserv-eid-v1\n" ‖ leaf)[:10], 16 characters.
func EID(leaf [32]byte) string {
	h := sha256.New()
	h.Write([]byte("vserv-eid-v1\n"))
	h.Write(leaf[:])
	return lowerBase32.EncodeToString(h.Sum(nil)[:10])
}

// ValidEID reports whether s has the form of an electronic ID.
func ValidEID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func getBallot(st *state, typ, name string) (*ballot, error) {
	var b ballot
	ok, err := st.get(key("b", name), &b)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(typ, "ballot-exists", "no ballot %s in this chain", name)
	}
	return &b, nil
}

func getVoter(st *state, typ, eid string) (*voter, error) {
	var v voter
	ok, err := st.get(key("v", eid), &v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(typ, "registered", "voter %s is not registered in this chain", eid)
	}
	return &v, nil
}

func (v *voter) record(st *state, eid string, e voterEvent) {
	st.put(key("ve", eid, string(indexKey("", v.Events)[1:])), e)
	v.Events++
	st.put(key("v", eid), v)
}

func ballotOpen(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name := p.str("ballot")
	var old ballot
	if ok, err := st.get(key("b", name), &old); err != nil || ok {
		if err == nil {
			err = refuse(ev.Type, "ballot-new", "ballot %s already exists in this chain", name)
		}
		return Result{}, err
	}
	var choices []string
	for _, x := range p["choices"].([]any) {
		choices = append(choices, x.(string))
	}
	st.put(key("b", name), ballot{Question: p.str("question"), Choices: choices, Closes: p.u64("closes"), HasCloses: p.has("closes")})
	st.put(key("bt", name), make([]uint64, len(choices)))
	return res, ballotList.add(st, name)
}

func ballotClose(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name := p.str("ballot")
	b, err := getBallot(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	if !b.openAt(ev.Time) {
		return Result{}, refuse(ev.Type, "ballot-open", "ballot %s is closed", name)
	}
	b.Closed = true
	st.put(key("b", name), b)
	return res, nil
}

func voteRegister(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	id := p.str("voter_id")
	var old string
	if ok, err := st.get(key("vi", id), &old); err != nil || ok {
		if err == nil {
			err = refuse(ev.Type, "register-once", "voter_id %q is already registered in this chain (eid %s)", id, old)
		}
		return Result{}, err
	}
	eid := EID(ev.Leaf)
	var clash voter
	if ok, err := st.get(key("v", eid), &clash); err != nil || ok {
		if err == nil {
			err = refuse(ev.Type, "eid-new", "electronic ID %s already exists in this chain", eid)
		}
		return Result{}, err
	}
	v := &voter{VoterID: id}
	if p.has("key") {
		v.Key, _ = ParseKey(p.str("key"))
	}
	var t voteTotals
	if _, err := st.get(keyTotals, &t); err != nil {
		return Result{}, err
	}
	t.Registered++
	st.put(keyTotals, t)
	st.put(key("vi", id), eid)
	v.record(st, eid, voterEvent{Seq: ev.Seq, Type: ev.Type})
	res.EID = eid
	return res, voterList.add(st, eid)
}

// activeVoter is the voter of an eid that may act: registered, not
// withdrawn, and the event signed by its key if it has one.
func activeVoter(st *state, ev Event, eid string) (*voter, error) {
	v, err := getVoter(st, ev.Type, eid)
	if err != nil {
		return nil, err
	}
	if v.Withdrawn {
		return nil, refuse(ev.Type, "not-withdrawn", "voter %s has withdrawn", eid)
	}
	if err := actor(ev, v.Key, "voter "+eid); err != nil {
		return nil, err
	}
	return v, nil
}

func openBallot(st *state, ev Event, name string) (*ballot, error) {
	b, err := getBallot(st, ev.Type, name)
	if err != nil {
		return nil, err
	}
	if !b.openAt(ev.Time) {
		return nil, refuse(ev.Type, "ballot-open", "ballot %s is closed", name)
	}
	return b, nil
}

func getCounts(st *state, name string) ([]uint64, error) {
	var n []uint64
	if _, err := st.get(key("bt", name), &n); err != nil {
		return nil, err
	}
	return n, nil
}

func voteCast(st *state, c Chain, ev Event, p payload) (Result, error) {
	eid, name, choice := p.str("eid"), p.str("ballot"), p.str("choice")
	v, err := activeVoter(st, ev, eid)
	if err != nil {
		return Result{}, err
	}
	b, err := openBallot(st, ev, name)
	if err != nil {
		return Result{}, err
	}
	i := slices.Index(b.Choices, choice)
	if i < 0 {
		return Result{}, refuse(ev.Type, "choice", "%q is not a choice of ballot %s", choice, name)
	}
	if slices.ContainsFunc(v.Casts, func(a activeCast) bool { return a.Ballot == name }) {
		return Result{}, refuse(ev.Type, "one-active-cast", "voter %s already has an active cast on ballot %s", eid, name)
	}
	n, err := getCounts(st, name)
	if err != nil {
		return Result{}, err
	}
	if i >= len(n) {
		return Result{}, errCorrupt(name)
	}
	n[i]++ // cannot overflow: at most one active cast per voter, fewer than 2^64 voters
	st.put(key("bt", name), n)
	v.Casts = append(v.Casts, activeCast{Ballot: name, Choice: uint64(i)})
	v.record(st, eid, voterEvent{Seq: ev.Seq, Type: ev.Type, Ballot: name, Choice: choice})
	return Result{Needs: Write}, nil
}

func voteUncast(st *state, c Chain, ev Event, p payload) (Result, error) {
	eid, name := p.str("eid"), p.str("ballot")
	v, err := activeVoter(st, ev, eid)
	if err != nil {
		return Result{}, err
	}
	if _, err := openBallot(st, ev, name); err != nil {
		return Result{}, err
	}
	i := slices.IndexFunc(v.Casts, func(a activeCast) bool { return a.Ballot == name })
	if i < 0 {
		return Result{}, refuse(ev.Type, "active-cast", "voter %s has no active cast on ballot %s", eid, name)
	}
	if err := uncount(st, name, v.Casts[i].Choice); err != nil {
		return Result{}, err
	}
	v.Casts = slices.Delete(v.Casts, i, i+1)
	v.record(st, eid, voterEvent{Seq: ev.Seq, Type: ev.Type, Ballot: name})
	return Result{Needs: Write}, nil
}

func uncount(st *state, name string, choice uint64) error {
	n, err := getCounts(st, name)
	if err != nil {
		return err
	}
	if choice >= uint64(len(n)) || n[choice] == 0 {
		return errCorrupt(name)
	}
	n[choice]--
	st.put(key("bt", name), n)
	return nil
}

func errCorrupt(ballot string) error {
	return &corruptError{what: "counts of ballot " + ballot}
}

type corruptError struct{ what string }

func (e *corruptError) Error() string { return "apps: stored state is corrupt: " + e.what }

func voteWithdraw(st *state, c Chain, ev Event, p payload) (Result, error) {
	eid := p.str("eid")
	v, err := getVoter(st, ev.Type, eid)
	if err != nil {
		return Result{}, err
	}
	if v.Withdrawn {
		return Result{}, refuse(ev.Type, "not-withdrawn", "voter %s has withdrawn", eid)
	}
	// The voter (or, without a key, any writer acting for it) or the
	// authority may withdraw.
	res := Result{Needs: Write}
	if actor(ev, v.Key, "voter "+eid) != nil {
		if res, err = authority(c, ev); err != nil {
			return Result{}, refuse(ev.Type, "voter-or-authority",
				"voter %s withdraws through a record signed by its key %s or as an authority event (%s)", eid, KeyText(v.Key), err.(*RuleError).Text)
		}
	}
	kept := v.Casts[:0:0]
	for _, a := range v.Casts {
		b, err := getBallot(st, ev.Type, a.Ballot)
		if err != nil {
			return Result{}, err
		}
		if !b.openAt(ev.Time) {
			kept = append(kept, a) // casts on closed ballots stand
			continue
		}
		if err := uncount(st, a.Ballot, a.Choice); err != nil {
			return Result{}, err
		}
	}
	v.Casts = kept
	v.Withdrawn = true
	var t voteTotals
	if _, err := st.get(keyTotals, &t); err != nil {
		return Result{}, err
	}
	t.Withdrawn++
	st.put(keyTotals, t)
	v.record(st, eid, voterEvent{Seq: ev.Seq, Type: ev.Type})
	return res, nil
}

func viewTally(st *state, args map[string]any) (any, error) {
	name, err := nameArg(args, "ballot")
	if err != nil {
		return nil, err
	}
	var b ballot
	ok, err := st.get(key("b", name), &b)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("ballot", name)
	}
	n, err := getCounts(st, name)
	if err != nil {
		return nil, err
	}
	if len(n) != len(b.Choices) {
		return nil, errCorrupt(name)
	}
	var m meta
	var t voteTotals
	if _, err := st.get(keyMeta, &m); err != nil {
		return nil, err
	}
	if _, err := st.get(keyTotals, &t); err != nil {
		return nil, err
	}
	counts := make(map[string]any, len(n))
	for i, c := range b.Choices {
		counts[c] = n[i]
	}
	var closes any
	if b.HasCloses {
		closes = b.Closes
	}
	return map[string]any{
		"ballot": name, "question": b.Question, "choices": counts, "open": b.openAt(m.Time),
		"closes": closes, "registered": t.Registered, "active": t.Registered - t.Withdrawn,
	}, nil
}

func errNotFound(what, name string) error {
	return &notFoundError{what: what, name: name}
}

type notFoundError struct{ what, name string }

func (e *notFoundError) Error() string        { return "no " + e.what + " " + e.name + " in this chain" }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

// voterArgs are {eid}, {voter_id}, either with from and limit for the page
// of events.
func viewVoter(st *state, args map[string]any) (any, error) {
	rest := map[string]any{}
	var eid, id string
	var byEID, byID bool
	for k, v := range args {
		switch k {
		case "eid":
			eid, byEID = v.(string)
			if !byEID || !ValidEID(eid) {
				return nil, errVoterArgs()
			}
		case "voter_id":
			id, byID = v.(string)
			if !byID || !validVoterID(id) {
				return nil, errVoterArgs()
			}
		default:
			rest[k] = v
		}
	}
	if byEID == byID {
		return nil, errVoterArgs()
	}
	from, limit, err := pageArgs(rest)
	if err != nil {
		return nil, err
	}
	if byID {
		ok, err := st.get(key("vi", id), &eid)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errNotFound("voter_id", id)
		}
	}
	var v voter
	ok, err := st.get(key("v", eid), &v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("voter", eid)
	}
	events := []any{}
	i := from
	for ; i < v.Events && uint64(len(events)) < limit; i++ {
		var e voterEvent
		if _, err := st.get(key("ve", eid, string(indexKey("", i)[1:])), &e); err != nil {
			return nil, err
		}
		m := map[string]any{"seq": e.Seq, "type": e.Type}
		if e.Ballot != "" {
			m["ballot"] = e.Ballot
		}
		if e.Choice != "" {
			m["choice"] = e.Choice
		}
		events = append(events, m)
	}
	var next any
	if i < v.Events {
		next = i
	}
	return map[string]any{
		"voter_id": v.VoterID, "eid": eid, "key": optKeyText(v.Key), "withdrawn": v.Withdrawn,
		"events": events, "next": next,
	}, nil
}

func errVoterArgs() error {
	return &argsError{"want exactly one of {eid: electronic ID} or {voter_id: text}, and optionally from, limit"}
}

type argsError struct{ text string }

func (e *argsError) Error() string        { return "bad view arguments: " + e.text }
func (e *argsError) Is(target error) bool { return target == ErrViewArgs }
