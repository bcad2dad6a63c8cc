package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

func (a *app) shellCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "shell",
		Short: "Interactive session: type protocol commands, see the replies",
		Long: `vcli shell opens one encrypted session and runs protocol commands typed one
per line, e.g.  hello   tout 120   help rput   ulist all

Words are sent as text; whole numbers as integers; null, true and false as
themselves; "double quotes" keep spaces. Extra shell commands: login NAME (asks
the password without echo), put LOCAL [REMOTE] and get REMOTE [LOCAL] (file
transfers relative to the working directory that cd sets, which the shell
keeps), help (the server's command list, then the shell's own commands;
help NAME is the server's usage of NAME), exit.
On a terminal: Tab completes command names, Up/Down walk the history (kept in
~/.config/vserv/history, without lines that carry passwords).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := a.connect(ctx, a.opts.user != "")
			if err != nil {
				return err
			}
			defer c.Close()
			names, _ := c.Help(ctx)
			if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return a.interactiveShell(ctx, c, f, names)
			}
			return a.scriptShell(ctx, c)
		},
	}
}

// scriptShell runs commands from a pipe: no prompt, one reply per line. It
// stops at the first connection failure; ERR replies are printed and the run
// goes on, and the exit status is 1 if any command got ERR.
func (a *app) scriptShell(ctx context.Context, c *client.Client) error {
	// Lines come through a.reader, the reader `login` takes its password
	// line from: a scanner of its own would buffer that line away.
	if a.reader == nil {
		a.reader = bufio.NewReader(a.stdin)
	}
	var lastErr error
	for {
		line, rerr := a.reader.ReadString('\n')
		if line == "" && rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				return fmt.Errorf("read standard input: %w", rerr)
			}
			break
		}
		done, err := a.shellLine(ctx, c, strings.TrimRight(line, "\r\n"), a.stdout, nil)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				return err
			}
			lastErr = err
		}
		if done {
			break
		}
	}
	if lastErr != nil {
		return &quietERR{lastErr}
	}
	return nil
}

// quietERR is an ERR that the shell has already shown: exit 1 without
// printing it again.
type quietERR struct{ err error }

func (e *quietERR) Error() string { return e.err.Error() }
func (e *quietERR) Unwrap() error { return e.err }

func (a *app) interactiveShell(ctx context.Context, c *client.Client, f *os.File, names []string) error {
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer term.Restore(int(f.Fd()), old)
	screen := struct {
		io.Reader
		io.Writer
	}{f, a.stdout}
	t := term.NewTerminal(screen, "vserv> ")
	hist := openHistory()
	t.History = hist
	sort.Strings(names)
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' || strings.Contains(line[:pos], " ") {
			return "", 0, false
		}
		var matches []string
		for _, n := range append(names, "login", "exit", "put", "get") {
			if strings.HasPrefix(n, line[:pos]) {
				matches = append(matches, n)
			}
		}
		switch len(matches) {
		case 0:
			return "", 0, false
		case 1:
			return matches[0] + " " + line[pos:], len(matches[0]) + 1, true
		}
		fmt.Fprintf(t, "\r\n%s\r\n", strings.Join(matches, "  "))
		return "", 0, false
	}
	fmt.Fprintf(t, "connected to %s (server %s); Tab completes, exit leaves\r\n", a.addr(), c.ServerID())
	for {
		line, err := t.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		done, err := a.shellLine(ctx, c, line, t, t)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// shellCommands is what the shell itself runs, beside the protocol commands.
const shellCommands = "shell commands: login NAME, put LOCAL [REMOTE], get REMOTE [LOCAL], help [NAME], exit"

// shellLine runs one line. It reports whether the shell should end.
func (a *app) shellLine(ctx context.Context, c *client.Client, line string, out io.Writer, t *term.Terminal) (bool, error) {
	words, err := splitWords(line)
	if err != nil {
		fmt.Fprintf(out, "error: %v\r\n", err)
		return false, nil
	}
	if len(words) == 0 {
		return false, nil
	}
	switch words[0].text {
	case "exit", "quit":
		_ = c.Quit(ctx)
		return true, nil
	case "put", "get", "fput", "fget":
		return a.shellTransfer(ctx, c, words, out)
	case "help":
		if len(words) == 1 {
			names, err := c.Help(ctx)
			if err != nil {
				fmt.Fprintf(out, "ERR %s\r\n", errText(err))
				return false, err
			}
			fmt.Fprintf(out, "server commands: %s\r\n%s\r\n", strings.Join(names, " "), shellCommands)
			return false, nil
		}
	case "login":
		if len(words) != 2 {
			fmt.Fprintf(out, "usage: login NAME\r\n")
			return false, nil
		}
		var pass string
		if t != nil {
			pass, err = t.ReadPassword("password: ")
		} else {
			pass, err = a.readLine()
		}
		if err != nil {
			return true, err
		}
		l, err := c.Login(ctx, words[1].text, pass)
		if err != nil {
			fmt.Fprintf(out, "ERR %s\r\n", errText(err))
			return false, err
		}
		if l.Needs2FA {
			var code string
			if t != nil {
				code, err = t.ReadPassword("second-factor code: ")
			} else {
				code, err = a.readLine()
			}
			if err != nil {
				return true, err
			}
			if err := c.TwoFA(ctx, code); err != nil {
				fmt.Fprintf(out, "ERR %s\r\n", errText(err))
				return false, err
			}
		}
		fmt.Fprintf(out, "logged in as %s (%s)\r\n", l.Name, l.Role)
		return false, nil
	}
	args := make([]any, 0, len(words)-1)
	for _, w := range words[1:] {
		args = append(args, w.value())
	}
	vals, err := c.Call(ctx, words[0].text, args...)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			fmt.Fprintf(out, "ERR %s\r\n", errText(err))
			return false, err
		}
		return true, err
	}
	fmt.Fprintf(out, "OK%s\r\n", formatValues(vals))
	return false, nil
}

func errText(err error) string {
	var we *wire.Error
	if errors.As(err, &we) {
		text := we.Text
		if text == "" {
			text = we.Code.Meaning()
		}
		return string(we.Code) + " " + strconv.Quote(text)
	}
	return err.Error()
}

// formatValues renders reply values as JSON, byte strings as base64.
func formatValues(vals []wire.RawMessage) string {
	var sb strings.Builder
	for _, v := range vals {
		var x any
		if err := wire.Unmarshal(v, &x); err != nil {
			sb.WriteString(" <undecodable>")
			continue
		}
		b, err := json.Marshal(jsonable(x))
		if err != nil {
			sb.WriteString(" <unprintable>")
			continue
		}
		sb.WriteByte(' ')
		sb.Write(b)
	}
	return sb.String()
}

// jsonable converts CBOR-decoded values into what encoding/json can print.
func jsonable(x any) any {
	switch v := x.(type) {
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = jsonable(v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	}
	return x
}

// word is one shell token; quoted tokens always stay text.
type word struct {
	text   string
	quoted bool
}

func (w word) value() any {
	if w.quoted {
		return w.text
	}
	switch w.text {
	case "null":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	if u, err := strconv.ParseUint(w.text, 10, 64); err == nil {
		return u
	}
	if i, err := strconv.ParseInt(w.text, 10, 64); err == nil {
		return i
	}
	return w.text
}

// splitWords splits a line on spaces, keeping "double-quoted" runs together
// (with \" and \\ escapes inside them).
func splitWords(line string) ([]word, error) {
	var words []word
	var cur strings.Builder
	inWord, quoted, inQuote := false, false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case inQuote && ch == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			inQuote = !inQuote
			inWord, quoted = true, true
		case !inQuote && (ch == ' ' || ch == '\t'):
			if inWord {
				words = append(words, word{cur.String(), quoted})
				cur.Reset()
				inWord, quoted = false, false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, word{cur.String(), quoted})
	}
	return words, nil
}

// history keeps shell lines in memory and appends them to a file, leaving out
// lines that carry secrets.
type history struct {
	lines []string // oldest first
	path  string
}

func openHistory() *history {
	h := &history{}
	dir, err := os.UserConfigDir()
	if err != nil {
		return h
	}
	h.path = filepath.Join(dir, "vserv", "history")
	if b, err := os.ReadFile(h.path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				h.lines = append(h.lines, l)
			}
		}
	}
	if len(h.lines) > 1000 {
		h.lines = h.lines[len(h.lines)-1000:]
	}
	return h
}

// secretLine reports whether a shell line whose first word is first carries
// a secret: a server command the protocol declares Secret (cmdspec; ihost
// among them, whose add carries a password).
func secretLine(first string) bool {
	return cmdspec.IsSecret(first)
}

func (h *history) Add(entry string) {
	first, _, _ := strings.Cut(strings.TrimSpace(entry), " ")
	if entry == "" || secretLine(first) {
		return
	}
	h.lines = append(h.lines, entry)
	if h.path == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(h.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, entry)
}

func (h *history) Len() int { return len(h.lines) }

func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }
