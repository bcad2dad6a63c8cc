package main

import (
	"cmp"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/apps/uid"
	"github.com/vserv/vserv/client"
)

// eventFlags are the flags every command that appends an event takes.
type eventFlags struct {
	chain      string
	key        string
	receiptOut string
	note       string
}

func (f *eventFlags) add(cmd *cobra.Command, chain string) {
	fl := cmd.Flags()
	fl.StringVar(&f.chain, "chain", chain, "the chain")
	fl.StringVar(&f.key, "key", "", "sign the record with the Ed25519 key in this file (vcli key new)")
	fl.StringVar(&f.receiptOut, "receipt-out", "", "save the record's receipt in this file (vcli verify receipt checks it)")
	fl.StringVar(&f.note, "note", "", "a note stored with the event (at most 1,024 bytes)")
}

// chainFlag is the --chain of the commands that show a view.
func chainFlag(cmd *cobra.Command, p *string, chain string) {
	cmd.Flags().StringVar(p, "chain", chain, "the chain")
}

// putEvent signs, solves and appends one event, and prints what rput
// answered (with the eid of a registration).
func (a *app) putEvent(cmd *cobra.Command, f *eventFlags, ev client.Event) error {
	var key ed25519.PrivateKey
	if f.key != "" {
		k, err := readSignKey(f.key)
		if err != nil {
			return err
		}
		key = k
	}
	ev = ev.With(f.note, nil)
	return a.withClient(cmd, true, func(c *client.Client) error {
		res, err := c.PutEvents(cmd.Context(), f.chain, key, f.receiptOut != "", ev)
		if err != nil {
			return err
		}
		r := res[0]
		if f.receiptOut != "" {
			if err := os.WriteFile(f.receiptOut, []byte(r.Receipt), 0o644); err != nil {
				return fmt.Errorf("save receipt: %w", err)
			}
		}
		leaf := hex.EncodeToString(r.Leaf)
		human := fmt.Sprintf("ok: %s recorded in %s as seq %d (id %s)", ev.Type, f.chain, r.Seq, r.ID)
		if r.EID != "" {
			human += "\neid " + r.EID
		}
		if f.receiptOut != "" {
			human += "\nreceipt saved in " + f.receiptOut
		}
		out := map[string]any{"ok": true, "chain": f.chain, "type": ev.Type, "id": r.ID, "seq": r.Seq, "leaf": leaf}
		if r.EID != "" {
			out["eid"] = r.EID
		}
		if f.receiptOut != "" {
			out["receipt_file"] = f.receiptOut
		}
		a.print(out, human)
		return nil
	})
}

// eventCmd is a command that appends the event build makes of its args.
func (a *app) eventCmd(use, short, chain string, nargs int, build func(args []string) (client.Event, error), more func(*cobra.Command)) *cobra.Command {
	var f eventFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := build(args)
			if err != nil {
				return err
			}
			return a.putEvent(cmd, &f, ev)
		},
	}
	f.add(cmd, chain)
	if more != nil {
		more(cmd)
	}
	return cmd
}

func parseAmount(s string) (uint64, error) {
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil || u == 0 {
		return 0, usagef("amount %q: want a whole number greater than 0", s)
	}
	return u, nil
}

// keyTextArg is a public key given as its text or as a file holding it
// (what vcli key new and uid keygen print).
func keyTextArg(s string) string {
	if s == "" {
		return ""
	}
	if b, err := os.ReadFile(s); err == nil {
		return strings.TrimSpace(string(b))
	}
	return s
}

func parsePublicKey(flag, s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, nil
	}
	s = keyTextArg(s)
	k, err := apps.ParseKey(s)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	return k, nil
}

// showView fetches a view and prints it with format (or as JSON).
func (a *app) showView(cmd *cobra.Command, chain, name string, args map[string]any, format func(v map[string]any) string) error {
	return a.withReader(cmd, func(c *client.Client) error {
		v, size, err := c.View(cmd.Context(), chain, name, args)
		if err != nil {
			return err
		}
		if a.opts.json {
			a.printJSON(map[string]any{"ok": true, "chain": chain, "size": size, "view": jsonable(v)})
			return nil
		}
		fmt.Fprint(a.stdout, format(v))
		return nil
	})
}

func u64(v any) uint64 { u, _ := v.(uint64); return u }
func str(v any) string { s, _ := v.(string); return s }

func strList(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, e := range a {
		out = append(out, str(e))
	}
	return out
}

// ---- vote ----------------------------------------------------------------

