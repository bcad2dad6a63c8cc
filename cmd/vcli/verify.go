package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

func (a *app) verifyCmd() *cobra.Command {
	v := &cobra.Command{
		Use:   "verify",
		Short: "Verify a receipt offline, or download and verify a whole chain",
	}
	v.AddCommand(a.verifyReceiptCmd(), a.verifyChainCmd())
	return v
}

func (a *app) verifyReceiptCmd() *cobra.Command {
	var serverID string
	var witnesses []string
	var quorum int
	cmd := &cobra.Command{
		Use:   "receipt FILE [--server-key KEY] [--server-id ID] [--witness [ID:]KEY|NAME=KEY ...] [--quorum K]",
		Short: "Check a receipt offline: the entry, the server's signed checkpoint, the inclusion proof",
		Long: `vcli verify receipt checks a receipt (from "rec put --receipt-out" or "rec
proof") without any connection. It proves that the entry in it is at its seq in
the chain under a checkpoint the server signed.

--server-key is the server's public key ("vcli id --key" prints it). A
fingerprint works only if known_hosts holds the key it names. Without
--server-key the key comes from known_hosts: the one recorded for the server
given with -n/-p (or the profile), else the one whose server-id (derived from
the server's first key) is the receipt's origin. --server-id is needed when
the key is not the server's first identity key (after a rotation). Each --witness
is a trusted witness: a vserv witness's key, "SERVER-ID:KEY" when it is not
that witness's first key; or "NAME=KEY" for any C2SP witness (torchwood's,
Sigsum's, ...), NAME being the cosignature key name it publishes. --quorum K
demands verified cosignatures from K distinct listed witnesses; a cosignature
line of a listed witness that does not verify fails the receipt.

FILE "-" reads standard input. Exit status 0 when the receipt verifies, 1 when
it does not, 2 for usage errors.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if serverID != "" && !verify.ValidServerID(serverID) {
				return usagef("--server-id %q: want 32 lowercase hex characters", serverID)
			}
			receipt, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			var key ed25519.PublicKey
			if a.opts.serverKey != "" {
				key, err = a.offlineKey(a.opts.serverKey)
			} else {
				key, serverID, err = a.receiptKey(cmd, receipt, serverID)
			}
			if err != nil {
				return err
			}
			ws, err := a.witnessKeys(witnesses, quorum)
			if err != nil {
				return err
			}
			opts := verify.ReceiptOptions{ServerKey: key, ServerID: serverID, Witnesses: ws, Quorum: quorum}
			v, err := verify.VerifyReceipt(receipt, opts)
			if err != nil {
				return &quietERR{a.receiptFailed(cmd, err)}
			}
			leaf := hex.EncodeToString(v.Leaf[:])
			root := base64.StdEncoding.EncodeToString(v.Checkpoint.Root[:])
			cosigners := make([]string, len(v.Cosigners))
			for i, w := range v.Cosigners {
				cosigners[i] = secure.PublicKeyText(w.Key)
			}
			cosignerNames := witnessNames(v.Cosigners)
			payload := ""
			if v.Record.Payload != nil {
				payload = compactJSON(jsonable(v.Record.Payload))
			}
			human := fmt.Sprintf("ok: record %s is entry %d of %s, in the tree of size %d signed by the server\n  leaf %s\n  root %s\n  type %s\n  payload %s",
				v.Record.ID, v.Entry.Seq, v.Checkpoint.Origin, v.Checkpoint.Size, leaf, root, orDash(v.Record.Type), payload)
			if len(cosigners) > 0 {
				human += fmt.Sprintf("\n  cosigned by %d witnesses: %s", len(cosigners), strings.Join(cosignerNames, ", "))
			}
			a.print(map[string]any{"ok": true, "chain": v.Entry.Chain, "origin": v.Checkpoint.Origin, "seq": v.Entry.Seq,
				"id": v.Record.ID, "type": absent(v.Record.Type), "time": v.Entry.Time, "leaf": leaf, "tree_size": v.Checkpoint.Size,
				"root": root, "cosigners": cosigners, "cosigner_names": cosignerNames, "payload": jsonable(v.Record.Payload)}, human)
			return nil
		},
	}
	cmd.Flags().StringVar(&serverID, "server-id", "", "the server's server-id, when --server-key is not its first identity key")
	cmd.Flags().StringArrayVar(&witnesses, "witness", nil, "a trusted witness: [SERVER-ID:]KEY (vserv) or NAME=KEY (any C2SP witness; repeatable)")
	cmd.Flags().IntVar(&quorum, "quorum", 0, "cosignatures needed from distinct --witness keys")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readInput reads a file, or standard input for "-".
func (a *app) readInput(path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, usagef("read standard input: %v", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return b, nil
}

// offlineKey turns a --server-key or --witness value into a key without any
// connection: a public key is used as given; a fingerprint only names a key,
// so it must be found in known_hosts (§2.4).
func (a *app) offlineKey(text string) (ed25519.PublicKey, error) {
	if !secure.IsFingerprint(text) {
		key, err := secure.ParsePublicKey(text)
		if err != nil {
			return nil, usagef("%v: want the padded base64 public key (`vcli id` prints it)", err)
		}
		return key, nil
	}
	kh, path, err := a.openKnownHosts()
	if err != nil {
		return nil, err
	}
	if key, ok := kh.FindByFingerprint(text); ok {
		return key, nil
	}
	return nil, usagef("%s is a fingerprint and no key in %s has it: need the public key (`vcli id` prints it)", text, path)
}

// receiptKey finds the server key for a receipt in known_hosts when no
// --server-key is given: the key recorded for -n/-p when the command line (or
// the profile) names a server, else the key whose first-key server-id is
// the receipt's origin. It returns the server-id to check the receipt
// against: the origin, which a key found by address may not derive (after a
// rotation).
func (a *app) receiptKey(cmd *cobra.Command, receipt []byte, serverID string) (ed25519.PublicKey, string, error) {
	origin, err := verify.ReceiptServerID(receipt)
	if err != nil {
		// Nothing to look up: the receipt is malformed, which is its fault.
		return nil, "", &quietERR{a.receiptFailed(cmd, err)}
	}
	kh, path, err := a.openKnownHosts()
	if err != nil {
		return nil, "", err
	}
	if cmd.Flags().Changed("host") || cmd.Flags().Changed("port") {
		key, ok := kh.Lookup(a.addr())
		if !ok {
			return nil, "", usagef("%s has no key for %s: give --server-key KEY (`vcli id --key` prints it)", path, a.addr())
		}
		if serverID == "" {
			serverID = origin
		}
		return key, serverID, nil
	}
	for _, key := range kh.Keys() {
		if verify.ServerIDFromKey(key) == origin {
			return key, serverID, nil
		}
	}
	return nil, "", usagef("the receipt is from server %s and no key in %s derives that server-id: give --server-key KEY (`vcli id --key` prints it), or name the server with -n/-p if it rotated its key", origin, path)
}

// receiptFailed reports that a receipt does not verify and returns err.
func (a *app) receiptFailed(cmd *cobra.Command, err error) error {
	file := cmd.Flags().Arg(0)
	if a.opts.json {
		a.printJSON(map[string]any{"ok": false, "file": file, "error": err.Error()})
	} else {
		fmt.Fprintf(a.stderr, "vcli: %s does NOT verify: %v\n", file, err)
	}
	return err
}

// openKnownHosts opens --known-hosts or the default file.
func (a *app) openKnownHosts() (*secure.KnownHosts, string, error) {
	path := a.opts.knownHosts
	if path == "" {
		var err error
		if path, err = secure.DefaultKnownHostsPath(); err != nil {
			return nil, "", usagef("no known_hosts to look the server's key up in (%v): need the public key: give --server-key KEY (`vcli id --key` prints it)", err)
		}
	}
	kh, err := secure.OpenKnownHosts(path)
	if err != nil {
		return nil, "", usagef("%v", err)
	}
	return kh, path, nil
}

// witnessKey parses --witness: NAME=KEY for a witness known by its
// cosignature key name (any C2SP witness: torchwood's, Sigsum's, or a vserv
// one as vserv/<server-id>), else [SERVER-ID:]KEY for a vserv witness. A
// server-id is 32 hex characters, so the colon after it cannot be confused
// with the one in "SHA256:"; a padded base64 key ends in "=", so a value
// that is a key as a whole is never split at its padding.
func (a *app) witnessKey(text string) (verify.WitnessKey, error) {
	var wk verify.WitnessKey
	isKey := func(s string) bool {
		_, err := secure.ParsePublicKey(s)
		return err == nil || secure.IsFingerprint(s)
	}
	id, rest, hasID := strings.Cut(text, ":")
	switch {
	case isKey(text):
	case hasID && verify.ValidServerID(id) && isKey(rest):
		wk.ServerID, text = id, rest
	case strings.Contains(text, "="):
		name, key, _ := strings.Cut(text, "=")
		if err := checkWitnessName(name); err != nil {
			return wk, err
		}
		wk.Name, text = name, key
	case hasID && verify.ValidServerID(id):
		text = rest // for offlineKey's message about the key
	}
	key, err := a.offlineKey(text)
	if err != nil {
		return wk, err
	}
	wk.Key = key
	return wk, nil
}

// checkWitnessName checks the NAME of --witness NAME=KEY: a signed-note key
// name is not empty and holds no space, "+" or control character.
func checkWitnessName(name string) error {
	bad := name == "" || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool {
		return r == '+' || unicode.IsSpace(r) || unicode.IsControl(r)
	})
	if bad {
		return usagef("--witness %q: the key name before \"=\" must be non-empty, without spaces or \"+\"", name)
	}
	return nil
}

// witnessKeys parses every --witness and checks --quorum against them.
func (a *app) witnessKeys(texts []string, quorum int) ([]verify.WitnessKey, error) {
	var out []verify.WitnessKey
	for _, w := range texts {
		wk, err := a.witnessKey(w)
		if err != nil {
			return nil, err
		}
		out = append(out, wk)
	}
	if quorum < 0 || quorum > len(out) {
		return nil, usagef("--quorum %d: want 0 to the number of --witness keys (%d)", quorum, len(out))
	}
	return out, nil
}

// witnessNames are the cosignature key names of ws, for people.
func witnessNames(ws []verify.WitnessKey) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.KeyName()
	}
	return out
}

func (a *app) verifyChainCmd() *cobra.Command {
	var witnesses []string
	var quorum int
	cmd := &cobra.Command{
		Use:   "chain CHAIN [--witness [ID:]KEY|NAME=KEY ...] [--quorum K]",
		Short: "Download a chain and check every entry, link, PoW, signature and the signed root",
		Long: `vcli verify chain downloads every entry of CHAIN up to the server's newest
signed checkpoint and checks it as an outside auditor would, trusting only the
server key pinned (--server-key) or recorded in known_hosts: each entry's
encoding, seq, prev link, time order, proof of work and record signature, and
the Merkle root recomputed from all entries against the checkpoint's signed
root. Public chains need no account; a private one needs -u with the read right.

With --witness (as for "verify receipt": [SERVER-ID:]KEY for a vserv witness,
NAME=KEY for any C2SP witness) the cosignature lines of that checkpoint are
checked too: a line of a listed witness that does not verify is a fault, and
--quorum K demands verified cosignatures from K distinct listed witnesses;
below it the chain is refused, naming the witnesses that did verify.

Progress goes to standard error (not with -q). Every fault is printed as
"chain CHAIN seq N: WHAT" (a witness fault as "chain CHAIN checkpoint N:
WHAT"); any fault makes the exit status 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain := args[0]
			ws, err := a.witnessKeys(witnesses, quorum)
			if err != nil {
				return err
			}
			return a.withReader(cmd, func(c *client.Client) error {
				start := time.Now()
				prog := &chainProgress{a: a, chain: chain, start: start}
				rep, err := c.VerifyChain(cmd.Context(), chain, prog.update)
				prog.finish()
				if err != nil {
					return err
				}
				elapsed := time.Since(start)
				var cosigners []string
				witnessFault := ""
				if len(ws) > 0 && len(rep.Faults) == 0 {
					cc, err := verify.OpenCosignedCheckpoint(rep.Note, rep.Origin, c.CheckpointKey(chain), ws, quorum)
					if err != nil {
						witnessFault = err.Error()
					} else {
						cosigners = witnessNames(cc.Cosigners)
					}
				}
				ok := len(rep.Faults) == 0 && witnessFault == ""
				if a.opts.json {
					doc := map[string]any{"ok": ok, "chain": rep.Chain, "origin": rep.Origin, "size": rep.Size,
						"root": base64.StdEncoding.EncodeToString(rep.Root), "faults": rep.Faults, "seconds": elapsed.Seconds()}
					if len(ws) > 0 {
						doc["witnesses"] = map[string]any{"listed": witnessNames(ws), "quorum": quorum,
							"cosigners": orEmpty(cosigners), "error": witnessFault}
					}
					a.printJSON(doc)
				} else {
					for _, f := range rep.Faults {
						fmt.Fprintf(a.stdout, "chain %s seq %d: %s\n", rep.Chain, f.Seq, f.What)
					}
					if witnessFault != "" {
						fmt.Fprintf(a.stdout, "chain %s checkpoint %d: %s\n", rep.Chain, rep.Size, witnessFault)
					}
					if ok {
						fmt.Fprintf(a.stdout, "ok: chain %s, %s verified against the signed checkpoint (root %s) in %s\n",
							rep.Chain, entriesWord(rep.Size), base64.StdEncoding.EncodeToString(rep.Root), elapsed.Round(time.Millisecond))
						if len(ws) > 0 {
							fmt.Fprintf(a.stdout, "  cosigned by %d of %d listed witnesses (quorum %d): %s\n",
								len(cosigners), len(ws), quorum, dash(strings.Join(cosigners, ", ")))
						}
					}
				}
				if !ok {
					n := len(rep.Faults)
					if witnessFault != "" {
						n++
					}
					return &quietERR{fmt.Errorf("chain %s: %d faults", rep.Chain, n)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&witnesses, "witness", nil, "a trusted witness: [SERVER-ID:]KEY (vserv) or NAME=KEY (any C2SP witness; repeatable)")
	cmd.Flags().IntVar(&quorum, "quorum", 0, "cosignatures of the checkpoint needed from distinct --witness keys")
	return cmd
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// chainProgress shows "verifying CHAIN: done/total" on stderr for downloads
// that take more than a second, redrawn a few times a second.
type chainProgress struct {
	a     *app
	chain string
	start time.Time
	last  time.Time
	drawn bool
	off   bool // never draw
}

func (p *chainProgress) update(done, total uint64) {
	if p.off || p.a.opts.quiet || time.Since(p.start) < time.Second || time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.drawn = true
	fmt.Fprintf(p.a.stderr, "\rverifying %s: %d/%d entries (%.0f%%)", p.chain, done, total, 100*float64(done)/float64(max(total, 1)))
}

func (p *chainProgress) finish() {
	if p.drawn {
		fmt.Fprintln(p.a.stderr)
	}
}

// entriesWord is "1 entry" or "N entries".
func entriesWord[N ~int | ~int64 | ~uint64](n N) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
