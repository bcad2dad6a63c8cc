package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/wire"
)

// twofaAllowed: twofa is the step from user to verified; in verified it only
// confirms an enrollment this connection began (a session logged in without
// a factor that enrolls one).
func twofaAllowed(c *conn) bool {
	return c.state == stateUser || (c.state == stateVerified && c.enrolling != "")
}

// cmdTwofa checks a second-factor code. Every refusal forgets the login
// (§3.2), so each new guess costs a user + pass and passes the backoff again.
func cmdTwofa(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	code, err := req.Text(0, "code")
	if err != nil {
		return nil, err
	}
	name := c.account
	if c.peer {
		// Not a guess: the password was right. The login stays for pauth.
		return nil, wire.Errorf(wire.CodePerm, "peer accounts sign in with pauth, not a second factor")
	}
	att, err := c.beginLoginStep(name)
	if err != nil {
		c.forgetLogin(ctx)
		return nil, err
	}
	// The empty code goes to the store like any other: it is refused there
	// and counted, never a pass.
	res, err := c.srv.accounts.CheckSecondFactor(ctx, name, code)
	if res.LockedNow {
		c.srv.audit(ctx, c, "2fa lock", name, "locked until "+res.LockedUntil.Format(time.RFC3339))
	}
	if err != nil {
		att.End(err)
		if errors.Is(err, wire.ErrAuth) {
			c.log.Info("second factor refused", "account", name)
		}
		c.forgetLogin(ctx)
		return nil, err
	}
	// The login is complete only now; pass left the (account, address)
	// backoff record alone while a factor was owed, so that failed codes
	// accumulate there.
	att.Succeed()
	if res.Confirmed {
		c.enrolling = ""
		c.srv.audit(ctx, c, "2fa enroll", name, "ok")
	}
	if res.RecoveryUsed {
		c.srv.audit(ctx, c, "2fa recovery code", name, fmt.Sprintf("ok, %d left", res.RecoveryLeft))
	}
	if c.state != stateVerified {
		c.setLoggedIn(name, stateVerified)
		c.log.Info("second factor accepted", "account", name)
	}
	return ok()
}

// cmdQr starts a TOTP enrollment for the logged-in account (§3.2 qr).
func cmdQr(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	var enrollCode string
	if req.NArgs() == 1 {
		var err error
		if enrollCode, err = req.Text(0, "enrollment code"); err != nil {
			return nil, err
		}
	}
	acct, err := c.srv.accounts.Get(ctx, c.account)
	if err != nil {
		return nil, err
	}
	switch {
	case !acct.Enabled:
		return nil, wire.Errorf(wire.CodePerm, "the account is disabled")
	case acct.Peer:
		return nil, wire.Errorf(wire.CodePerm, "peer accounts sign in with their key and have no second factor")
	case acct.Has2FA && c.state != stateVerified:
		// Otherwise a stolen password alone would replace the factor.
		return nil, wire.Errorf(wire.CodeState, "the account has a second factor: send twofa first, then qr to replace it")
	}
	if c.srv.cfg.Production && !acct.Has2FA {
		if err := c.checkEnrollmentCode(ctx, acct.Name, enrollCode); err != nil {
			return nil, err
		}
	}
	en, err := c.srv.accounts.BeginEnroll(ctx, acct.Name)
	if err != nil {
		return nil, err
	}
	c.enrolling = acct.Name
	c.log.Info("second-factor enrollment started", "account", acct.Name)
	return ok(en.URI, en.PNG, en.Recovery)
}

// checkEnrollmentCode is a login step like pass: it passes the backoff first
// and a refusal counts toward it. A refusal keeps the login: the code is
// 80 random bits, and it is asked only of accounts whose password was right.
func (c *conn) checkEnrollmentCode(ctx context.Context, name, code string) error {
	att, err := c.beginLoginStep(name)
	if err != nil {
		return err
	}
	err = c.srv.accounts.CheckEnrollmentCode(ctx, name, code)
	if err != nil {
		att.End(err)
		if errors.Is(err, wire.ErrAuth) {
			c.log.Info("enrollment code refused", "account", name)
		}
		return err
	}
	att.Passed()
	return nil
}

// cmdU2fa removes an account's second factor: the way back for a lost phone
// without recovery codes (§3.2 u2fa).
func cmdU2fa(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	how, err := req.Text(1, "reset")
	if err != nil {
		return nil, err
	}
	if how != "reset" {
		return nil, wire.Errorf(wire.CodeInvalid, "u2fa takes reset, not %q", truncate(how, 32))
	}
	if _, err := c.requireAdmin(ctx); err != nil {
		return nil, err
	}
	acct, err := c.srv.accounts.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if acct.Peer {
		return nil, wire.Errorf(wire.CodePerm, "peer accounts have no second factor")
	}
	// Without a factor there is nothing to remove. In production mode the
	// reset still answers, with a fresh enrollment code: it is how an
	// account whose code expired gets a new one (§3.2 qr).
	if !acct.Has2FA && !c.srv.cfg.Production {
		return nil, wire.Errorf(wire.CodeNotFound, "%s has no second factor to remove", acct.Name)
	}
	gen, err := c.srv.accounts.Reset2FA(ctx, acct.Name)
	if err != nil {
		return nil, err
	}
	// An admin resetting their own factor keeps this session, as with chpass.
	ended := c.srv.endSessions(acct.Name, c)
	if auth.HomeName(acct.Name) == auth.HomeName(c.account) {
		c.adoptGeneration(gen)
	}
	c.srv.audit(ctx, c, "u2fa reset", acct.Name, fmt.Sprintf("ok, %d sessions ended", ended))
	return c.srv.enrollmentReply(ctx, acct.Name)
}

// forgetLogin returns the connection to an anonymous session: logout, and a
// refused second factor.
func (c *conn) forgetLogin(ctx context.Context) {
	c.cancelEnrollment(ctx)
	c.setLoggedIn("", stateSession)
}

// cancelEnrollment discards the enrollment this connection began and did not
// confirm: its secret and recovery codes were shown only here, and nobody
// must be able to confirm them later (§3.2 qr). Called when the login is
// forgotten and when the connection ends.
func (c *conn) cancelEnrollment(ctx context.Context) {
	name := c.enrolling
	if name == "" {
		return
	}
	c.enrolling = ""
	err := c.srv.accounts.CancelEnroll(ctx, name)
	switch {
	case err == nil:
		c.log.Info("unconfirmed second-factor enrollment discarded", "account", name)
	case !errors.Is(err, wire.ErrNotFound): // a deleted account took it along
		c.log.Warn("discard unconfirmed enrollment", "account", name, "err", err)
	}
}
