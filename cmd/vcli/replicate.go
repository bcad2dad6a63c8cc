package main

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/verify"
)

// replicateCmd is `vcli replicate [PEER]`: ihost sync.
func (a *app) replicateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "replicate [PEER]",
		Short: "Run a replication round now with PEER, or every mirror and home (admin)",
		Long: `vcli replicate asks the server for one anti-entropy round now (ihost sync,
docs/protocol.md §11) with PEER, a mirror or home peer of "vcli host list", or
with every mirror and home, and prints where each chain stands when it ended:

  PEER ROLE     the peer, and whether it mirrors us (mirror) or we it (home)
  CHAIN         the chain's origin line vserv/<home server-id>/<name>
  HOPS          how far the mirror end is from the home
  SIZE WANT     entries the mirror end holds, and the home holds
  LAG           entries the mirror end lacks / seconds since the oldest of
                them was committed
  STATE         ok, error (LAST-ERROR says why) or refused: the peer showed
                another key than the one pinned, and nothing is exchanged
                until the peer entry changes

An unknown PEER is ERR notfound.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			peer := ""
			if len(args) == 1 {
				peer = args[0]
				if peer == "" {
					return usagef("replicate: PEER is empty (leave it out to replicate with every peer)")
				}
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				rows, err := c.SyncHosts(cmd.Context(), peer)
				if err != nil {
					return err
				}
				if a.opts.json {
					a.printJSON(map[string]any{"ok": true, "peer": peer, "chains": orEmptyRows(rows)})
					return nil
				}
				if len(rows) == 0 {
					fmt.Fprintln(a.stdout, "no mirrored chain to replicate")
					return nil
				}
				t := newPeerTable("PEER", "ROLE", "CHAIN", "HOPS", "SIZE", "WANT", "LAG", "STATE", "LAST-ERROR")
				for _, r := range rows {
					state := "ok"
					switch {
					case r.Refused:
						state = "refused"
					case r.LastError != "":
						state = "error"
					}
					t.add(r.Peer, r.Role, r.Chain, strconv.FormatUint(r.Hops, 10), strconv.FormatUint(r.Size, 10),
						strconv.FormatUint(r.Want, 10), lagText(r.LagEntries, r.LagSeconds), state, dash(oneLine(r.LastError)))
				}
				return t.write(a.stdout)
			})
		},
	}
}

func orEmptyRows(rows []client.SyncStatus) []client.SyncStatus {
	if rows == nil {
		return []client.SyncStatus{}
	}
	return rows
}

// hostForksCmd is `vcli host forks`: ihost forks, with each note's
// signature checked against the key pinned for its origin.
func (a *app) hostForksCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "forks",
		Short: "Show the fork evidence this server kept (admin), with both checkpoints to check",
		Long: `vcli host forks prints the fork evidence the server keeps (ihost forks,
docs/protocol.md §11): a home that offered this mirror a history inconsistent
with the one it holds (kind mirror), or a log that offered the witness
endpoint a checkpoint inconsistent with the one it cosigned (kind witness).

Both checkpoint notes are printed verbatim, so that anyone can check them, and
for each vcli says whether its signature verifies under the key pinned for the
origin in "vcli host list": the home entry whose key derives the origin's
server-id (or that lists the chain), or the log entry of that origin.

  both signed by the pinned key   the home (or log) signed two inconsistent
                                  histories: proof of misbehaviour. ALARM.
  only one signed                 the other note is not the home's: whoever
                                  offered it (or the home's key changed)
  no pinned key                   no entry of "vcli host list" names the
                                  origin: check the notes by hand

The exit status is 0 whatever the evidence says; --json has "alarm" per fork.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				forks, err := c.HostForks(cmd.Context())
				if err != nil {
					return err
				}
				hosts, err := c.ListHosts(cmd.Context())
				if err != nil {
					return err
				}
				views := make([]forkView, len(forks))
				for i, f := range forks {
					views[i] = checkFork(f, hosts)
				}
				if a.opts.json {
					a.printJSON(map[string]any{"ok": true, "forks": views})
					return nil
				}
				a.printForks(views)
				return nil
			})
		},
	}
}

// forkView is a fork with what vcli found out about its two notes.
type forkView struct {
	client.HostFork
	// Pinned names the peer entry whose key the notes were checked with
	// ("home 10.0.0.1:6666"), "" when no entry names the origin.
	Pinned        string `json:"pinned"`
	PinnedKey     string `json:"pinned_key"`
	HeldSigned    bool   `json:"held_signed"`
	OfferedSigned bool   `json:"offered_signed"`
	// Alarm: both notes verify under the pinned key, so its holder signed
	// two inconsistent histories.
	Alarm bool `json:"alarm"`
}