func (a *app) voteCmd() *cobra.Command {
	vote := &cobra.Command{
		Use:   "vote",
		Short: "Elections on a vote chain: open, close, register, cast, uncast, withdraw, tally, voter, list",
		Long: `vcli vote appends the events of the vote schema (docs/applications.md) and
shows its views. Opening and closing ballots and registering voters are
authority events: they need the manage right and, on a chain with authority
keys, --key with one of them. A voter registered with a key acts only through
records signed by it (--key). Every write takes --receipt-out FILE.`,
	}
	var question string
	var closes string
	var voterKey string
	vote.AddCommand(
		a.eventCmd("open BALLOT --question TEXT CHOICE CHOICE...", "Open a ballot (authority)", "vote", -1, nil, nil),
	)
	vote.Commands()[0].Args = cobra.MinimumNArgs(3)
	openCmd := vote.Commands()[0]
	openCmd.Flags().StringVar(&question, "question", "", "the question")
	openCmd.Flags().StringVar(&closes, "closes", "", "when voting ends (RFC 3339 time or unix ms); none by default")
	openCmd.RunE = func(cmd *cobra.Command, args []string) error {
		if question == "" {
			return usagef("give the ballot's question with --question TEXT")
		}
		var ms uint64
		if closes != "" {
			if t, err := time.Parse(time.RFC3339, closes); err == nil {
				ms = uint64(t.UnixMilli())
			} else if ms, err = strconv.ParseUint(closes, 10, 64); err != nil {
				return usagef("--closes %q: want an RFC 3339 time or unix ms", closes)
			}
		}
		f := flagsOf(cmd)
		return a.putEvent(cmd, f, client.BallotOpen(args[0], question, args[1:], ms))
	}
	vote.AddCommand(
		a.eventCmd("close BALLOT", "Close a ballot (authority)", "vote", 1, func(args []string) (client.Event, error) {
			return client.BallotClose(args[0]), nil
		}, nil),
		a.eventCmd("register VOTER-ID [--voter-key KEY]", "Register a voter (authority); prints the voter's eid", "vote", 1, func(args []string) (client.Event, error) {
			k, err := parsePublicKey("--voter-key", voterKey)
			if err != nil {
				return client.Event{}, err
			}
			return client.VoteRegister(args[0], k), nil
		}, func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&voterKey, "voter-key", "", "the voter's public key (text, or a file holding it): only records it signs act for the voter")
		}),
		a.eventCmd("cast EID BALLOT CHOICE", "Cast a vote", "vote", 3, func(args []string) (client.Event, error) {
			return client.VoteCast(args[0], args[1], args[2]), nil
		}, nil),
		a.eventCmd("uncast EID BALLOT", "Take back the active cast on an open ballot", "vote", 2, func(args []string) (client.Event, error) {
			return client.VoteUncast(args[0], args[1]), nil
		}, nil),
		a.eventCmd("withdraw EID", "Withdraw a voter for good (ends its casts on open ballots)", "vote", 1, func(args []string) (client.Event, error) {
			return client.VoteWithdraw(args[0]), nil
		}, nil),
	)
	var chain string
	tally := &cobra.Command{
		Use:   "tally BALLOT",
		Short: "Show the server's tally of a ballot: counts, shares and bars",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.showView(cmd, chain, "tally", map[string]any{"ballot": args[0]}, func(v map[string]any) string { return formatTally(v, nil) })
		},
	}
	chainFlag(tally, &chain, "vote")
	var byID bool
	voterCmd := &cobra.Command{
		Use:   "voter EID | voter --voter-id ID",
		Short: "Show a voter: eid, key, withdrawn and every event",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := map[string]any{"eid": args[0]}
			if byID {
				arg = map[string]any{"voter_id": args[0]}
			}
			return a.showView(cmd, chain, "voter", arg, formatVoter)
		},
	}
	voterCmd.Flags().BoolVar(&byID, "voter-id", false, "the argument is a voter_id, not an eid")
	chainFlag(voterCmd, &chain, "vote")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the ballots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.showView(cmd, chain, "ballots", nil, func(v map[string]any) string { return formatList(v, "ballots") })
		},
	}
	chainFlag(list, &chain, "vote")
	vote.AddCommand(tally, voterCmd, list)
	return vote
}

