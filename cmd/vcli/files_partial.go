package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

// filePartialCmd is `vcli file partial ls|rm`: the interrupted uploads the
// server keeps for resuming, which count against the quota.
func (a *app) filePartialCmd(ff *fileFlags) *cobra.Command {
	partial := &cobra.Command{
		Use:   "partial",
		Short: "List or discard interrupted uploads kept for resuming (they count against your quota)",
		Long: `An upload that is interrupted is kept on the server, so that putting the same
file to the same path again resumes where it stopped. Kept uploads count
against your quota until resumed, discarded, or 24 hours without a write have
passed at a server restart.`,
	}
	partial.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the partial uploads: received/size, last write, path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				parts, err := c.ListPartials(cmd.Context(), ff.opts())
				if err != nil {
					return err
				}
				if a.opts.json {
					out := make([]map[string]any, len(parts))
					for i, p := range parts {
						out[i] = map[string]any{"name": p.Name, "size": p.Size, "have": p.Have,
							"sha256": hexSum(p.SHA256), "mtime_ms": p.MtimeMs}
					}
					a.printJSON(map[string]any{"ok": true, "partials": out})
					return nil
				}
				width := 1
				for _, p := range parts {
					width = max(width, len(strconv.FormatInt(p.Have, 10)+"/"+strconv.FormatInt(p.Size, 10)))
				}
				for _, p := range parts {
					fmt.Fprintf(a.stdout, "%*s  %s  %s\n", width, fmt.Sprintf("%d/%d", p.Have, p.Size), mtimeText(p.MtimeMs), p.Name)
				}
				return nil
			})
		},
	}, a.filePathCmd(ff, "rm", "Discard the partial uploads of PATH and free their quota", "discarded partial upload of",
		(*client.Client).DiscardPartial))
	return partial
}
