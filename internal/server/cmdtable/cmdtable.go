// Package cmdtable builds the full default command table of vserv: the
// core's commands (server.NewTable) plus those of every command package. It
// is what a composition root gives server.New; the command packages import
// internal/server, so the table cannot be built there.
package cmdtable

import (
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/server/filecmd"
	"github.com/vserv/vserv/internal/server/ledgercmd"
	"github.com/vserv/vserv/internal/server/replcmd"
)

// Default returns a new table holding every command vserv serves.
func Default() *server.Table {
	t := server.NewTable()
	ledgercmd.Register(t)
	filecmd.Register(t)
	replcmd.Register(t)
	return t
}