// flagsOf reads back the eventFlags of a command made by eventCmd.
func flagsOf(cmd *cobra.Command) *eventFlags {
	fl := cmd.Flags()
	f := &eventFlags{}
	f.chain, _ = fl.GetString("chain")
	f.key, _ = fl.GetString("key")
	f.receiptOut, _ = fl.GetString("receipt-out")
	f.note, _ = fl.GetString("note")
	return f
}

const barWidth = 20

// formatTally shows a tally view as a table: choice, count, share of the
// votes cast and a bar; with recounted set, the recount's count beside the
// server's.
func formatTally(v map[string]any, recounted map[string]any) string {
	choices, _ := v["choices"].(map[string]any)
	var theirs map[string]any
	if recounted != nil {
		theirs, _ = recounted["choices"].(map[string]any)
	}
	names := make([]string, 0, len(choices))
	var total uint64
	for k, n := range choices {
		names = append(names, k)
		total += u64(n)
	}
	// Most votes first; ties in name order, so the table is stable.
	slices.SortFunc(names, func(x, y string) int {
		if c := cmp.Compare(u64(choices[y]), u64(choices[x])); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	w := len("choice")
	for _, n := range names {
		w = max(w, len(n))
	}
	state := "open"
	if v["open"] != true {
		state = "closed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ballot %s: %s\n", str(v["ballot"]), str(v["question"]))
	fmt.Fprintf(&b, "%s, %d registered, %d active, %d votes cast\n", state, u64(v["registered"]), u64(v["active"]), total)
	if recounted != nil {
		fmt.Fprintf(&b, "%-*s  %7s  %7s  %6s\n", w, "choice", "recount", "server", "share")
	} else {
		fmt.Fprintf(&b, "%-*s  %7s  %6s\n", w, "choice", "votes", "share")
	}
	for _, n := range names {
		c := u64(choices[n])
		share := 0.0
		if total > 0 {
			share = 100 * float64(c) / float64(total)
		}
		bar := strings.Repeat("█", int(share*barWidth/100+0.5))
		var line string
		if recounted != nil {
			line = fmt.Sprintf("%-*s  %7d  %7d  %5.1f%%  %s", w, n, u64(theirs[n]), c, share, bar)
			if u64(theirs[n]) != c {
				line += "  <- differs"
			}
		} else {
			line = fmt.Sprintf("%-*s  %7d  %5.1f%%  %s", w, n, c, share, bar)
		}
		fmt.Fprintln(&b, strings.TrimRight(line, " "))
	}
	return b.String()
}

func formatVoter(v map[string]any) string {
	var b strings.Builder
	key := str(v["key"])
	if key == "" {
		key = "none (any writer may act for this voter)"
	}
	fmt.Fprintf(&b, "voter %s\neid       %s\nkey       %s\nwithdrawn %v\n", str(v["voter_id"]), str(v["eid"]), key, v["withdrawn"] == true)
	events, _ := v["events"].([]any)
	for _, x := range events {
		e, _ := x.(map[string]any)
		line := fmt.Sprintf("  seq %-6d %s", u64(e["seq"]), str(e["type"]))
		if s := str(e["ballot"]); s != "" {
			line += " " + s
		}
		if s := str(e["choice"]); s != "" {
			line += " " + s
		}
		fmt.Fprintln(&b, line)
	}
	return b.String()
}

func formatList(v map[string]any, plural string) string {
	names := strList(v[plural])
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintln(&b, n)
	}
	fmt.Fprintf(&b, "%d %s\n", u64(v["total"]), plural)
	return b.String()
}

// ---- fund ----------------------------------------------------------------

func (a *app) fundCmd() *cobra.Command {
	fund := &cobra.Command{
		Use:   "fund",
		Short: "Donation funds: open, in, out, close, show, list",
		Long: `vcli fund appends the events of the donation schema (docs/applications.md).
Opening, disbursing and closing are authority events; any writer records a
donation. --donor / --target TEXT make a uid for the text sealed to the fund's
publisher (vcli uid), and --opening-out saves what proves it.`,
	}
	var name, unit, publisher, donor, target, source, purpose, openingOut string
	fund.AddCommand(
		a.eventCmd("open FUND --name TEXT --unit UNIT [--publisher KEY]", "Open a fund (authority)", "donation", 1, func(args []string) (client.Event, error) {
			if name == "" || unit == "" {
				return client.Event{}, usagef("give the fund's --name TEXT and --unit UNIT (e.g. EUR-cent)")
			}
			return client.FundOpen(args[0], name, unit, keyTextArg(publisher)), nil
		}, func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&name, "name", "", "the fund's name, for people")
			cmd.Flags().StringVar(&unit, "unit", "", "the unit of amounts, e.g. EUR-cent")
			cmd.Flags().StringVar(&publisher, "publisher", "", "the uid public key donors and targets are sealed to (text, or a file holding it: vcli uid keygen)")
		}),
	)
	inCmd := a.eventCmd("in FUND AMOUNT [--donor TEXT] [--source TEXT]", "Record a donation", "donation", 2, nil, func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&donor, "donor", "", "the donor, sealed as a uid to the fund's publisher")
		cmd.Flags().StringVar(&source, "source", "", "where the money came from")
		cmd.Flags().StringVar(&openingOut, "opening-out", "", "save the uid's opening (what proves it) to this file")
	})
	outCmd := a.eventCmd("out FUND AMOUNT --purpose TEXT [--target TEXT]", "Record a disbursement (authority)", "donation", 2, nil, func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&target, "target", "", "the recipient, sealed as a uid to the fund's publisher")
		cmd.Flags().StringVar(&purpose, "purpose", "", "what the money is for")
		cmd.Flags().StringVar(&openingOut, "opening-out", "", "save the uid's opening (what proves it) to this file")
	})
	inOut := func(in bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			amount, err := parseAmount(args[1])
			if err != nil {
				return err
			}
			f := flagsOf(cmd)
			text := target
			if in {
				text = donor
			} else if purpose == "" {
				return usagef("give the disbursement's --purpose TEXT")
			}
			if openingOut != "" && text == "" {
				return usagef("--opening-out needs --donor or --target")
			}
			var v *uid.Value
			if text != "" {
				if v, err = a.sealToFund(cmd, f.chain, args[0], text, openingOut); err != nil {
					return err
				}
			}
			if in {
				return a.putEvent(cmd, f, client.DonationIn(args[0], amount, v, source))
			}
			return a.putEvent(cmd, f, client.DonationOut(args[0], amount, v, purpose))
		}
	}
	inCmd.RunE, outCmd.RunE = inOut(true), inOut(false)
	var chain string
	show := &cobra.Command{
		Use:   "show FUND",
		Short: "Show a fund: in, out, balance",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.showView(cmd, chain, "fund", map[string]any{"fund": args[0]}, formatFund)
		},
	}
	chainFlag(show, &chain, "donation")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the funds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.showView(cmd, chain, "funds", nil, func(v map[string]any) string { return formatList(v, "funds") })
		},
	}
	chainFlag(list, &chain, "donation")
	fund.AddCommand(inCmd, outCmd,
		a.eventCmd("close FUND", "Close a fund to donations (authority)", "donation", 1, func(args []string) (client.Event, error) {
			return client.FundClose(args[0]), nil
		}, nil),
		show, list)
	return fund
}

