package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
)

func (a *app) hostCmd() *cobra.Command {
	host := &cobra.Command{
		Use:   "host",
		Short: "Manage this server's replication and witness peers (admin): add, del, list, forks",
	}
	var spec client.HostSpec
	var chains, peerPassFile string
	add := &cobra.Command{
		Use:   "add PEER --role mirror|home|witness|log --key KEY",
		Short: "Add a peer (admin): a mirror or home (host:port), a witness (URL prefix) or a log (origin)",
		Long: `vcli host add adds one peer of the server (docs/protocol.md §11, ihost):

  mirror   PEER is host:port; it mirrors --chains of ours. Needs --account
           (the local account it logs in here with: it becomes a peer
           account pinned to --key), --remote-user (the account we log in
           there with) and its password.
  home     PEER is host:port; we mirror its --chains. Same fields as mirror.
  witness  PEER is the http:// or https:// tlog-witness URL prefix; --name
           is its cosignature key name; --chains is optional (default all).
  log      PEER is the origin line of a log we witness (vserv/<id>/<chain>):
           the --http witness endpoint cosigns its checkpoints from then on.

--key is always the peer's Ed25519 public key as "vcli id" prints it. The
password of --remote-user comes from --remote-pass-file, a prompt or one
line of standard input; the server keeps it sealed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec.Role == "" || spec.Key == "" {
				return usagef("host add needs --role and --key")
			}
			s := spec
			if chains != "" {
				s.Chains = strings.Split(chains, ",")
			}
			if s.Role == "mirror" || s.Role == "home" {
				pass, err := a.newPassword(peerPassFile)
				if err != nil {
					return err
				}
				s.Pass = pass
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				if err := c.AddHost(cmd.Context(), args[0], s); err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "peer": args[0], "role": s.Role}, fmt.Sprintf("added %s %s", s.Role, args[0]))
				return nil
			})
		},
	}
	add.Flags().StringVar(&spec.Role, "role", "", "mirror, home, witness or log")
	add.Flags().StringVar(&spec.Key, "key", "", "the peer's Ed25519 public key (padded base64, as vcli id prints it)")
	add.Flags().StringVar(&spec.Name, "name", "", "witness: its cosignature key name")
	add.Flags().StringVar(&chains, "chains", "", "comma-separated chain names")
	add.Flags().StringVar(&spec.Account, "account", "", "mirror, home: the local account the peer logs in here with")
	add.Flags().StringVar(&spec.User, "remote-user", "", "mirror, home: the account we log in there with")
	add.Flags().StringVar(&peerPassFile, "remote-pass-file", "", "mirror, home: read the password of --remote-user from this file")

	var delRole string
	del := &cobra.Command{
		Use:   "del PEER",
		Short: "Remove a peer (admin): every role of it, or only --role",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				if err := c.DeleteHost(cmd.Context(), args[0], delRole); err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "peer": args[0]}, "removed "+args[0])
				return nil
			})
		},
	}
	del.Flags().StringVar(&delRole, "role", "", "remove only this role of the peer")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the peers (admin) with their replication state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				hosts, err := c.ListHosts(cmd.Context())
				if err != nil {
					return err
				}
				if a.opts.json {
					a.printJSON(map[string]any{"ok": true, "hosts": hosts})
					return nil
				}
				t := newPeerTable("PEER", "ROLE", "CHAINS", "HOPS", "SIZE", "LAG", "LAST-ERROR", "FORKS")
				for _, h := range hosts {
					t.add(h.Peer, h.Role, dash(strings.Join(h.Chains, ",")), strconv.FormatUint(h.Hops, 10),
						strconv.FormatUint(h.Size, 10), lagText(h.LagEntries, h.LagSeconds), dash(oneLine(h.LastError)),
						strconv.FormatUint(h.Forks, 10))
				}
				return t.write(a.stdout)
			})
		},
	}
	host.AddCommand(add, del, list, a.hostForksCmd())
	return host
}

// longPeer is the widest peer shown in the PEER column of a table; a longer
// one (a witness URL, a log's origin line) gets a line of its own above its
// row, so that it does not widen every row.
const longPeer = 28

// peerTable is a table whose first column is a peer.
type peerTable struct {
	header []string
	rows   [][]string
}

func newPeerTable(header ...string) *peerTable { return &peerTable{header: header} }

func (t *peerTable) add(cells ...string) { t.rows = append(t.rows, cells) }

// write prints the table with columns two spaces apart; a long peer is on
// a line of its own, its row indented under it.
func (t *peerTable) write(w io.Writer) error {
	width := make([]int, len(t.header))
	measure := func(cells []string) {
		for i, c := range cells {
			if i == 0 && utf8.RuneCountInString(c) > longPeer {
				continue
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	measure(t.header)
	for _, r := range t.rows {
		measure(r)
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i == len(cells)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
		}
		b.WriteByte('\n')
	}
	line(t.header)
	for _, r := range t.rows {
		if utf8.RuneCountInString(r[0]) > longPeer {
			b.WriteString(r[0] + "\n")
			r = append([]string{"  "}, r[1:]...)
		}
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// lagText is a lag as "ENTRIES / SECONDSs".
func lagText(entries, seconds uint64) string {
	return fmt.Sprintf("%d / %ds", entries, seconds)
}

// oneLine keeps a server's error text on one table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// fingerprint shows a key as people compare it; a key the server sent
// malformed is shown as it came.
func fingerprint(key string) string {
	pub, err := secure.ParsePublicKey(key)
	if err != nil {
		return key
	}
	return secure.Fingerprint(pub)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
