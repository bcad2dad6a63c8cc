package filecmd

import (
	"log/slog"

	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/server"
)

// connState is what one connection remembers between file commands: a
// session value (server.Session.Value) under stateKey.
type connState struct {
	log    *slog.Logger
	cwd    files.Cwd     // the working directory in the account's own home
	upload *files.Upload // the explicit-offset upload (`file` + `data`) in progress
	chunk  int           // `buff`: the data chunk size; 0 is maxChunk

	otherCwds map[string]files.Cwd // working directories in other accounts' homes (admin `as`)
}

type stateKey struct{}

// stateOf returns the file state of the session, made on first use.
func stateOf(s *server.Session) *connState {
	if st, _ := s.Value(stateKey{}).(*connState); st != nil {
		return st
	}
	st := &connState{log: s.Log()}
	s.SetValue(stateKey{}, st)
	return st
}

// Release ends what belongs to the login (server.Releaser): an upload
// begun by one account must not finish under the next one's login (into
// the first one's home), and the next login starts at its home's top. The
// chunk size is the connection's, and stays.
func (st *connState) Release() {
	st.endUpload()
	st.cwd = ""
	st.otherCwds = nil
}
