package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mdp/qrterminal/v3"
	"github.com/spf13/cobra"

	"github.com/vserv/vserv/client"
)

func (a *app) twofaCmd() *cobra.Command {
	var enrollCode, pngFile string
	cmd := &cobra.Command{
		Use:   "2fa",
		Short: "Enroll an authenticator app as your second factor (TOTP)",
		Long: `vcli -u NAME user 2fa enrolls a TOTP authenticator app (any RFC 6238 app) for
the account NAME. It shows a QR code in the terminal to scan, prints the
otpauth URI and ten one-time recovery codes (shown only this once: keep them
somewhere safe), and then asks for the app's first code, which makes the new
factor active. Until that code is accepted the old factor, if any, stays.

In production mode (-P) the first enrollment needs the enrollment code that
uini, user add or user reset2fa printed: --code CODE. Replacing an active
factor needs a login with it: the login code from --otp or $VSERV_OTP, and the
confirmation code from a prompt or standard input. Without a login code, --otp
or $VSERV_OTP gives the confirmation code; otherwise it is asked on a terminal
or read as one line of standard input.

-o FILE also saves the QR code as a PNG image (mode 0600: it holds the secret).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.enroll(cmd.Context(), enrollCode, pngFile)
		},
	}
	cmd.Flags().StringVar(&enrollCode, "code", "", "the production-mode enrollment code")
	cmd.Flags().StringVarP(&pngFile, "output", "o", "", "also save the QR code as a PNG image in this file")
	return cmd
}

// enroll logs in, runs qr (after twofa when the account already has a factor),
// shows the enrollment and confirms it with the first code.
func (a *app) enroll(ctx context.Context, enrollCode, pngFile string) error {
	if a.opts.user == "" {
		return usagef("user 2fa enrolls the account you log in as: give -u USER (and --pass-file, -t or $VSERV_PASSWORD)")
	}
	pass, err := a.password()
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	login, err := c.Login(ctx, a.opts.user, pass)
	if err != nil {
		return err
	}
	codes := &otpSource{a: a}
	en, err := c.Enroll(ctx, enrollCode)
	if errors.Is(err, client.ErrState) && login.Needs2FA {
		// The account has an active factor: prove it before replacing it.
		code, err := codes.next("second-factor code (from the app's current entry): ")
		if err != nil {
			return err
		}
		if err := c.TwoFA(ctx, code); err != nil {
			return err
		}
		en, err = c.Enroll(ctx, enrollCode)
		if err != nil {
			return err
		}
	} else if errors.Is(err, client.ErrAuth) && enrollCode == "" {
		a.hint("production mode: the first enrollment needs --code with the enrollment code from uini, user add or user reset2fa")
		return err
	} else if err != nil {
		return err
	}
	if pngFile != "" {
		if err := writePrivateFile(pngFile, en.PNG); err != nil {
			return err
		}
	}
	a.showEnrollment(en, pngFile)
	code, err := codes.next("code from the app, to confirm: ")
	if err != nil {
		return err
	}
	if err := c.TwoFA(ctx, code); err != nil {
		a.hint("the code was refused and the new enrollment is discarded; run user 2fa again (and check the phone's clock)")
		return err
	}
	if !a.opts.json {
		fmt.Fprintf(a.stdout, "second factor active for %s\n", login.Name)
	}
	_ = c.Quit(ctx)
	return nil
}

// showEnrollment prints what the user must scan and keep. With --json it is
// the one document of the command, printed before the code is asked so that
// a script can compute it.
func (a *app) showEnrollment(en *client.Enrollment, pngFile string) {
	if a.opts.json {
		a.printJSON(map[string]any{"ok": true, "name": a.opts.user, "uri": en.URI, "recovery_codes": en.Recovery, "png_file": absent(pngFile)})
		return
	}
	fmt.Fprintln(a.stdout, "Scan this QR code with your authenticator app:")
	renderQR(a.stdout, en.URI)
	fmt.Fprintln(a.stdout, "or enter this URI in it:")
	fmt.Fprintln(a.stdout, en.URI)
	if pngFile != "" {
		fmt.Fprintf(a.stdout, "QR code saved to %s (it holds the secret: delete it after scanning)\n", pngFile)
	}
	fmt.Fprintln(a.stdout, "Recovery codes, each valid once, shown only now; keep them safe:")
	for _, rc := range en.Recovery {
		fmt.Fprintln(a.stdout, "  "+rc)
	}
}

// renderQR draws the URI as a QR code of half blocks, two modules per
// character cell, with a four-module quiet zone. Like qrterminal's default it
// draws light modules as full blocks, so on the usual light-on-dark terminal
// the code appears dark on light, as cameras expect.
func renderQR(w io.Writer, uri string) {
	qrterminal.GenerateHalfBlock(uri, qrterminal.L, w)
}

func writePrivateFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return usagef("save the QR code: %v", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("save the QR code to %s: %w", path, werr)
	}
	return nil
}

// hint tells a person what to do next after an ERR, which exitStatus then
// prints; scripts (--json, -q) get the ERR alone.
func (a *app) hint(msg string) {
	if !a.opts.json && !a.opts.quiet {
		fmt.Fprintln(a.stderr, "vcli:", msg)
	}
}

// otpSource hands out second-factor codes: --otp or $VSERV_OTP once (a code
// works only once), then a prompt on a terminal or a line of standard input.
type otpSource struct {
	a    *app
	used bool
}

func (s *otpSource) next(prompt string) (string, error) {
	if !s.used {
		s.used = true
		if s.a.opts.otp != "" {
			return s.a.opts.otp, nil
		}
		if v := os.Getenv("VSERV_OTP"); v != "" {
			return v, nil
		}
	}
	code, err := s.a.promptLine(prompt)
	if err != nil {
		return "", err
	}
	if code == "" {
		return "", usagef("no code given")
	}
	return code, nil
}

func (a *app) reset2faCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reset2fa NAME",
		Short: "Remove NAME's second factor (admin); their sessions end",
		Long: `vcli user reset2fa NAME removes the account's authenticator and recovery
codes and ends its sessions: the way back for a lost phone. The account then
enrolls again with vcli user 2fa; in production mode with the enrollment code
printed here (valid 24 h). An account without a factor is ERR notfound, except
in production mode, where the reset issues a new enrollment code (the way to
replace an expired one).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, true, func(c *client.Client) error {
				code, err := c.Reset2FA(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				human := fmt.Sprintf("second factor of %s removed; its sessions ended", args[0])
				if code != "" {
					human += fmt.Sprintf("\nenrollment code for the new second factor (valid 24 h): %s", code)
				}
				a.print(map[string]any{"ok": true, "name": args[0], "enrollment_code": absent(code)}, human)
				return nil
			})
		},
	}
}
