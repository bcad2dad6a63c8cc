package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/verify"
)

func (a *app) recCmd() *cobra.Command {
	rec := &cobra.Command{
		Use:   "rec",
		Short: "Records: put, get, abs, have, size, list, count, proof, check, head, cons",
		Long: `vcli rec works with the records of a chain. Reading a public chain needs no
account; private chains and writing need -u USER with the right.

Entries are shown one per line: seq, server time, record id, type, payload
(JSON). --json shows every field, and the exact entry bytes in base64.`,
	}
	rec.AddCommand(a.recPutCmd(), a.recGetCmd(), a.recAbsCmd(), a.recHaveCmd(), a.recSizeCmd(),
		a.recListCmd(), a.recCountCmd(), a.recProofCmd(), a.recCheckCmd(), a.recHeadCmd(), a.recConsCmd())
	return rec
}

// withReader dials for a read command: logged in when -u is given (private
// chains), anonymous otherwise (public chains need no account).
func (a *app) withReader(cmd *cobra.Command, fn func(c *client.Client) error) error {
	return a.withClient(cmd, a.opts.user != "", fn)
}

func (a *app) recPutCmd() *cobra.Command {
	var typ, payloadJSON, file, receiptOut, signKey string
	cmd := &cobra.Command{
		Use:   "put CHAIN (--payload JSON | --file F)",
		Short: "Append one record (write right); prints its id, seq and leaf hash",
		Long: `vcli rec put builds a record and appends it to CHAIN.

The payload is JSON, from --payload or --file F ("-" for standard input). It is
stored as CBOR: objects become maps with text keys, whole numbers integers,
other numbers floats, and strings, true, false and null themselves.

The record gets a new UUIDv7 id and the current time as "created". If the
chain demands proof of work (pow_bits in "vcli chain list"), vcli solves it
before sending. --sign-key F signs the record with the Ed25519 key whose 32-byte
seed is in F (raw, or base64 text); the signature binds this server and chain.

--receipt-out FILE saves the record's receipt, which "vcli verify receipt"
checks offline.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			payload, err := a.readPayload(payloadJSON, file)
			if err != nil {
				return err
			}
			var opts client.RecordOptions
			if signKey != "" {
				if opts.Author, err = readSignKey(signKey); err != nil {
					return err
				}
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				ctx := cmd.Context()
				bits, err := a.chainPoWBits(cmd, c, chain)
				if err != nil {
					return err
				}
				opts.Origin = c.ChainOrigin(chain)
				record, err := client.NewRecord(payload, typ, bits, opts)
				if err != nil {
					return usagef("%v", err)
				}
				res, err := c.PutRecords(ctx, chain, [][]byte{record}, receiptOut != "")
				if err != nil {
					return err
				}
				r := res[0]
				if receiptOut != "" {
					if err := os.WriteFile(receiptOut, []byte(r.Receipt), 0o644); err != nil {
						return fmt.Errorf("save receipt: %w", err)
					}
				}
				leaf := hex.EncodeToString(r.Leaf)
				human := fmt.Sprintf("id   %s\nseq  %d\nleaf %s", r.ID, r.Seq, leaf)
				if receiptOut != "" {
					human += "\nreceipt saved in " + receiptOut
				}
				a.print(map[string]any{"ok": true, "chain": chain, "id": r.ID, "seq": r.Seq, "leaf": leaf, "receipt_file": receiptOut}, human)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "the record's type, e.g. vote.cast")
	f.StringVar(&payloadJSON, "payload", "", "the payload as JSON")
	f.StringVar(&file, "file", "", `read the payload JSON from this file ("-" = standard input)`)
	f.StringVar(&receiptOut, "receipt-out", "", "save the record's receipt in this file")
	f.StringVar(&signKey, "sign-key", "", "sign the record with the Ed25519 seed in this file")
	return cmd
}

// readPayload returns the payload of rec put from exactly one of the flags.
func (a *app) readPayload(payloadJSON, file string) (any, error) {
	var data []byte
	switch {
	case payloadJSON != "" && file != "":
		return nil, usagef("give the payload with --payload or --file, not both")
	case payloadJSON != "":
		data = []byte(payloadJSON)
	case file == "-":
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, usagef("read the payload from standard input: %v", err)
		}
		data = b
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("read the payload: %v", err)
		}
		data = b
	default:
		return nil, usagef("no payload: give --payload JSON or --file F")
	}
	p, err := client.PayloadFromJSON(data)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return p, nil
}

// chainPoWBits looks the chain's pow_bits up in `chains`. A chain that is not
// listed (a private one this account may write but not read, say) gets none:
// the server then says what it demands.
func (a *app) chainPoWBits(cmd *cobra.Command, c *client.Client, chain string) (int, error) {
	all, err := c.Chains(cmd.Context())
	if err != nil {
		return 0, err
	}
	name := strings.TrimPrefix(chain, "vserv/"+c.ServerID()+"/")
	for _, ci := range all {
		if ci.Name == name {
			return ci.PoWBits, nil
		}
	}
	return 0, nil
}

// printEntries shows entries (nil = not found, named by keys[i]).
func (a *app) printEntries(chain string, keys []string, es [][]byte) error {
	out := make([]any, len(es))
	var lines []string
	for i, b := range es {
		if b == nil {
			out[i] = nil
			lines = append(lines, keys[i]+": not found")
			continue
		}
		e, err := parseEntryJSON(b)
		if err != nil {
			return err
		}
		out[i] = e
		lines = append(lines, e.human())
	}
	a.print(map[string]any{"ok": true, "chain": chain, "entries": out}, strings.Join(lines, "\n"))
	return nil
}

func (a *app) recGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get CHAIN ID...",
		Short: "Show records by id",
		Long: `vcli rec get shows the entries holding the given record ids. One missing id is
ERR notfound (exit 1); among several, a missing one shows as "not found".`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain, ids := args[0], args[1:]
			return a.withReader(cmd, func(c *client.Client) error {
				var es [][]byte
				if len(ids) == 1 {
					e, err := c.GetRecord(cmd.Context(), chain, ids[0])
					if err != nil {
						return err
					}
					es = [][]byte{e}
				} else {
					for part := range slices.Chunk(ids, client.MaxGetBatch) {
						got, err := c.GetRecords(cmd.Context(), chain, part)
						if err != nil {
							return err
						}
						es = append(es, got...)
					}
				}
				return a.printEntries(chain, ids, es)
			})
		},
	}
}

func (a *app) recAbsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "abs CHAIN SEQ...",
		Short: "Show entries by position (negative from the end: use -- before them, as in `rec abs vote -- -1`)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			seqs := make([]int64, len(args)-1)
			for i, s := range args[1:] {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return usagef("seq %q: want an integer (negative counts from the end)", s)
				}
				seqs[i] = n
			}
			return a.withReader(cmd, func(c *client.Client) error {
				var es [][]byte
				if len(seqs) == 1 {
					e, err := c.AbsRecord(cmd.Context(), chain, seqs[0])
					if err != nil {
						return err
					}
					es = [][]byte{e}
				} else {
					for part := range slices.Chunk(seqs, client.MaxGetBatch) {
						got, err := c.AbsRecords(cmd.Context(), chain, part)
						if err != nil {
							return err
						}
						es = append(es, got...)
					}
				}
				return a.printEntries(chain, args[1:], es)
			})
		},
	}
}

func (a *app) recHaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "have CHAIN ID...",
		Short: "Say which record ids the chain holds",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain, ids := args[0], args[1:]
			return a.withReader(cmd, func(c *client.Client) error {
				var have []bool
				for part := range slices.Chunk(ids, client.MaxGetBatch) {
					got, err := c.HaveRecords(cmd.Context(), chain, part)
					if err != nil {
						return err
					}
					have = append(have, got...)
				}
				m := make(map[string]bool, len(ids))
				lines := make([]string, len(ids))
				for i, id := range ids {
					m[id] = have[i]
					word := "no"
					if have[i] {
						word = "yes"
					}
					lines[i] = id + " " + word
				}
				a.print(map[string]any{"ok": true, "chain": chain, "have": m}, strings.Join(lines, "\n"))
				return nil
			})
		},
	}
}

func (a *app) recSizeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "size CHAIN",
		Short: "Show the number of entries in a chain",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withReader(cmd, func(c *client.Client) error {
				n, err := c.ChainSize(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "chain": args[0], "size": n}, strconv.FormatUint(n, 10))
				return nil
			})
		},
	}
}

// timeRange holds --from and --to.
type timeRange struct{ from, to string }

func (t *timeRange) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.from, "from", "0", "from this server time, inclusive (unix ms or RFC 3339)")
	cmd.Flags().StringVar(&t.to, "to", "", "to this server time, exclusive (unix ms or RFC 3339; default: no end)")
}

func (t *timeRange) parse() (from, to uint64, err error) {
	if from, err = parseTime(t.from); err != nil {
		return 0, 0, err
	}
	to = math.MaxUint64
	if t.to != "" {
		if to, err = parseTime(t.to); err != nil {
			return 0, 0, err
		}
	}
	return from, to, nil
}

func (a *app) recListCmd() *cobra.Command {
	var tr timeRange
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list CHAIN [--from T] [--to T] [--limit N [--cursor C]]",
		Short: "List record ids accepted in a server-time range, in seq order",
		Long: `vcli rec list prints the ids of the records the server accepted between --from
(inclusive) and --to (exclusive), one per line, in seq order. Without --limit it
follows the server's pages to the end. With --limit N it shows one page of at
most N ids (up to 100,000) and the cursor of the next page, which --cursor
takes back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			from, to, err := tr.parse()
			if err != nil {
				return err
			}
			if limit < 0 || limit > client.MaxListPage {
				return usagef("--limit %d: want 1 to %d", limit, client.MaxListPage)
			}
			var cur []byte
			if cursor != "" {
				if limit == 0 {
					return usagef("--cursor continues a paged listing: give --limit too")
				}
				if cur, err = base64.StdEncoding.DecodeString(cursor); err != nil {
					return usagef("--cursor: not the base64 a previous page printed")
				}
			}
			return a.withReader(cmd, func(c *client.Client) error {
				ctx := cmd.Context()
				if limit > 0 {
					ids, next, err := c.ListRecords(ctx, chain, from, to, limit, cur)
					if err != nil {
						return err
					}
					nextText := ""
					if next != nil {
						nextText = base64.StdEncoding.EncodeToString(next)
					}
					if a.opts.json {
						a.printJSON(map[string]any{"ok": true, "chain": chain, "ids": ids, "next": nextText})
						return nil
					}
					for _, id := range ids {
						fmt.Fprintln(a.stdout, id)
					}
					if nextText != "" && !a.opts.quiet {
						fmt.Fprintf(a.stderr, "next page: --cursor %s\n", nextText)
					}
					return nil
				}
				all := []string{}
				for {
					ids, next, err := c.ListRecords(ctx, chain, from, to, client.MaxListPage, cur)
					if err != nil {
						return err
					}
					if a.opts.json {
						all = append(all, ids...)
					} else {
						for _, id := range ids {
							fmt.Fprintln(a.stdout, id)
						}
					}
					if next == nil {
						break
					}
					cur = next
				}
				if a.opts.json {
					a.printJSON(map[string]any{"ok": true, "chain": chain, "ids": all})
				}
				return nil
			})
		},
	}
	tr.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "show one page of at most N ids (default: all, following pages)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue from the cursor a previous page printed")
	return cmd
}

