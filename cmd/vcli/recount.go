package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/client"
)

// recountResult is what a recount found (DESIGN.md §6.6).
type recountResult struct {
	rep     *client.ChainReport
	chain   apps.Chain
	schema  apps.Schema
	kv      apps.MapKV
	refused *apps.ReplayError // the first recorded event the rules refuse
	diffs   []viewDiff
	checked int                       // views compared
	server  map[string]map[string]any // the server's answers, by query
	// replayOnly: a chain without a schema replayed with --schema, no
	// server views to compare.
	replayOnly bool
}

type viewDiff struct {
	q       apps.Query
	Query   string `json:"view"`
	Recount string `json:"recount"`
	Server  string `json:"server"`
}

// recountAttempts bounds how often a recount starts over because the chain
// grew between the download and the server's view answers.
const recountAttempts = 3

// recount downloads and checks the chain, replays it from entry 0 and
// compares the views the queries name with the server's answers at the
// same size. queries nil means every view the replayed state holds.
//
// asSchema replays a chain without a schema with that schema's rules (a
// chain kept free-form, or a draft): there is no server view to compare, so
// only the chain's checks and the rules count.
func (a *app) recount(cmd *cobra.Command, c *client.Client, chain, asSchema string, queries func(apps.Schema, apps.KV) ([]apps.Query, error)) (*recountResult, error) {
	ctx := cmd.Context()
	all, err := c.Chains(ctx)
	if err != nil {
		return nil, err
	}
	// A chain is a name, or an origin vserv/<server-id>/<name> (a mirror).
	name, home := chain, c.ServerID()
	if rest, ok := strings.CutPrefix(chain, "vserv/"); ok {
		if id, n, ok := strings.Cut(rest, "/"); ok {
			home, name = id, n
		}
	}
	found, ok := c.FindChain(all, chain)
	info := &found
	if !ok {
		return nil, &client.Error{Code: client.ErrNotFound.Code, Text: fmt.Sprintf("no chain %q", chain)}
	}
	schema := info.Schema
	switch {
	case asSchema != "" && info.Schema != "":
		return nil, usagef("chain %s has the schema %s: --schema is for chains without one", name, info.Schema)
	case asSchema != "":
		schema = asSchema
	case schema == "":
		return nil, usagef("chain %s has no schema: there are no rules to recount (--schema S replays it with S's rules)", name)
	}
	s, err := apps.For(schema)
	if err != nil {
		return nil, usagef("%v", err)
	}
	authority, err := c.ChainAuthorities(ctx)
	if err != nil {
		return nil, err
	}
	auth, err := apps.ParseAuthority(authority[info.Ref(c.ServerID())])
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", name, err)
	}
	for attempt := 1; ; attempt++ {
		r := &recountResult{schema: s, kv: apps.MapKV{}, server: map[string]map[string]any{}}
		// Entries are replayed as they arrive, so a recount holds the state,
		// not the chain; the first refusal stops the replay, not the checks.
		r.chain = apps.Chain{Name: name, Origin: home, Schema: schema, Authority: auth}
		var next uint64
		var replayErr error
		replay := func(_ uint64, e []byte) {
			if replayErr == nil && r.refused == nil {
				next, replayErr = apps.Replay(r.kv, r.chain, next, [][]byte{e})
				var re *apps.ReplayError
				if errors.As(replayErr, &re) {
					r.refused, replayErr = re, nil
				}
			}
		}
		prog := a.recountProgress(name)
		r.rep, err = c.VerifyChainEach(ctx, chain, prog.update, replay)
		prog.finish()
		if err != nil {
			return nil, err
		}
		if replayErr != nil {
			return nil, replayErr
		}
		if len(r.rep.Faults) > 0 || r.refused != nil {
			return r, nil
		}
		if asSchema != "" {
			r.replayOnly = true
			return r, nil
		}
		qs, err := s.Queries(r.kv)
		if queries != nil {
			qs, err = queries(s, r.kv)
		}
		if err != nil {
			return nil, err
		}
		grew := false
		fetcher := a.newViewFetcher(ctx, c, chain, len(qs))
		for i, q := range qs {
			mine, err := apps.ViewBytes(s, r.kv, r.chain, q)
			if err != nil {
				fetcher.close()
				return nil, err
			}
			ans, err := fetcher.get(qs, i)
			if err != nil {
				fetcher.close()
				return nil, err
			}
			theirs, size := ans.view, ans.size
			if ans.missing {
				// A missing item names no size; the next answer that does
				// catches a chain that grew.
				size = r.rep.Size
			}
			if size != r.rep.Size {
				grew = true
				break
			}
			if theirs != nil {
				// Compare values, not one server's choice of encoding.
				var v map[string]any
				if err := canon.Unmarshal(theirs, &v); err != nil {
					return nil, fmt.Errorf("view %s: %w", q, err)
				}
				r.server[q.String()] = v
				if theirs, err = canon.Marshal(v); err != nil {
					return nil, fmt.Errorf("view %s: %w", q, err)
				}
			}
			r.checked++
			if !bytes.Equal(mine, theirs) {
				r.diffs = append(r.diffs, viewDiff{q: q, Query: q.String(), Recount: diagnose(mine), Server: diagnose(theirs)})
			}
		}
		fetcher.close()
		if !grew {
			return r, nil
		}
		if attempt == recountAttempts {
			return nil, fmt.Errorf("chain %s grew during each of %d recounts: try again when it is quieter", name, recountAttempts)
		}
	}
}