// sealToFund makes a uid for text sealed to the fund's publisher.
func (a *app) sealToFund(cmd *cobra.Command, chain, fund, text, openingOut string) (*uid.Value, error) {
	var pubText string
	err := a.withReader(cmd, func(c *client.Client) error {
		v, _, err := c.View(cmd.Context(), chain, "fund", map[string]any{"fund": fund})
		if err != nil {
			return err
		}
		pubText = str(v["publisher"])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pubText == "" {
		return nil, usagef("fund %s names no publisher: a uid sealed to nobody could be resolved by nobody", fund)
	}
	pub, err := uid.ParsePublicKey(pubText)
	if err != nil {
		return nil, fmt.Errorf("fund %s: publisher: %w", fund, err)
	}
	v, o, err := uid.New(pub, text)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if openingOut != "" {
		if err := writeOpening(openingOut, v.UID, o); err != nil {
			return nil, err
		}
	}
	return &v, nil
}

func formatFund(v map[string]any) string {
	state := "open"
	if v["open"] != true {
		state = "closed"
	}
	pub := str(v["publisher"])
	if pub == "" {
		pub = "none"
	} else if len(pub) > 24 {
		pub = pub[:24] + "…"
	}
	unit := str(v["unit"])
	return fmt.Sprintf("fund %s: %s (%s), %s\nin       %12d %s  (%d donations)\nout      %12d %s  (%d disbursements)\nbalance  %12d %s\npublisher %s\n",
		str(v["fund"]), str(v["name"]), unit, state,
		u64(v["in"]), unit, u64(v["donations"]), u64(v["out"]), unit, u64(v["disbursements"]), u64(v["balance"]), unit, pub)
}

// ---- res -----------------------------------------------------------------

func (a *app) resCmd() *cobra.Command {
	res := &cobra.Command{
		Use:   "res",
		Short: "Resource accounts: open, alloc, transfer, consume, close, show, list",
		Long: `vcli res appends the events of the resource schema (docs/applications.md).
Opening, allocating and closing are authority events; an account opened with
--account-key moves (transfer, consume) only through records that key signs
(--key).`,
	}
	var unit, accountKey, owner string
	amountEvent := func(use, short string, mk func(string, uint64) client.Event) *cobra.Command {
		return a.eventCmd(use, short, "resource", 2, func(args []string) (client.Event, error) {
			n, err := parseAmount(args[1])
			if err != nil {
				return client.Event{}, err
			}
			return mk(args[0], n), nil
		}, nil)
	}
	var chain string
	show := &cobra.Command{
		Use:   "show ACCOUNT",
		Short: "Show an account: balance, allocated, consumed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.showView(cmd, chain, "account", map[string]any{"account": args[0]}, func(v map[string]any) string {
				return formatAccounts([]map[string]any{v})
			})
		},
	}
	chainFlag(show, &chain, "resource")
	list := &cobra.Command{
		Use:   "list",
		Short: "Show every account as a table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withReader(cmd, func(c *client.Client) error {
				var rows []map[string]any
				for from := uint64(0); ; {
					page, _, err := c.View(cmd.Context(), chain, "accounts", map[string]any{"from": from})
					if err != nil {
						return err
					}
					for _, n := range strList(page["accounts"]) {
						v, _, err := c.View(cmd.Context(), chain, "account", map[string]any{"account": n})
						if err != nil {
							return err
						}
						rows = append(rows, v)
					}
					next, ok := page["next"].(uint64)
					if !ok {
						break
					}
					from = next
				}
				if a.opts.json {
					out := make([]any, len(rows))
					for i, r := range rows {
						out[i] = jsonable(r)
					}
					a.printJSON(map[string]any{"ok": true, "chain": chain, "accounts": out})
					return nil
				}
				fmt.Fprint(a.stdout, formatAccounts(rows))
				return nil
			})
		},
	}
	chainFlag(list, &chain, "resource")
	res.AddCommand(
		a.eventCmd("open ACCOUNT --unit UNIT [--account-key KEY] [--owner TEXT]", "Open an account (authority)", "resource", 1, func(args []string) (client.Event, error) {
			if unit == "" {
				return client.Event{}, usagef("give the account's --unit UNIT (e.g. cpu-hour)")
			}
			k, err := parsePublicKey("--account-key", accountKey)
			if err != nil {
				return client.Event{}, err
			}
			return client.AccountOpen(args[0], unit, k, owner), nil
		}, func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&unit, "unit", "", "the unit of amounts")
			cmd.Flags().StringVar(&accountKey, "account-key", "", "the only key that may move this account (text, or a file holding it)")
			cmd.Flags().StringVar(&owner, "owner", "", "who owns the account, for people")
		}),
		amountEvent("alloc ACCOUNT AMOUNT", "Add to an account (authority)", client.Alloc),
		a.eventCmd("transfer FROM TO AMOUNT", "Move an amount between two accounts of one unit", "resource", 3, func(args []string) (client.Event, error) {
			n, err := parseAmount(args[2])
			if err != nil {
				return client.Event{}, err
			}
			return client.Transfer(args[0], args[1], n), nil
		}, nil),
		amountEvent("consume ACCOUNT AMOUNT", "Use up an amount of an account", client.Consume),
		a.eventCmd("close ACCOUNT", "Close an account whose balance is 0 (authority)", "resource", 1, func(args []string) (client.Event, error) {
			return client.AccountClose(args[0]), nil
		}, nil),
		show, list)
	return res
}

func formatAccounts(rows []map[string]any) string {
	var b strings.Builder
	w := len("account")
	for _, r := range rows {
		w = max(w, len(str(r["account"])))
	}
	fmt.Fprintf(&b, "%-*s  %-10s  %12s  %12s  %12s  %-6s  %s\n", w, "account", "unit", "balance", "allocated", "consumed", "state", "owner")
	for _, r := range rows {
		state := "open"
		if r["open"] != true {
			state = "closed"
		}
		owner := str(r["owner"])
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(&b, "%-*s  %-10s  %12d  %12d  %12d  %-6s  %s\n", w, str(r["account"]), str(r["unit"]),
			u64(r["balance"]), u64(r["allocated"]), u64(r["consumed"]), state, owner)
	}
	return b.String()
}
