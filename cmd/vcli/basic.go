package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

// withClient dials (logging in when login is set), runs fn and says goodbye.
func (a *app) withClient(cmd *cobra.Command, login bool, fn func(c *client.Client) error) error {
	ctx := cmd.Context()
	c, err := a.connect(ctx, login)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := fn(c); err != nil {
		return err
	}
	_ = c.Quit(ctx)
	return nil
}

func (a *app) helloCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hello",
		Short: "Say hello: checks that the server answers over an encrypted session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, a.opts.user != "", func(c *client.Client) error {
				h, err := c.Hello(cmd.Context())
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "server_id": h.ServerID, "connection_id": h.ConnectionID},
					fmt.Sprintf("hello from %s (server %s, connection %s)", a.addr(), h.ServerID, h.ConnectionID))
				return nil
			})
		},
	}
}

func (a *app) verCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ver",
		Aliases: []string{"vers"},
		Short:   "Show the server's version and protocol version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, false, func(c *client.Client) error {
				v, err := c.Ver(cmd.Context())
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "server": v.Server, "protocol": v.Protocol},
					fmt.Sprintf("%s (protocol %d)", v.Server, v.Protocol))
				return nil
			})
		},
	}
}

func (a *app) idCmd() *cobra.Command {
	var keyOnly bool
	cmd := &cobra.Command{
		Use:   "id [--key]",
		Short: "Show the server's identity: server-id, site, fingerprint and public key",
		Long: `vcli id prints the server's identity. Compare the fingerprint with the one the
operator publishes; verifiers need the public key, which --key prints alone
(for scripts: KEY=$(vcli id --key)).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, false, func(c *client.Client) error {
				id, err := c.ID(cmd.Context())
				if err != nil {
					return err
				}
				if keyOnly && !a.opts.json {
					fmt.Fprintln(a.stdout, id.PublicKey)
					return nil
				}
				human := fmt.Sprintf("server-id:   %s\nsite:        %s\nfingerprint: %s\npublic key:  %s",
					id.ServerID, id.Site, id.Fingerprint, id.PublicKey)
				doc := map[string]any{"ok": true, "server_id": id.ServerID, "site": id.Site,
					"fingerprint": id.Fingerprint, "public_key": id.PublicKey}
				if len(id.Receipts) > 0 {
					human += fmt.Sprintf("\nrotations:   %d (receipts with --json)", len(id.Receipts))
					doc["rotation_receipts"] = id.Receipts
				}
				a.print(doc, human)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&keyOnly, "key", false, "print only the public key")
	return cmd
}