// checkFork checks both notes of f under the key pinned for its origin.
func checkFork(f client.HostFork, hosts []client.HostInfo) forkView {
	v := forkView{HostFork: f}
	for _, h := range pinnedFor(f.Chain, hosts) {
		key, err := secure.ParsePublicKey(h.Key)
		if err != nil {
			continue
		}
		held, offered := signedBy(f.Held, f.Chain, key), signedBy(f.Offered, f.Chain, key)
		// The first entry whose key verifies either note is the one to
		// show; else the first that names the origin.
		if v.Pinned == "" || held || offered {
			v.Pinned, v.PinnedKey = h.Role+" "+h.Peer, h.Key
			v.HeldSigned, v.OfferedSigned = held, offered
		}
		if held || offered {
			break
		}
	}
	v.Alarm = v.HeldSigned && v.OfferedSigned
	return v
}

// pinnedFor is the peer entries that pin a key for origin: log entries of
// that origin line, then home entries whose key derives the origin's
// server-id, then home entries that list the chain (a home after a key
// rotation).
func pinnedFor(origin string, hosts []client.HostInfo) []client.HostInfo {
	var logs, derived, listed []client.HostInfo
	id, name, isVserv := vservOrigin(origin)
	for _, h := range hosts {
		switch {
		case h.Role == "log" && h.Peer == origin:
			logs = append(logs, h)
		case h.Role == "home" && isVserv:
			if key, err := secure.ParsePublicKey(h.Key); err == nil && verify.ServerIDFromKey(key) == id {
				derived = append(derived, h)
			} else if slices.Contains(h.Chains, name) || slices.Contains(h.Chains, origin) {
				listed = append(listed, h)
			}
		}
	}
	return slices.Concat(logs, derived, listed)
}

// vservOrigin splits vserv/<server-id>/<name>.
func vservOrigin(origin string) (id, name string, ok bool) {
	rest, ok := strings.CutPrefix(origin, "vserv/")
	if !ok {
		return "", "", false
	}
	id, name, ok = strings.Cut(rest, "/")
	return id, name, ok && verify.ValidServerID(id)
}

// signedBy says whether the note msg carries a valid signature of the log
// key key under the key name origin.
func signedBy(msg, origin string, key ed25519.PublicKey) bool {
	if msg == "" {
		return false
	}
	_, err := note.Open([]byte(msg), note.VerifierList(verify.NewNoteVerifier(origin, key)))
	return err == nil
}

func (a *app) printForks(views []forkView) {
	if len(views) == 0 {
		fmt.Fprintln(a.stdout, "no forks")
		return
	}
	alarms := 0
	for _, v := range views {
		if v.Alarm {
			alarms++
		}
	}
	fmt.Fprintf(a.stdout, "%d forks kept, %d with both notes signed by the pinned key (ALARM)\n", len(views), alarms)
	for _, v := range views {
		fmt.Fprintln(a.stdout)
		fmt.Fprintf(a.stdout, "%s fork of %s, seen %s: %s\n", v.Kind, v.Chain,
			time.UnixMilli(int64(v.Ms)).UTC().Format(time.RFC3339), oneLine(v.Reason))
		if v.Pinned == "" {
			fmt.Fprintf(a.stdout, "  no peer entry pins a key for %s: check both notes by hand\n", v.Chain)
		} else {
			fmt.Fprintf(a.stdout, "  pinned key: %s (%s)\n", v.Pinned, fingerprint(v.PinnedKey))
		}
		a.printForkNote("held", v.Held, v.HeldSigned, v.Pinned != "")
		a.printForkNote("offered", v.Offered, v.OfferedSigned, v.Pinned != "")
		switch {
		case v.Alarm:
			who := "the home"
			if v.Kind == "witness" || strings.HasPrefix(v.Pinned, "log ") {
				who = "the log"
			}
			fmt.Fprintf(a.stdout, "  ALARM: both signed by %s: %s signed two inconsistent histories of %s\n", who, who, v.Chain)
		case v.Pinned != "" && v.HeldSigned != v.OfferedSigned:
			fmt.Fprintln(a.stdout, "  only one note is signed by the pinned key: the other was not signed by it (someone else offered it, or the key changed)")
		}
	}
}

func (a *app) printForkNote(what, msg string, signed, pinned bool) {
	switch {
	case msg == "":
		fmt.Fprintf(a.stdout, "  %s checkpoint: none (nothing was held yet)\n", what)
		return
	case !pinned:
		fmt.Fprintf(a.stdout, "  %s checkpoint, verbatim:\n", what)
	case signed:
		fmt.Fprintf(a.stdout, "  %s checkpoint, signed by the pinned key, verbatim:\n", what)
	default:
		fmt.Fprintf(a.stdout, "  %s checkpoint, NOT signed by the pinned key, verbatim:\n", what)
	}
	// Verbatim, not indented: it can be cut out and checked as it is.
	fmt.Fprint(a.stdout, msg)
	if !strings.HasSuffix(msg, "\n") {
		fmt.Fprintln(a.stdout)
	}
}
