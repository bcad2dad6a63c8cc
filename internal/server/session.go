package server

import (
	"errors"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/wire"
)

// Login concurrency and account changes (docs/protocol.md, the section of
// that name).

// beginLoginStep starts a pass, twofa, enrollment-code or old-password check
// for name from this connection's address (auth.Backoff.Begin): refused with
// the fixed ERR auth during a delay or while another step of the address is
// in flight, and counted as a failure until it ends.
func (c *conn) beginLoginStep(name string) (*auth.Attempt, error) {
	att, err := c.srv.backoff.Begin(auth.HomeName(name), c.addr.String())
	if err != nil {
		c.log.Info("login step refused: backoff or another step of this address in flight", "account", name)
	}
	return att, err
}

// checkGeneration runs before every command of a logged-in connection
// (states user and verified): it reads the account's generation, one bbolt
// read, and when the account was changed since this login (password,
// disable, deletion, 2FA reset, a write grant that makes it owe a second
// factor in production mode) it logs the connection out and refuses the
// command with the fixed ERR auth. endSessions closes such connections too,
// but a login whose hash was still being computed, or a command that
// started before the change, would otherwise carry on with the old state.
// quit and logout end the login anyway and always run.
func (c *conn) checkGeneration(cmd string) error {
	if c.state < stateUser || cmd == "quit" || cmd == "exit" || cmd == "logout" {
		return nil
	}
	gen, err := c.srv.accounts.Generation(c.account)
	if err == nil && gen == c.gen {
		return nil
	}
	c.log.Info("login ended: the account changed", "account", c.account)
	c.forgetLogin()
	if err != nil && !errors.Is(err, wire.ErrNotFound) {
		return err // a storage fault: logged as internal, and logged out
	}
	return wire.Errorf(wire.CodeAuth, wire.AuthFailedText)
}

// adoptGeneration keeps this connection logged in after a change it made to
// its own account (chpass, u2fa reset of itself). A change made by another
// connection at the same moment is no risk: that one ends this connection
// through endSessions.
func (c *conn) adoptGeneration() {
	if gen, err := c.srv.accounts.Generation(c.account); err == nil {
		c.gen = gen
	}
}
