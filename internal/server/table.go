package server

import (
	"context"
	"fmt"
	"sort"

	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// Command is one entry of the command table: what a client sees of it (its
// Spec: lowest state, argument counts, usage) and its handler. The table
// checks the state and the argument count before Run is called.
type Command struct {
	cmdspec.Spec
	// Run answers one request. It returns a reply (OK, HeldReply,
	// StreamReply) or an error: a *wire.Error is sent as it is; any other
	// error is a server fault, logged with a correlation id and answered
	// ERR internal. A panic is answered ERR internal and closes this
	// connection alone. It is nil in the core's own commands, whose
	// handlers reach the connection itself.
	Run func(ctx context.Context, s *Session, req *wire.Request) (*Reply, error)

	allowed func(*conn) bool                                            // a core command's state rule beyond Min, nil = none
	run     func(context.Context, *conn, *wire.Request) (*reply, error) // a core handler, which reaches the connection itself
}

// Table is the command table one server runs: names (and aliases) to
// commands. NewTable holds the core's commands; other packages add theirs
// with Handle (ledgercmd.Register, filecmd.Register). A table is filled
// before it is given to New and only read afterwards: New freezes it.
type Table struct {
	cmds   map[string]*Command
	frozen bool
}

// NewTable returns a table holding the core's commands: connection, accounts,
// second factor and help (cmdspec.Core).
func NewTable() *Table {
	t := &Table{cmds: map[string]*Command{}}
	handlers := coreHandlers()
	for name, spec := range cmdspec.Core() {
		h, found := handlers[name]
		if !found {
			panic("server: core command " + name + " has no handler")
		}
		t.add(name, &Command{Spec: spec, allowed: h.allowed, run: h.run})
	}
	for alias, name := range cmdspec.CoreAliases() {
		t.Alias(alias, name)
	}
	return t
}

// coreHandler is the handler of a core command and its extra state rule.
type coreHandler struct {
	run     func(context.Context, *conn, *wire.Request) (*reply, error)
	allowed func(*conn) bool
}

func coreHandlers() map[string]coreHandler {
	sessionOnly := func(c *conn) bool { return c.state == stateSession }
	return map[string]coreHandler{
		"hello": {run: cmdHello}, "ver": {run: cmdVer}, "id": {run: cmdID}, "help": {run: cmdHelp},
		"dmode": {run: cmdDmode}, "akey": {run: cmdAkey}, "sess": {run: cmdSess}, "rekey": {run: cmdRekey},
		"tout": {run: cmdTout}, "quit": {run: cmdQuit},

		"uini": {run: cmdUini, allowed: sessionOnly}, "user": {run: cmdUser, allowed: sessionOnly},
		"pass": {run: cmdPass, allowed: sessionOnly}, "logout": {run: cmdLogout}, "chpass": {run: cmdChpass},
		"uadd": {run: cmdUadd}, "aadd": {run: cmdAadd}, "udel": {run: cmdUdel}, "uena": {run: cmdUena},
		"ulist": {run: cmdUlist}, "throt": {run: cmdThrot},

		"twofa": {run: cmdTwofa, allowed: twofaAllowed}, "qr": {run: cmdQr}, "u2fa": {run: cmdU2fa},
		"pauth": {run: cmdPauth, allowed: func(c *conn) bool { return c.state == stateUser }},
	}
}

// Handle adds the command name. It panics when name is taken, when the
// command has no Run or no usage text, or when the table is in use already:
// all of them are mistakes in the program, not in its input.
func (t *Table) Handle(name string, cmd Command) {
	if cmd.Run == nil {
		panic("server: command " + name + " has no Run")
	}
	cmd.allowed, cmd.run = nil, nil
	t.add(name, &cmd)
}

// Alias makes alias another name of the command name, which must be in the
// table already.
func (t *Table) Alias(alias, name string) {
	cmd, found := t.cmds[name]
	if !found {
		panic(fmt.Sprintf("server: alias %s of the unknown command %s", alias, name))
	}
	t.add(alias, cmd)
}

func (t *Table) add(name string, cmd *Command) {
	switch {
	case t.frozen:
		panic("server: command " + name + " added to a table in use")
	case name == "":
		panic("server: a command without a name")
	case t.cmds[name] != nil:
		panic("server: command " + name + " defined twice")
	case cmd.Usage == "":
		panic("server: command " + name + " has no usage text")
	case cmd.MaxArgs < cmd.MinArgs:
		panic("server: command " + name + " takes fewer arguments at most than at least")
	}
	t.cmds[name] = cmd
}

// Lookup returns the command name (or alias) names.
func (t *Table) Lookup(name string) (Command, bool) {
	cmd, found := t.cmds[name]
	if !found {
		return Command{}, false
	}
	return *cmd, true
}

// Names lists the command names and aliases in order, as `help` shows them.
func (t *Table) Names() []string {
	names := make([]string, 0, len(t.cmds))
	for n := range t.cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
