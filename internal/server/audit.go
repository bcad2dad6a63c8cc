package server

import (
	"context"

	"github.com/google/uuid"

	"github.com/vserv/vserv/internal/wire"
)

// audit appends an administrative action to the private `audit` chain
// (DESIGN.md §4.1): actor, action, target, outcome and time. It never carries
// passwords, second-factor data, peer credentials or client addresses. The
// action has already happened when audit runs, so a failure to record it is
// logged loudly rather than turned into an error for the client.
func (s *Server) audit(ctx context.Context, c *conn, action, target, outcome string) {
	actor := ""
	if c != nil {
		actor = c.account
	}
	s.auditAs(ctx, actor, action, target, outcome)
}

// auditAs is audit with an explicit actor (uini, whose actor is the admin it
// creates).
func (s *Server) auditAs(ctx context.Context, actor, action, target, outcome string) {
	rec, err := auditRecord(actor, action, target, outcome, s.cfg.Now().UnixMilli())
	if err == nil {
		_, err = s.ledger.AppendServer(context.WithoutCancel(ctx), "audit", rec)
	}
	if err != nil {
		s.log.Error("audit record not written", "actor", actor, "action", action, "target", target, "err", err)
		return
	}
	s.log.Info("audit", "actor", actor, "action", action, "target", target, "outcome", outcome)
}

// maxRefusalAudits bounds the refused administrative commands one
// connection writes to the audit chain; further ones are only logged, so
// that a logged-in account cannot grow the chain without end.
const maxRefusalAudits = 16

// auditRefusal records an administrative command that requireAdmin refused
// (DESIGN.md §4.1): who (the account), what (the command and its first
// argument when it is text: a name, chain or path, never a password), and
// why. Only logged-in connections reach requireAdmin, so every refusal has
// an actor.
func (c *conn) auditRefusal(ctx context.Context, req *wire.Request) {
	why := c.refused
	if why == "" {
		return
	}
	c.refused = ""
	target := ""
	if req.NArgs() > 0 {
		if t, err := req.Text(0, "target"); err == nil {
			target = truncate(t, 64)
		}
	}
	c.refusals++
	if c.refusals > maxRefusalAudits {
		c.log.Warn("administrative command refused (not audited: too many on this connection)", "actor", c.account, "cmd", req.Cmd, "why", why)
		return
	}
	c.srv.audit(ctx, c, req.Cmd, target, "refused: "+why)
}

// auditRecord builds the canonical record of one audited action.
func auditRecord(actor, action, target, outcome string, nowMs int64) ([]byte, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	return wire.Marshal(map[string]any{
		"id":      id.String(),
		"type":    "audit",
		"created": uint64(nowMs),
		"payload": map[string]any{
			"actor":   actor,
			"action":  action,
			"target":  target,
			"outcome": outcome,
		},
	})
}

// rotationReceipts returns the receipts of the key.rotate entries of the keys
// chain, oldest first (DESIGN.md §2.4).
func (s *Server) rotationReceipts() []string { return s.keyRotations }
