package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/version"
)

// globalOptions are the options of DESIGN.md §7.2, valid before or after the
// command name.
type globalOptions struct {
	host       string
	port       int
	user       string
	passFile   string
	prompt     bool
	otp        string
	serverKey  string
	knownHosts string
	homeKeys   []string
	json       bool
	verbose    bool
	quiet      bool
	profile    string
	timeout    time.Duration
}

type app struct {
	opts   globalOptions
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	reader *bufio.Reader // stdin, shared by every prompt that reads it
	// profileUsed names the profile applyProfile applied, "" if none.
	profileUsed string
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vcli",
		Short: "vserv command-line client",
		Long: `vcli talks to a vserv server over an encrypted session.

The first contact with a server records its identity key in
~/.config/vserv/known_hosts; a changed key is refused. --server-key pins a key
or fingerprint explicitly.

Log in with -u USER and the password from --pass-file F, -t (prompt) or
$VSERV_PASSWORD. A profile in ~/.config/vserv/config.toml can hold the host,
port, user, pass file and server key: --profile NAME or $VSERV_PROFILE picks
one, [default] applies otherwise, and flags override it.

vcli help COMMAND shows a command's help; vcli help --server lists the
server's protocol commands. Exit status: 0 OK, 1 the server answered ERR (or
the peer is no vserv server), 2 usage error or no connection.`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if server, _ := cmd.Flags().GetBool("server"); cmd.Name() == "help" && !server ||
				cmd.HasParent() && cmd.Parent().Name() == "completion" {
				return nil // vcli's own help and completion need no profile
			}
			if err := a.applyProfile(cmd.Flags()); err != nil {
				return err
			}
			if a.opts.timeout <= 0 {
				return usagef("--timeout %s: want a positive duration such as 10s", a.opts.timeout)
			}
			return nil
		},
	}
	root.SetVersionTemplate("vcli {{.Version}}\n")
	// cobra's own flag would say "version for vcli" and have no -V; vserv has -V.
	root.Flags().BoolP("version", "V", false, "print the version and exit")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see %s --help)", err, c.CommandPath())
	})
	f := root.PersistentFlags()
	f.StringVarP(&a.opts.host, "host", "n", "127.0.0.1", "server host")
	f.IntVarP(&a.opts.port, "port", "p", 6666, "server port")
	f.StringVarP(&a.opts.user, "user", "u", "", "log in as USER")
	f.StringVar(&a.opts.passFile, "pass-file", "", "read the password from the first line of this file")
	f.BoolVarP(&a.opts.prompt, "prompt", "t", false, "prompt for the password")
	f.StringVar(&a.opts.otp, "otp", "", "second-factor code, when the server asks for one (or $VSERV_OTP)")
	f.StringVar(&a.opts.serverKey, "server-key", "", "pin the server's public key or SHA256: fingerprint")
	f.StringVar(&a.opts.knownHosts, "known-hosts", "", "known_hosts file (default ~/.config/vserv/known_hosts)")
	f.StringArrayVar(&a.opts.homeKeys, "home-key", nil, "the key of the home of a mirrored chain read here (repeatable; keys in known_hosts count too)")
	f.BoolVar(&a.opts.json, "json", false, "print one JSON document per command")
	f.BoolVarP(&a.opts.verbose, "verbose", "v", false, "say more")
	f.BoolVarP(&a.opts.quiet, "quiet", "q", false, "say less (no notices, no progress)")
	f.StringVar(&a.opts.profile, "profile", "", "use this profile of ~/.config/vserv/config.toml (or $VSERV_PROFILE; default [default])")
	f.DurationVar(&a.opts.timeout, "timeout", client.DefaultConnectTimeout, "give up connecting and waiting for the server's sign-on after this long")
	root.AddCommand(a.helloCmd(), a.verCmd(), a.idCmd(), a.uiniCmd(), a.userCmd(), a.shellCmd(),
		a.recCmd(), a.chainCmd(), a.verifyCmd(), a.fileCmd(), a.hostCmd(), a.replicateCmd())
	root.AddCommand(a.keyCmd(), a.uidCmd(), a.voteCmd(), a.fundCmd(), a.resCmd(), a.recountCmd(), a.tallyCmd())
	root.SetHelpCommand(a.helpCmd())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictTree(root)
	return root
}

// cliPrefix is how a printed hint starts a vcli command line that reaches the
// same server as this one: with the named profile, or with the -n/-p that
// were used when they are not the defaults.
func (a *app) cliPrefix() string {
	if a.profileUsed != "" && a.profileUsed != defaultProfile {
		return "vcli --profile " + a.profileUsed
	}
	p := "vcli"
	if a.opts.host != "127.0.0.1" {
		p += " -n " + a.opts.host
	}
	if a.opts.port != 6666 {
		p += " -p " + strconv.Itoa(a.opts.port)
	}
	return p
}

func (a *app) addr() string {
	return net.JoinHostPort(a.opts.host, strconv.Itoa(a.opts.port))
}