func (a *app) recCountCmd() *cobra.Command {
	var tr timeRange
	cmd := &cobra.Command{
		Use:   "count CHAIN [--from T] [--to T]",
		Short: "Count the records accepted in a server-time range",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := tr.parse()
			if err != nil {
				return err
			}
			return a.withReader(cmd, func(c *client.Client) error {
				n, err := c.CountRecords(cmd.Context(), args[0], from, to)
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "chain": args[0], "count": n}, strconv.FormatUint(n, 10))
				return nil
			})
		},
	}
	tr.register(cmd)
	return cmd
}

func (a *app) recProofCmd() *cobra.Command {
	var size uint64
	var out string
	cmd := &cobra.Command{
		Use:   "proof CHAIN ID|SEQ [--size N] [-o FILE]",
		Short: "Fetch a record's receipt (an inclusion proof under a signed checkpoint)",
		Long: `vcli rec proof fetches the receipt of a record, named by its id or its seq, and
checks it against the server's identity key before printing or saving it.
"vcli verify receipt FILE --server-key KEY" checks it again later, offline.
--size N proves it against the kept checkpoint of that tree size instead of
the one the server chooses.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			ref := client.ByID(args[1])
			if n, err := strconv.ParseUint(args[1], 10, 64); err == nil {
				ref = client.BySeq(n)
			}
			return a.withReader(cmd, func(c *client.Client) error {
				receipt, err := c.Proof(cmd.Context(), chain, ref, size)
				if err != nil {
					return err
				}
				v, err := verify.VerifyReceipt([]byte(receipt), verify.ReceiptOptions{ServerKey: c.Identity(), ServerID: c.ServerID()})
				if err != nil {
					return fmt.Errorf("the server's receipt does not verify under its own key: %w", err)
				}
				if out != "" {
					if err := os.WriteFile(out, []byte(receipt), 0o644); err != nil {
						return fmt.Errorf("save receipt: %w", err)
					}
				}
				switch {
				case a.opts.json:
					a.printJSON(map[string]any{"ok": true, "chain": v.Entry.Chain, "seq": v.Entry.Seq, "id": v.Record.ID,
						"tree_size": v.Checkpoint.Size, "receipt": receipt, "file": absent(out)})
				case out != "":
					fmt.Fprintf(a.stdout, "receipt of %s seq %d (tree size %d) saved in %s\n", v.Entry.Chain, v.Entry.Seq, v.Checkpoint.Size, out)
				default:
					fmt.Fprint(a.stdout, receipt)
				}
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&size, "size", 0, "prove against the kept checkpoint of this tree size")
	cmd.Flags().StringVarP(&out, "output", "o", "", "save the receipt in this file instead of printing it")
	return cmd
}

func (a *app) recCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check CHAIN [sum|link|pow|sig|tree|all]",
		Short: "Have the server check a chain (admin); exit 1 if it finds faults",
		Long: `vcli rec check asks the server to re-check a chain: sum (entries and leaf
hashes), link (prev links and numbering), pow, sig, tree (Merkle tree and
checkpoints) or all (the default). Each fault is printed as
"chain CHAIN seq N: WHAT", and any fault makes the exit status 1.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain, what := args[0], ""
			if len(args) == 2 {
				what = args[1]
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				r, err := c.CheckChain(cmd.Context(), chain, what)
				if err != nil {
					return err
				}
				ok := len(r.Errors) == 0
				if a.opts.json {
					a.printJSON(map[string]any{"ok": ok, "chain": chain, "checked": r.Checked, "errors": r.Errors})
				} else {
					for _, f := range r.Errors {
						fmt.Fprintf(a.stdout, "chain %s seq %d: %s\n", chain, f.Seq, f.What)
					}
					fmt.Fprintf(a.stdout, "%s: %d entries checked, %d faults\n", chain, r.Checked, len(r.Errors))
				}
				if !ok {
					return &quietERR{fmt.Errorf("chain %s has %d faults", chain, len(r.Errors))}
				}
				return nil
			})
		},
	}
}

