package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

// chainCmd groups chain management. Per-chain rights live here too (rather
// than under `user`): they are granted on a chain, and `chain grant` reads
// like the protocol's `grant name chain right`.
func (a *app) chainCmd() *cobra.Command {
	chain := &cobra.Command{
		Use:   "chain",
		Short: "Chains: list, create, and grant or revoke per-chain rights",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the chains you may read (public ones without an account)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withReader(cmd, func(c *client.Client) error {
				chains, err := c.Chains(cmd.Context())
				if err != nil {
					return err
				}
				if a.opts.json {
					a.printJSON(map[string]any{"ok": true, "chains": chains})
					return nil
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSIZE\tPUBLIC\tPOW_BITS\tSCHEMA")
				for _, ch := range chains {
					schema := ch.Schema
					if schema == "" {
						schema = "-"
					}
					fmt.Fprintf(tw, "%s\t%d\t%v\t%d\t%s\n", ch.Name, ch.Size, ch.Public, ch.PoWBits, schema)
				}
				return tw.Flush()
			})
		},
	}
	var o client.ChainOptions
	create := &cobra.Command{
		Use:   "create NAME [--public] [--pow-bits N] [--schema S [--authority KEY]...]",
		Short: "Create a chain (admin)",
		Long: `vcli chain create makes a new chain and its first (empty) signed checkpoint.
Names match [a-z0-9][a-z0-9_-]{0,63}. --public lets anyone read it without an
account; --pow-bits N (0 to 32, fixed for good) makes every record carry a proof
of work of N bits. On an existing empty chain without a schema, --schema only
attaches one. --authority KEY (repeatable, up to 16; the text vcli key new
prints, or a file holding it) fixes the keys that must sign the authority
events of a schema chain.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for i, k := range o.Authority {
				o.Authority[i] = keyTextArg(k)
			}
			if o.PoWBits < 0 || o.PoWBits > 32 {
				return usagef("--pow-bits %d: want 0 to 32", o.PoWBits)
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				if err := c.MakeChain(cmd.Context(), args[0], o); err != nil {
					return err
				}
				vis := "private"
				if o.Public {
					vis = "public"
				}
				a.print(map[string]any{"ok": true, "name": args[0], "public": o.Public, "pow_bits": o.PoWBits, "schema": absent(o.Schema)},
					fmt.Sprintf("created %s chain %s (pow_bits %d)", vis, args[0], o.PoWBits))
				return nil
			})
		},
	}
	create.Flags().BoolVar(&o.Public, "public", false, "readable by anyone, without an account")
	create.Flags().IntVar(&o.PoWBits, "pow-bits", 0, "proof-of-work bits every record must meet (0 to 32)")
	create.Flags().StringVar(&o.Schema, "schema", "", "application rules the server enforces on the chain")
	create.Flags().StringArrayVar(&o.Authority, "authority", nil, "a key that must sign the chain's authority events (repeatable)")
	chain.AddCommand(list, create, a.rightCmd(true), a.rightCmd(false))
	return chain
}

func (a *app) rightCmd(grant bool) *cobra.Command {
	verb, past := "revoke", "revoked"
	if grant {
		verb, past = "grant", "granted"
	}
	return &cobra.Command{
		Use:   verb + " USER CHAIN read|write|replicate",
		Short: fmt.Sprintf("%s a per-chain right (admin)", map[bool]string{true: "Grant", false: "Revoke"}[grant]),
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, chain, right := args[0], args[1], args[2]
			switch right {
			case "read", "write", "replicate":
			default:
				return usagef("right %q: want read, write or replicate", right)
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				var err error
				if grant {
					err = c.Grant(cmd.Context(), user, chain, right)
				} else {
					err = c.Revoke(cmd.Context(), user, chain, right)
				}
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "user": user, "chain": chain, "right": right, verb: true},
					fmt.Sprintf("%s %s on %s: %s", past, right, chain, user))
				return nil
			})
		},
	}
}
