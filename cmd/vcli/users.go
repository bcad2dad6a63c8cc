package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

func (a *app) uiniCmd() *cobra.Command {
	var token, dataroot, passFile string
	cmd := &cobra.Command{
		Use:   "uini NAME",
		Short: "Create the first admin account (from the server's own machine, once)",
		Long: `vcli uini creates the initial admin. It works only from a loopback address and
only while no account exists. It needs the setup token the server wrote to
DATAROOT/setup-token at first start: vcli reads it from --dataroot (default
./vserv-data) unless --token gives it. The password comes from --new-pass-file,
a prompt (twice) on a terminal, or one line of standard input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == "" {
				b, err := os.ReadFile(filepath.Join(dataroot, "setup-token"))
				if err != nil {
					return usagef("no setup token: give --token, or --dataroot of the server's data directory (%v)", err)
				}
				token = strings.TrimSpace(string(b))
			}
			pass, err := a.newPassword(passFile)
			if err != nil {
				return err
			}
			return a.withClient(cmd, false, func(c *client.Client) error {
				code, err := c.InitAdmin(cmd.Context(), args[0], pass, token)
				if err != nil {
					return err
				}
				human := fmt.Sprintf("created admin %s", args[0])
				if code != "" {
					human += fmt.Sprintf("\nproduction mode: enroll a second factor with `%s -u %s user 2fa --code %s` (the code is valid 24 h)", a.cliPrefix(), args[0], code)
				}
				a.print(map[string]any{"ok": true, "name": args[0], "enrollment_code": absent(code)}, human)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "the setup token (default: read from DATAROOT/setup-token)")
	cmd.Flags().StringVarP(&dataroot, "dataroot", "r", "vserv-data", "the server's data directory, to read the setup token from")
	cmd.Flags().StringVar(&passFile, "new-pass-file", "", "read the new admin's password from this file")
	return cmd
}

func (a *app) userCmd() *cobra.Command {
	user := &cobra.Command{
		Use:   "user",
		Short: "Manage accounts: add, del, enable, disable, list, passwd, 2fa, reset2fa",
	}
	var admin bool
	var newPassFile string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an account (admin); the password from --new-pass-file, a prompt or standard input",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pass, err := a.newPassword(newPassFile)
			if err != nil {
				return err
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				code, err := c.AddUser(cmd.Context(), args[0], pass, admin)
				if err != nil {
					return err
				}
				role := "user"
				if admin {
					role = "admin"
				}
				human := fmt.Sprintf("added %s %s", role, args[0])
				if code != "" {
					human += fmt.Sprintf("\nenrollment code for the second factor (valid 24 h): %s\n(%s enrolls with `%s -u %s user 2fa --code %s`)", code, args[0], a.cliPrefix(), args[0], code)
				}
				a.print(map[string]any{"ok": true, "name": args[0], "role": role, "enrollment_code": absent(code)}, human)
				return nil
			})
		},
	}
	add.Flags().BoolVar(&admin, "admin", false, "give the account the admin role")
	add.Flags().StringVar(&newPassFile, "new-pass-file", "", "read the new account's password from this file")

	del := &cobra.Command{
		Use:   "del NAME",
		Short: "Delete an account (admin); its sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "name": args[0]}, "deleted "+args[0])
				return nil
			})
		},
	}
	enable := func(on bool) *cobra.Command {
		verb := "disable"
		if on {
			verb = "enable"
		}
		return &cobra.Command{
			Use:   verb + " NAME",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " an account (admin)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, true, func(c *client.Client) error {
					if err := c.EnableUser(cmd.Context(), args[0], on); err != nil {
						return err
					}
					a.print(map[string]any{"ok": true, "name": args[0], "enabled": on}, verb+"d "+args[0])
					return nil
				})
			},
		}
	}
	list := &cobra.Command{
		Use:   "list [user|admin|disabled|all]",
		Short: "List accounts (admin)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter := "all"
			if len(args) == 1 {
				filter = args[0]
			}
			return a.withClient(cmd, true, func(c *client.Client) error {
				users, err := c.ListUsers(cmd.Context(), filter)
				if err != nil {
					return err
				}
				if a.opts.json {
					a.printJSON(map[string]any{"ok": true, "users": users})
					return nil
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tENABLED\t2FA")
				for _, u := range users {
					fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", u.Name, u.Role, u.Enabled, u.Has2FA)
				}
				return tw.Flush()
			})
		},
	}
	var passwdFile string
	passwd := &cobra.Command{
		Use:   "passwd [NAME]",
		Short: "Change your password, or (admin) set NAME's password; their sessions end",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				newPass, err := a.newPassword(passwdFile)
				if err != nil {
					return err
				}
				if len(args) == 1 {
					if err := c.SetPassword(cmd.Context(), args[0], newPass); err != nil {
						return err
					}
					a.print(map[string]any{"ok": true, "name": args[0]}, "password of "+args[0]+" set")
					return nil
				}
				old, err := a.password()
				if err != nil {
					return err
				}
				if err := c.ChangePassword(cmd.Context(), old, newPass); err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "name": a.opts.user}, "password changed")
				return nil
			})
		},
	}
	passwd.Flags().StringVar(&passwdFile, "new-pass-file", "", "read the new password from this file")
	user.AddCommand(add, del, enable(true), enable(false), list, passwd, a.twofaCmd(), a.reset2faCmd())
	return user
}
