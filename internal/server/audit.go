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
