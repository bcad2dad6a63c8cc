package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/wire"
)

// requireAdmin checks the admin role from the store on every call: rights are
// never cached at login, so a demotion or a disable takes effect at once.
// A refusal is written to the audit chain (auditRefusal).
func (c *conn) requireAdmin(ctx context.Context) (*auth.Account, error) {
	a, err := c.srv.accounts.Get(ctx, c.account)
	switch {
	case err != nil:
		c.refused = "no such account"
	case !a.Enabled:
		c.refused = "account disabled"
	case a.Role != auth.RoleAdmin:
		c.refused = "not an admin"
	default:
		return a, nil
	}
	return nil, wire.Errorf(wire.CodePerm, "this needs the admin role")
}

func cmdUini(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	pass, err := req.Text(1, "password")
	if err != nil {
		return nil, err
	}
	token, err := req.Text(2, "setup token")
	if err != nil {
		return nil, err
	}
	if !c.addr.IsLoopback() {
		return nil, wire.Errorf(wire.CodePerm, "uini is accepted only from a loopback address")
	}
	if n, err := c.srv.accounts.Count(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		return nil, wire.Errorf(wire.CodeState, "an account exists already; log in instead")
	}
	if !c.srv.checkSetupToken(token) {
		// Audited: only loopback, and only before any account exists, gets
		// here, so this cannot be used to flood the chain from afar.
		c.srv.auditAs(ctx, "", "uini", truncate(name, 64), "refused: wrong setup token")
		return nil, wire.Errorf(wire.CodePerm, "wrong setup token (it is in the setup-token file of the data directory)")
	}
	acct, err := c.srv.accounts.CreateInitial(ctx, name, pass)
	if err != nil {
		return nil, err
	}
	c.srv.removeSetupToken()
	c.log.Info("initial admin created", "account", acct.Name)
	c.srv.auditAs(ctx, acct.Name, "uini", acct.Name, "ok")
	return c.srv.enrollmentReply(ctx, acct.Name)
}

func cmdUser(_ context.Context, c *conn, req *wire.Request) (*reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	if err := auth.ValidName(name); err != nil {
		return nil, err
	}
	c.pendingUser = name
	return ok()
}

func cmdPass(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	pass, err := req.Text(0, "password")
	if err != nil {
		return nil, err
	}
	name := c.pendingUser
	if name == "" {
		return nil, wire.Errorf(wire.CodeState, "send user first")
	}
	c.pendingUser = ""
	att, err := c.beginLoginStep(name)
	if err != nil {
		return nil, err
	}
	acct, err := c.srv.accounts.CheckPassword(ctx, name, pass)
	if err != nil {
		att.End(err)
		if errors.Is(err, wire.ErrAuth) {
			c.log.Info("login failed", "account", name)
		}
		return nil, err
	}
	owed, err := c.srv.secondFactorOwed(ctx, acct)
	if err != nil {
		att.Cancel()
		return nil, err
	}
	if owed {
		// twofa clears the (account, address) record once it passes: a
		// right password must not wipe out the failed codes before it.
		att.Passed()
	} else {
		att.Succeed()
	}
	st := stateVerified
	if owed {
		st = stateUser
	}
	c.setLoggedIn(acct.Name, st)
	c.peer = acct.Peer
	c.gen = acct.Generation
	c.log.Info("logged in", "account", acct.Name, "state", st)
	return ok("authenticated", acct.Name, string(acct.Role), owed)
}

// secondFactorOwed says whether pass leaves the connection in state user
// (DESIGN.md §2.5).
func (s *Server) secondFactorOwed(ctx context.Context, a *auth.Account) (bool, error) {
	if a.Has2FA || a.Peer {
		return true, nil
	}
	if !s.cfg.Production {
		return false, nil
	}
	if a.Role == auth.RoleAdmin {
		return true, nil
	}
	rights, err := s.accounts.Rights(ctx, a.Name)
	if err != nil {
		return false, err
	}
	for _, rs := range rights {
		for _, r := range rs {
			if r == auth.RightWrite {
				return true, nil
			}
		}
	}
	return false, nil
}

func cmdLogout(ctx context.Context, c *conn, _ *wire.Request) (*reply, error) {
	c.forgetLogin(ctx)
	return ok()
}

