package apps

// The resource schema (§6.4). State: "a" 0 account → account; "accounts":
// the list.
var resourceSchema = &schema{
	name: "resource",
	types: map[string]eventType{
		"account.open": {
			fields: []field{req("account", kName), req("unit", kText), opt("key", kKey), opt("owner", kText)},
			apply:  accountOpen,
		},
		"alloc":         {fields: []field{req("account", kName), req("amount", kAmount)}, apply: alloc},
		"transfer":      {fields: []field{req("from", kName), req("to", kName), req("amount", kAmount)}, apply: transfer},
		"consume":       {fields: []field{req("account", kName), req("amount", kAmount)}, apply: consume},
		"account.close": {fields: []field{req("account", kName)}, apply: accountClose},
	},
	views: map[string]viewFunc{
		"account":  viewAccount,
		"accounts": func(st *state, args map[string]any) (any, error) { return accountList.page(st, "accounts", args) },
	},
	queries: func(st *state) ([]Query, error) { return accountList.queries(st, "accounts", "account", "account") },
}

var accountList = list{"accounts"}

type account struct {
	_         struct{} `cbor:",toarray"`
	Unit      string
	Owner     string // "" if none
	Key       []byte
	Closed    bool
	Balance   uint64
	Allocated uint64
	Consumed  uint64
}

func getAccount(st *state, typ, name string) (*account, error) {
	var a account
	ok, err := st.get(key("a", name), &a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(typ, "account-exists", "no account %s in this chain", name)
	}
	return &a, nil
}

func openAccount(st *state, typ, name string) (*account, error) {
	a, err := getAccount(st, typ, name)
	if err == nil && a.Closed {
		err = refuse(typ, "account-open", "account %s is closed", name)
	}
	return a, err
}

func accountOpen(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name := p.str("account")
	var old account
	if ok, err := st.get(key("a", name), &old); err != nil || ok {
		if err == nil {
			err = refuse(ev.Type, "account-new", "account %s already exists in this chain", name)
		}
		return Result{}, err
	}
	a := account{Unit: p.str("unit"), Owner: p.str("owner")}
	if p.has("key") {
		a.Key, _ = ParseKey(p.str("key"))
	}
	st.put(key("a", name), a)
	return res, accountList.add(st, name)
}

func alloc(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name, amount := p.str("account"), p.u64("amount")
	a, err := openAccount(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	bal, ok1 := addU64(a.Balance, amount)
	total, ok2 := addU64(a.Allocated, amount)
	if !ok1 || !ok2 {
		return Result{}, refuse(ev.Type, "overflow", "account %s would hold or be allocated more than 2^64-1 %s", name, a.Unit)
	}
	a.Balance, a.Allocated = bal, total
	st.put(key("a", name), a)
	return res, nil
}

func transfer(st *state, c Chain, ev Event, p payload) (Result, error) {
	from, to, amount := p.str("from"), p.str("to"), p.u64("amount")
	if from == to {
		return Result{}, refuse(ev.Type, "distinct", "from and to are both %s", from)
	}
	src, err := openAccount(st, ev.Type, from)
	if err != nil {
		return Result{}, err
	}
	if err := actor(ev, src.Key, "account "+from); err != nil {
		return Result{}, err
	}
	dst, err := openAccount(st, ev.Type, to)
	if err != nil {
		return Result{}, err
	}
	if src.Unit != dst.Unit {
		return Result{}, refuse(ev.Type, "same-unit", "account %s counts %s, account %s counts %s", from, src.Unit, to, dst.Unit)
	}
	if amount > src.Balance {
		return Result{}, refuse(ev.Type, "balance", "account %s holds %d %s, less than %d", from, src.Balance, src.Unit, amount)
	}
	bal, ok := addU64(dst.Balance, amount)
	if !ok {
		return Result{}, refuse(ev.Type, "overflow", "account %s would hold more than 2^64-1 %s", to, dst.Unit)
	}
	src.Balance -= amount
	dst.Balance = bal
	st.put(key("a", from), src)
	st.put(key("a", to), dst)
	return Result{Needs: Write}, nil
}

func consume(st *state, c Chain, ev Event, p payload) (Result, error) {
	name, amount := p.str("account"), p.u64("amount")
	a, err := getAccount(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	if err := actor(ev, a.Key, "account "+name); err != nil {
		return Result{}, err
	}
	if amount > a.Balance {
		return Result{}, refuse(ev.Type, "balance", "account %s holds %d %s, less than %d", name, a.Balance, a.Unit, amount)
	}
	total, ok := addU64(a.Consumed, amount)
	if !ok {
		return Result{}, refuse(ev.Type, "overflow", "account %s would have consumed more than 2^64-1 %s", name, a.Unit)
	}
	a.Balance -= amount
	a.Consumed = total
	st.put(key("a", name), a)
	return Result{Needs: Write}, nil
}

func accountClose(st *state, c Chain, ev Event, p payload) (Result, error) {
	res, err := authority(c, ev)
	if err != nil {
		return res, err
	}
	name := p.str("account")
	a, err := openAccount(st, ev.Type, name)
	if err != nil {
		return Result{}, err
	}
	if a.Balance != 0 {
		return Result{}, refuse(ev.Type, "balance-zero", "account %s still holds %d %s", name, a.Balance, a.Unit)
	}
	a.Closed = true
	st.put(key("a", name), a)
	return res, nil
}

func viewAccount(st *state, args map[string]any) (any, error) {
	name, err := nameArg(args, "account")
	if err != nil {
		return nil, err
	}
	var a account
	ok, err := st.get(key("a", name), &a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("account", name)
	}
	var owner any
	if a.Owner != "" {
		owner = a.Owner
	}
	return map[string]any{
		"account": name, "unit": a.Unit, "owner": owner, "key": optKeyText(a.Key), "open": !a.Closed,
		"balance": a.Balance, "allocated": a.Allocated, "consumed": a.Consumed,
	}, nil
}