func diagnose(b []byte) string {
	if b == nil {
		return "absent"
	}
	s, err := cbor.Diagnose(b)
	if err != nil {
		return base64.StdEncoding.EncodeToString(b)
	}
	return s
}

// recountProgress draws a progress bar on a terminal only (not with -q or
// --json).
func (a *app) recountProgress(chain string) *chainProgress {
	p := &chainProgress{a: a, chain: chain, start: time.Now()}
	f, ok := a.stderr.(*os.File)
	if a.opts.json || a.opts.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		p.off = true
	}
	return p
}

// report prints the outcome common to recount and tally, and returns the
// error that makes the exit status 1 when anything is wrong.
func (a *app) recountFailure(r *recountResult) error {
	name := r.rep.Chain
	var problems []string
	for _, f := range r.rep.Faults {
		problems = append(problems, fmt.Sprintf("chain %s seq %d: %s", name, f.Seq, f.What))
	}
	if re := r.refused; re != nil {
		var rule *apps.RuleError
		if errors.As(re, &rule) {
			problems = append(problems, fmt.Sprintf("chain %s seq %d: recorded event refused by rule %s: %s", name, re.Seq, rule.Rule, rule.Error()))
		} else {
			problems = append(problems, fmt.Sprintf("chain %s seq %d: entry cannot be replayed: %v", name, re.Seq, re.Err))
		}
	}
	for _, d := range r.diffs {
		p := fmt.Sprintf("chain %s view %s differs:\n  recount %s\n  server  %s", name, d.Query, d.Recount, d.Server)
		mine, err := r.schema.View(r.kv, r.chain, d.q.Name, d.q.Args)
		if m, ok := mine.(map[string]any); ok && err == nil && d.q.Name == "tally" && r.server[d.Query] != nil {
			p += "\n" + strings.TrimRight(formatTally(r.server[d.Query], canonMap(m)), "\n")
		}
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return nil
	}
	if !a.opts.json {
		for _, p := range problems {
			fmt.Fprintln(a.stdout, p)
		}
	}
	return &quietERR{fmt.Errorf("chain %s: recount found %d problems", name, len(problems))}
}

func (r *recountResult) authorityText() string {
	if len(r.chain.Authority) == 0 {
		return "none: the operator is trusted for who opened, closed and registered"
	}
	keys := make([]string, len(r.chain.Authority))
	for i, k := range r.chain.Authority {
		keys[i] = apps.KeyText(k)
	}
	return strings.Join(keys, ", ")
}

