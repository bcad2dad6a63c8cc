package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

// strictTree makes every mistake in the command words a usage error (exit
// 2), in every subcommand tree, including those of other files: a group
// (user, rec, verify, ...) given an unknown word or none says so instead of
// printing its help with exit 0, and a command given the wrong number of
// arguments says what it takes.
func strictTree(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictTree(sub)
	}
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		// Its help shows "vcli user [command]", not a usage line of its own.
		c.SetUsageTemplate(strings.Replace(c.UsageTemplate(), "Usage:{{if .Runnable}}", "Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
		c.RunE = func(cmd *cobra.Command, args []string) error {
			subs := subcommandNames(cmd)
			if len(args) == 0 {
				return usagef("%s needs a subcommand: %s (see %s --help)", cmd.CommandPath(), subs, cmd.CommandPath())
			}
			return usagef("%s has no subcommand %q; it has: %s (see %s --help)", cmd.CommandPath(), args[0], subs, cmd.CommandPath())
		}
		return
	}
	if check := c.Args; check != nil && c.Runnable() {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err == nil {
				return nil
			}
			// cobra.NoArgs words its refusal as an unknown command.
			if strings.HasPrefix(err.Error(), "unknown command") {
				return usagef("%s takes no arguments (got %q; see %s --help)", cmd.CommandPath(), strings.Join(args, " "), cmd.CommandPath())
			}
			// The others in cobra's words ("accepts 1 arg(s), received 0"):
			// the usage line says what the command takes.
			return usagef("%s: wrong number of arguments (%d given; usage: %s)", cmd.CommandPath(), len(args), cmd.UseLine())
		}
	}
}

func subcommandNames(c *cobra.Command) string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return strings.Join(names, ", ")
}

// helpCmd is vcli's own help, offline. The server's protocol help is
// --server, because a person typing `vcli help` wants vcli's commands.
func (a *app) helpCmd() *cobra.Command {
	var server bool
	cmd := &cobra.Command{
		Use:   "help [COMMAND...] | help --server [PROTOCOL-COMMAND]",
		Short: "Show vcli's help for a command; --server lists the server's protocol commands",
		Long: `vcli help [COMMAND...] shows the help of a vcli command, with no connection
(the same as vcli COMMAND... --help).

vcli help --server asks the server for its protocol commands (what vcli shell
sends), and vcli help --server NAME for one protocol command's usage.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if server {
				return a.serverHelp(cmd, args)
			}
			root := cmd.Root()
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("vcli has no command %q (see vcli --help)", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		},
	}
	cmd.Flags().BoolVar(&server, "server", false, "ask the server for its protocol commands")
	return cmd
}

func (a *app) serverHelp(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usagef("vcli help --server takes at most one protocol command (got %q)", strings.Join(args, " "))
	}
	return a.withClient(cmd, false, func(c *client.Client) error {
		if len(args) == 1 {
			usage, err := c.HelpFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a.print(map[string]any{"ok": true, "command": args[0], "usage": usage}, usage)
			return nil
		}
		names, err := c.Help(cmd.Context())
		if err != nil {
			return err
		}
		a.print(map[string]any{"ok": true, "commands": names}, strings.Join(names, " "))
		return nil
	})
}
