package server

// The setup token (datadir.SetupToken) is written at first start while no
// account exists; `uini` must present its contents, so that only someone who
// can read the data directory creates the first admin (loopback alone is not
// enough on a shared machine).

// checkSetupToken compares token with the file in constant time.
func (s *Server) checkSetupToken(token string) bool { return s.setup.Check(token) }

func (s *Server) removeSetupToken() {
	if err := s.setup.Remove(); err != nil {
		s.log.Error("remove setup token", "err", err)
	}
}