// dial connects and completes the encrypted handshake.
func (a *app) dial(ctx context.Context) (*client.Client, error) {
	if a.opts.port < 1 || a.opts.port > 65535 {
		return nil, usagef("-p %d: want a port from 1 to 65535", a.opts.port)
	}
	var homeKeys []ed25519.PublicKey
	for _, k := range a.opts.homeKeys {
		key, err := a.offlineKey(k)
		if err != nil {
			return nil, usagef("--home-key %s: %v", k, err)
		}
		homeKeys = append(homeKeys, key)
	}
	c, err := client.Dial(ctx, a.addr(), client.Options{
		ServerKey:      a.opts.serverKey,
		HomeKeys:       homeKeys,
		KnownHosts:     a.opts.knownHosts,
		ConnectTimeout: a.opts.timeout,
		Notice: func(msg string) {
			if !a.opts.quiet {
				fmt.Fprintln(a.stderr, "vcli:", msg)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connect dials, logging in with the global -u options when login is set.
func (a *app) connect(ctx context.Context, login bool) (*client.Client, error) {
	if login {
		return a.dialLogin(ctx)
	}
	return a.dial(ctx)
}

// dialLogin connects and logs in with the global -u options, answering a
// second-factor request when the server makes one.
func (a *app) dialLogin(ctx context.Context) (*client.Client, error) {
	if a.opts.user == "" {
		return nil, usagef("this command needs an account: give -u USER (and --pass-file, -t or $VSERV_PASSWORD)")
	}
	pass, err := a.password()
	if err != nil {
		return nil, err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return nil, err
	}
	login, err := c.Login(ctx, a.opts.user, pass)
	if err != nil {
		c.Close()
		return nil, err
	}
	if login.Needs2FA {
		code, err := a.otpCode()
		if err != nil {
			c.Close()
			return nil, err
		}
		if err := c.TwoFA(ctx, code); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// password finds the login password: --pass-file, -t, then $VSERV_PASSWORD.
func (a *app) password() (string, error) {
	switch {
	case a.opts.passFile != "":
		return readFirstLine(a.opts.passFile)
	case a.opts.prompt:
		return a.promptSecret("password for " + a.opts.user + ": ")
	case os.Getenv("VSERV_PASSWORD") != "":
		return os.Getenv("VSERV_PASSWORD"), nil
	}
	return "", usagef("no password: give --pass-file F, -t, or set $VSERV_PASSWORD")
}

func (a *app) otpCode() (string, error) {
	switch {
	case a.opts.otp != "":
		return a.opts.otp, nil
	case os.Getenv("VSERV_OTP") != "":
		return os.Getenv("VSERV_OTP"), nil
	}
	if a.stdinIsTerminal() {
		return a.promptLine("second-factor code: ")
	}
	return "", usagef("the server asks for a second-factor code: give --otp CODE or set $VSERV_OTP (no factor enrolled yet? in production mode admins and writers enroll first: %s -u %s user 2fa --code CODE)", a.cliPrefix(), a.opts.user)
}

func readFirstLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("read password file: %v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", usagef("password file %s: the first line is empty", path)
	}
	return line, nil
}

func (a *app) stdinIsTerminal() bool {
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// promptSecret reads a line without echo on a terminal, or a plain line from
// a pipe (scripts).
func (a *app) promptSecret(prompt string) (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	return a.readLine()
}

func (a *app) promptLine(prompt string) (string, error) {
	fmt.Fprint(a.stderr, prompt)
	return a.readLine()
}

func (a *app) readLine() (string, error) {
	if a.reader == nil {
		a.reader = bufio.NewReader(a.stdin)
	}
	line, err := a.reader.ReadString('\n')
	if err != nil && line == "" {
		return "", usagef("expected a line on standard input: %v", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// newPassword reads a password for an account being created or changed: from
// the file, or asked twice on a terminal, or one line of standard input.
func (a *app) newPassword(file string) (string, error) {
	if file != "" {
		return readFirstLine(file)
	}
	if a.stdinIsTerminal() {
		p1, err := a.promptSecret("new password: ")
		if err != nil {
			return "", err
		}
		p2, err := a.promptSecret("again: ")
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", usagef("the two passwords differ")
		}
		return p1, nil
	}
	p, err := a.readLine()
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", usagef("empty password on standard input")
	}
	return p, nil
}

// print writes v as JSON with --json, else the human text.
func (a *app) print(v any, human string) {
	if a.opts.json {
		a.printJSON(v)
		return
	}
	if human != "" {
		fmt.Fprintln(a.stdout, human)
	}
}

// printJSON writes v as one JSON document. A map (the usual document) follows
// the rule of docs/operations.md "vcli JSON": an absent value (nil, see
// absent) is left out, and a list is always there, [] when empty.
func (a *app) printJSON(v any) {
	if m, ok := v.(map[string]any); ok {
		v = jsonDocument(m)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // URIs keep their & readable
	_ = enc.Encode(v)
}

func jsonDocument(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v == nil {
			continue
		}
		switch rv := reflect.ValueOf(v); rv.Kind() {
		case reflect.Pointer, reflect.Map:
			if rv.IsNil() {
				continue
			}
		case reflect.Slice:
			if rv.IsNil() && rv.Type().Elem().Kind() == reflect.Uint8 {
				continue // bytes print as base64 text: absent, not a list
			}
			if rv.IsNil() {
				v = []any{}
			}
		}
		out[k] = v
	}
	return out
}

// absent is nil, which printJSON leaves out, for an optional text that is
// empty (no schema, no enrollment code, no file): "" itself is a value
// elsewhere (the top directory's cwd).
func absent(s string) any {
	if s == "" {
		return nil
	}
	return s
}