func (a *app) recHeadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "head CHAIN",
		Short: "Show the chain's newest signed checkpoint, checked against the server's key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			return a.withReader(cmd, func(c *client.Client) error {
				note, err := c.Head(cmd.Context(), chain)
				if err != nil {
					return err
				}
				cp, err := verify.OpenCheckpoint([]byte(note), c.ChainOrigin(chain), c.Identity())
				if err != nil {
					return fmt.Errorf("the checkpoint does not verify under the server's key: %w", err)
				}
				a.print(map[string]any{"ok": true, "chain": chain, "origin": cp.Origin, "size": cp.Size,
					"root": base64.StdEncoding.EncodeToString(cp.Root[:]), "checkpoint": note},
					strings.TrimSuffix(note, "\n"))
				return nil
			})
		},
	}
}

func (a *app) recConsCmd() *cobra.Command {
	var oldFile string
	cmd := &cobra.Command{
		Use:   "cons CHAIN [OLD-SIZE [NEW-SIZE]]",
		Short: "Prove that a chain's checkpoint extends an older one (rcons)",
		Long: `vcli rec cons asks the server for the consistency proof from tree size
OLD-SIZE to the kept checkpoint of NEW-SIZE (default: the newest) and prints the
proof's hashes (base64, one a line) and that checkpoint.

--old FILE (a checkpoint note, a receipt, or a file of the checkpoint cache,
docs/formats.md "Checkpoint cache") checks the proof against that older
checkpoint; OLD-SIZE then defaults to its size. The new checkpoint is also
checked against the cache: a shorter or different history is refused (exit 1)
with both checkpoints printed.`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			var oldNote []byte
			var oldSize, newSize uint64
			have := false
			if oldFile != "" {
				b, err := os.ReadFile(oldFile)
				if err != nil {
					return usagef("--old: %v", err)
				}
				oldNote = verify.CheckpointNote(b)
				text, _, _ := strings.Cut(string(oldNote), "\n\n")
				cp, err := verify.ParseCheckpoint(text + "\n")
				if err != nil {
					return usagef("--old %s: not a checkpoint or receipt: %v", oldFile, err)
				}
				oldSize, have = cp.Size, true
			}
			for i, dst := range []*uint64{&oldSize, &newSize} {
				if len(args) > i+1 {
					n, err := strconv.ParseUint(args[i+1], 10, 64)
					if err != nil {
						return usagef("%q is not a tree size", args[i+1])
					}
					*dst = n
					have = have || i == 0
				}
			}
			if !have {
				return usagef("give OLD-SIZE or --old FILE")
			}
			return a.withReader(cmd, func(c *client.Client) error {
				hashes, note, err := c.Consistency(cmd.Context(), chain, oldSize, newSize)
				if err != nil {
					return err
				}
				origin := c.ChainOrigin(chain)
				now, err := verify.OpenCheckpoint([]byte(note), origin, c.Identity())
				if err != nil {
					return fmt.Errorf("the checkpoint does not verify under the server's key: %w", err)
				}
				checked := false
				if oldNote != nil {
					old, err := verify.OpenCheckpoint(oldNote, origin, c.Identity())
					if err != nil {
						return fmt.Errorf("--old %s does not verify under the server's key: %w", oldFile, err)
					}
					if old.Size != oldSize {
						return usagef("--old %s has size %d, not %d", oldFile, old.Size, oldSize)
					}
					if err := verify.VerifyConsistency(old, now, hashes); err != nil {
						return &quietERR{a.inconsistent(old, now, oldNote, note, err)}
					}
					checked = true
				}
				b64 := make([]string, len(hashes))
				for i, h := range hashes {
					b64[i] = base64.StdEncoding.EncodeToString(h)
				}
				text := strings.Join(append(b64, strings.TrimSuffix(note, "\n")), "\n")
				if checked {
					text += fmt.Sprintf("\nconsistent: size %d extends size %d", now.Size, oldSize)
				}
				a.print(map[string]any{"ok": true, "chain": chain, "old_size": oldSize, "size": now.Size,
					"hashes": b64, "checkpoint": note, "checked": checked}, text)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&oldFile, "old", "", "check the proof against this older checkpoint (note, receipt or cache file)")
	return cmd
}

// inconsistent reports two signed checkpoints that no consistency proof
// joins: the evidence a person can publish.
func (a *app) inconsistent(old, now *verify.Checkpoint, oldNote []byte, note string, why error) error {
	err := fmt.Errorf("checkpoint of size %d is NOT consistent with the one of size %d: %v", now.Size, old.Size, why)
	if a.opts.json {
		a.printJSON(map[string]any{"ok": false, "error": err.Error(), "old": string(oldNote), "new": note})
	} else {
		fmt.Fprintf(a.stderr, "vcli: %v\n--- older:\n%s--- newer:\n%s", err, oldNote, note)
	}
	return err
}
