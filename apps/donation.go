package apps

// The donation schema (§6.3). State: "f" 0 fund → fund; "funds": the list.
var donationSchema = &schema{
	name: "donation",
	types: map[string]eventType{
		"fund.open": {
			fields: []field{req("fund", kName), req("name", kText), req("unit", kText), opt("publisher", kPublisher)},
			apply:  fundOpen,
		},
		"donation.in": {
			fields: []field{req("fund", kName), req("amount", kAmount), opt("donor", kUID), opt("source", kText)},
			apply:  donationIn,
		},
		"donation.out": {
			fields: []field{req("fund", kName), req("amount", kAmount), opt("target", kUID), req("purpose", kText)},
			apply:  donationOut,
		},
		"fund.close": {fields: []field{req("fund", kName)}, apply: fundClose},
	},
	views: map[string]viewFunc{
		"fund":  viewFund,
		"funds": func(st *state, args map[string]any) (any, error) { return fundList.page(st, "funds", args) },
	},
	queries: func(st *state) ([]Query, error) { return fundList.queries(st, "funds", "fund", "fund") },
}

var fundList = list{"funds"}

type fund struct {
	_             struct{} `cbor:",toarray"`
	Name          string
	Unit          string
	Publisher     string // "" if none
	Closed        bool
	In, Out       uint64
	Donations     uint64 // number of donation.in
	Disbursements uint64 // number of donation.out
}

func getFund(st *state, typ, name string) (*fund, error) {
	var f fund
	ok, err := st.get(key("f", name), &f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(typ, "fund-exists", "no fund %s in this chain", name)
	}
	return &f, nil
}

func fundOpen(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name := p.str("fund")
	var old fund
	if ok, err := st.get(key("f", name), &old); err != nil || ok {
		if err == nil {
			err = refuse(ev.Type, "fund-new", "fund %s already exists in this chain", name)
		}
		return Result{}, err
	}
	st.put(key("f", name), fund{Name: p.str("name"), Unit: p.str("unit"), Publisher: p.str("publisher")})
	return res, fundList.add(st, name)
}

func donationIn(st *state, c Chain, ev Event, p payload) (Result, error) {
	name, amount := p.str("fund"), p.u64("amount")
	f, err := getFund(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	if f.Closed {
		return Result{}, refuse(ev.Type, "fund-open", "fund %s is closed", name)
	}
	in, ok := addU64(f.In, amount)
	if !ok {
		return Result{}, refuse(ev.Type, "overflow", "fund %s would receive more than 2^64-1 %s in total", name, f.Unit)
	}
	f.In, f.Donations = in, f.Donations+1
	st.put(key("f", name), f)
	return Result{Needs: Write}, nil
}

func donationOut(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name, amount := p.str("fund"), p.u64("amount")
	f, err := getFund(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	if balance := f.In - f.Out; amount > balance {
		return Result{}, refuse(ev.Type, "balance", "fund %s holds %d %s, less than %d", name, balance, f.Unit, amount)
	}
	f.Out, f.Disbursements = f.Out+amount, f.Disbursements+1 // Out+amount ≤ In
	st.put(key("f", name), f)
	return res, nil
}

func fundClose(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name := p.str("fund")
	f, err := getFund(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	if f.Closed {
		return Result{}, refuse(ev.Type, "fund-open", "fund %s is closed", name)
	}
	f.Closed = true
	st.put(key("f", name), f)
	return res, nil
}

func viewFund(st *state, args map[string]any) (any, error) {
	name, err := nameArg(args, "fund")
	if err != nil {
		return nil, err
	}
	var f fund
	ok, err := st.get(key("f", name), &f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("fund", name)
	}
	var pub any
	if f.Publisher != "" {
		pub = f.Publisher
	}
	return map[string]any{
		"fund": name, "name": f.Name, "unit": f.Unit, "publisher": pub, "open": !f.Closed,
		"in": f.In, "out": f.Out, "balance": f.In - f.Out,
		"donations": f.Donations, "disbursements": f.Disbursements,
	}, nil
}
