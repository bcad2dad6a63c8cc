package server

import "context"

// audit records an administrative action. Until the ledger's audit chain is
// wired in, the record goes to the log only; it never carries passwords,
// second-factor data or client addresses.
func (s *Server) audit(_ context.Context, c *conn, action, target, outcome string) {
	s.log.Info("audit", "actor", c.account, "action", action, "target", target, "outcome", outcome)
}

// rotationReceipts returns the receipts of the key.rotate entries of the keys
// chain, oldest first. Before the ledger exists a rotation only replaces the
// key (DESIGN.md §2.4), so there are none.
func (s *Server) rotationReceipts() []string { return nil }