func cmdChpass(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	if req.NArgs() == 2 {
		old, err := req.Text(0, "old password")
		if err != nil {
			return nil, err
		}
		newPass, err := req.Text(1, "new password")
		if err != nil {
			return nil, err
		}
		att, err := c.beginLoginStep(c.account)
		if err != nil {
			return nil, err
		}
		_, err = c.srv.accounts.CheckPassword(ctx, c.account, old)
		if err != nil {
			att.End(err)
			return nil, err
		}
		att.Passed() // a right old password is no login: the record stays
		gen, err := c.srv.accounts.SetPassword(ctx, c.account, newPass)
		if err != nil {
			return nil, err
		}
		c.srv.endSessions(c.account, c)
		c.adoptGeneration(gen)
		c.srv.audit(ctx, c, "chpass", c.account, "ok")
		return ok()
	}
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	if !req.IsNull(1) {
		return nil, wire.Errorf(wire.CodeProto, "chpass name null new: the second argument must be null")
	}
	newPass, err := req.Text(2, "new password")
	if err != nil {
		return nil, err
	}
	if _, err := c.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if _, err := c.srv.accounts.SetPassword(ctx, name, newPass); err != nil {
		return nil, err
	}
	c.srv.endSessions(name, c)
	c.srv.audit(ctx, c, "chpass", name, "ok")
	return ok()
}

func cmdUadd(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	return c.addAccount(ctx, req, auth.RoleUser)
}

func cmdAadd(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	return c.addAccount(ctx, req, auth.RoleAdmin)
}

func (c *conn) addAccount(ctx context.Context, req *wire.Request, role auth.Role) (*reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	pass, err := req.Text(1, "password")
	if err != nil {
		return nil, err
	}
	if _, err := c.requireAdmin(ctx); err != nil {
		return nil, err
	}
	acct, err := c.srv.accounts.Add(ctx, name, pass, role)
	if err != nil {
		return nil, err
	}
	c.srv.audit(ctx, c, req.Cmd, acct.Name, "ok")
	return c.srv.enrollmentReply(ctx, acct.Name)
}

// enrollmentReply answers a command that created an account or reset its
// second factor: plain OK in developer mode, OK <enrollment code> in
// production mode (DESIGN.md §3.2, `qr`).
func (s *Server) enrollmentReply(ctx context.Context, name string) (*reply, error) {
	if !s.cfg.Production {
		return ok()
	}
	code, err := s.accounts.IssueEnrollmentCode(ctx, name)
	if err != nil {
		return nil, err
	}
	return ok(code)
}

func cmdUdel(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	if _, err := c.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := c.srv.accounts.Delete(ctx, name); err != nil {
		return nil, err
	}
	r := c.endAccountSessions(name)
	c.srv.audit(ctx, c, "udel", name, "ok")
	// A new account of the same name must not inherit these files.
	if err := c.srv.files.RetireHome(auth.HomeName(name)); err != nil {
		return nil, fmt.Errorf("account %s deleted, but its home was not retired: %w", name, err)
	}
	return r, nil
}

// endAccountSessions closes this server's other connections of name at once
// (the generation check ends its sessions on every front end anyway). When
// the caller's own is one of them (an admin deleting or disabling their own
// account), that connection closes right after its reply rather than before
// it, so the request still gets its one answer.
func (c *conn) endAccountSessions(name string) *reply {
	c.srv.endSessions(name, c)
	return &reply{close: auth.HomeName(name) == c.loggedInAs()}
}

func cmdUena(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	name, err := req.Text(0, "name")
	if err != nil {
		return nil, err
	}
	how, err := req.Text(1, "enable|disable")
	if err != nil {
		return nil, err
	}
	var enable bool
	switch how {
	case "enable":
		enable = true
	case "disable":
	default:
		return nil, wire.Errorf(wire.CodeInvalid, "uena takes enable or disable, not %q", truncate(how, 32))
	}
	if _, err := c.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := c.srv.accounts.SetEnabled(ctx, name, enable); err != nil {
		return nil, err
	}
	r := &reply{}
	if !enable {
		r = c.endAccountSessions(name)
	}
	c.srv.audit(ctx, c, "uena "+how, name, "ok")
	return r, nil
}

func cmdUlist(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	filter := "all"
	if req.NArgs() == 1 {
		var err error
		if filter, err = req.Text(0, "filter"); err != nil {
			return nil, err
		}
	}
	if _, err := c.requireAdmin(ctx); err != nil {
		return nil, err
	}
	accts, err := c.srv.accounts.List(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(accts))
	for _, a := range accts {
		out = append(out, map[string]any{"name": a.Name, "role": string(a.Role), "enabled": a.Enabled, "has2fa": a.Has2FA})
	}
	return ok(out)
}

func cmdThrot(ctx context.Context, c *conn, req *wire.Request) (*reply, error) {
	if req.NArgs() == 1 {
		how, err := req.Text(0, "on|off")
		if err != nil {
			return nil, err
		}
		if how != "on" && how != "off" {
			return nil, wire.Errorf(wire.CodeInvalid, "throt takes on or off, not %q", truncate(how, 32))
		}
		if _, err := c.requireAdmin(ctx); err != nil {
			return nil, err
		}
		c.srv.throttle.Store(how == "on")
		c.log.Info("throttling switched", "to", how, "by", c.account)
		c.srv.audit(ctx, c, "throt "+how, "", "ok")
	}
	if c.srv.throttle.Load() {
		return ok("on")
	}
	return ok("off")
}
