package server

import (
	"context"
	"sort"

	"github.com/vserv/vserv/internal/wire"
)

// command is one entry of the command table.
type command struct {
	min              state
	minArgs, maxArgs int
	usage            string
	allowed          func(*conn) bool // extra state rule beyond min, nil = none
	run              func(context.Context, *conn, *wire.Request) (*reply, error)
}

// commands is the command table. It is filled once in init and only read
// afterwards. Aliases point at the same entry.
var commands map[string]*command

func init() {
	commands = map[string]*command{}
	groups := []map[string]*command{
		connectionCommands(),
		accountCommands(),
		ledgerCommands(),
		fileCommands(),
		twofaCommands(),
	}
	for _, g := range groups {
		for name, cmd := range g {
			if commands[name] != nil {
				panic("server: command " + name + " defined twice")
			}
			commands[name] = cmd
		}
	}
	commands["vers"] = commands["ver"]
	commands["exit"] = commands["quit"]
}

// commandNames lists the command names in order, for `help`.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