func (r *recountResult) json(extra map[string]any) map[string]any {
	out := map[string]any{"ok": len(r.rep.Faults) == 0 && r.refused == nil && len(r.diffs) == 0,
		"chain": r.rep.Chain, "schema": r.chain.Schema, "size": r.rep.Size,
		"root": base64.StdEncoding.EncodeToString(r.rep.Root), "faults": r.rep.Faults,
		"views_compared": r.checked, "differences": r.diffs}
	if r.diffs == nil {
		out["differences"] = []viewDiff{}
	}
	if re := r.refused; re != nil {
		ref := map[string]any{"seq": re.Seq, "error": re.Err.Error()}
		var rule *apps.RuleError
		if errors.As(re, &rule) {
			ref["rule"] = rule.Rule
		}
		out["refused"] = ref
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// fromAddr applies --from HOST:PORT to the global -n/-p.
func (a *app) fromAddr(from string) error {
	if from == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(from)
	if err != nil {
		return usagef("--from %q: want HOST:PORT", from)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return usagef("--from %q: bad port", from)
	}
	a.opts.host, a.opts.port = host, p
	return nil
}

func (a *app) recountCmd() *cobra.Command {
	var from, asSchema string
	cmd := &cobra.Command{
		Use:   "recount CHAIN [--from HOST:PORT] [--schema S]",
		Short: "Download a schema chain, check it, replay every rule from entry 0 and compare every view with the server's",
		Long: `vcli recount downloads every entry of CHAIN (from its home, or with --from from
any server that mirrors it), checks every link, leaf, proof of work, signature
and the Merkle root against the signed checkpoint, replays every event from
entry 0 with the same rules the server runs, and compares each view it
computes with the server's "view" answer at the same size.

Any fault, any recorded event the rules refuse (named by seq and rule), or any
view that differs is printed and makes the exit status 1. Progress shows on a
terminal (not with -q or --json). --schema S replays a chain that has no schema
with S's rules (vote, donation or resource); there are then no server views.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.fromAddr(from); err != nil {
				return err
			}
			return a.withReader(cmd, func(c *client.Client) error {
				r, err := a.recount(cmd, c, args[0], asSchema, nil)
				if err != nil {
					return err
				}
				if a.opts.json {
					a.printJSON(r.json(nil))
				}
				if err := a.recountFailure(r); err != nil {
					return err
				}
				if !a.opts.json {
					a.printRecount(r)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "download from this server (a mirror) instead of -n/-p")
	cmd.Flags().StringVar(&asSchema, "schema", "", "replay a chain without a schema with this schema's rules (no server views to compare)")
	return cmd
}

// printRecount shows the recounted views beside the server's: every tally as
// a table, the other views by name.
func (a *app) printRecount(r *recountResult) {
	fmt.Fprintf(a.stdout, "chain %s (schema %s): %d entries verified against the signed checkpoint, root %s\n",
		r.rep.Chain, r.chain.Schema, r.rep.Size, base64.StdEncoding.EncodeToString(r.rep.Root))
	fmt.Fprintf(a.stdout, "authority keys: %s\n", r.authorityText())
	qs, _ := r.schema.Queries(r.kv)
	for _, q := range qs {
		if q.Name != "tally" {
			continue
		}
		v, err := r.schema.View(r.kv, r.chain, q.Name, q.Args)
		if m, ok := v.(map[string]any); ok && err == nil && r.server[q.String()] != nil {
			fmt.Fprintln(a.stdout)
			fmt.Fprint(a.stdout, formatTally(r.server[q.String()], canonMap(m)))
		}
	}
	if r.replayOnly {
		fmt.Fprintf(a.stdout, "\nok: replayed %d entries with the %s rules; the chain has no schema, so there are no server views to compare\n",
			r.rep.Size, r.chain.Schema)
		return
	}
	fmt.Fprintf(a.stdout, "\nok: replayed %d entries with the %s rules; all %d views agree with the server at size %d\n",
		r.rep.Size, r.chain.Schema, r.checked, r.rep.Size)
}

// canonMap is a view as a server's answer decodes (counts uint64, lists
// []any): the form the formatters read.
func canonMap(m map[string]any) map[string]any {
	b, err := canon.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if canon.Unmarshal(b, &out) != nil {
		return m
	}
	return out
}

func (a *app) tallyCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "tally CHAIN BALLOT",
		Short: "Recount one ballot: download and check the chain, replay it and show the tally beside the server's",
		Long: `vcli tally does what vcli recount does for one ballot: it downloads and checks
every entry of CHAIN, replays every event from entry 0, and prints the
recounted tally of BALLOT beside the server's. Any fault, refused event or
difference is printed and makes the exit status 1.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.fromAddr(from); err != nil {
				return err
			}
			ballot := args[1]
			if !apps.ValidName(ballot) {
				return usagef("ballot %q: want a name matching [a-z0-9][a-z0-9_-]{0,63}", ballot)
			}
			q := apps.Query{Name: "tally", Args: map[string]any{"ballot": ballot}}
			return a.withReader(cmd, func(c *client.Client) error {
				r, err := a.recount(cmd, c, args[0], "", func(apps.Schema, apps.KV) ([]apps.Query, error) { return []apps.Query{q}, nil })
				if err != nil {
					return err
				}
				var mine map[string]any
				if r.refused == nil && len(r.rep.Faults) == 0 {
					b, err := apps.ViewBytes(r.schema, r.kv, r.chain, q)
					if err != nil {
						return err
					}
					if b == nil {
						return &client.Error{Code: client.ErrNotFound.Code, Text: fmt.Sprintf("no ballot %s in chain %s", ballot, r.rep.Chain)}
					}
					_ = canon.Unmarshal(b, &mine)
				}
				if a.opts.json {
					a.printJSON(r.json(map[string]any{"tally": jsonable(mine)}))
				}
				if err := a.recountFailure(r); err != nil {
					return err
				}
				if !a.opts.json {
					fmt.Fprintf(a.stdout, "chain %s: %d entries verified against the signed checkpoint and replayed from entry 0\n", r.rep.Chain, r.rep.Size)
					fmt.Fprintf(a.stdout, "authority keys: %s\n\n", r.authorityText())
					fmt.Fprint(a.stdout, formatTally(r.server[q.String()], mine))
					fmt.Fprintf(a.stdout, "\nok: the recount agrees with the server at size %d\n", r.rep.Size)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "download from this server (a mirror) instead of -n/-p")
	return cmd
}
