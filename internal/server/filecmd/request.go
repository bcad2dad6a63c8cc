package filecmd

import (
	"context"
	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/files"
	"github.com/vserv/vserv/internal/server"
	"github.com/vserv/vserv/internal/wire"
)

// fileRequest is a file command with its options map taken off: the
// positional arguments stay in the embedded Request, and the home and working
// directory the command acts in are resolved.
type fileRequest struct {
	*wire.Request
	home          *files.Home
	cwd           files.Cwd
	setCwd        func(files.Cwd)
	force, backup bool
}

// parseFileRequest splits off the optional last argument of DESIGN.md §3.3, a map
// (a CBOR map is never a valid positional argument of these commands, so its
// type tells it apart), checks the positional count, and picks the home:
// the account's own, or with "as" another account's, for admins only. The
// admin role is read from the store on every request, like requireAdmin.
// transfer allows the "force" and "backup" keys (fput and file); any other
// key, or a key of the wrong type, is ERR proto rather than silently ignored.
func parseFileRequest(ctx context.Context, s *server.Session, req *wire.Request, minPos, maxPos int, transfer bool) (*fileRequest, error) {
	args := req.Args
	var opts map[string]wire.RawMessage
	if n := len(args); n > 0 && len(args[n-1]) > 0 && args[n-1][0]>>5 == 5 {
		if err := wire.Unmarshal(args[n-1], &opts); err != nil {
			return nil, wire.Errorf(wire.CodeProto, "%s: the options map must have text keys", req.Cmd)
		}
		args = args[:n-1]
	}
	pos := &wire.Request{Cmd: req.Cmd, Args: args}
	if err := pos.Arity(minPos, maxPos); err != nil {
		return nil, wire.Errorf(wire.CodeProto, "%s (besides an optional options map); `help %s` shows the usage", err.(*wire.Error).Text, req.Cmd)
	}
	fr := &fileRequest{Request: pos}
	var as string
	for k, v := range opts {
		var err error
		switch {
		case k == "as":
			err = wire.Unmarshal(v, &as)
		case transfer && k == "force":
			err = wire.Unmarshal(v, &fr.force)
		case transfer && k == "backup":
			err = wire.Unmarshal(v, &fr.backup)
		default:
			return nil, wire.Errorf(wire.CodeProto, "%s: unknown option %q", req.Cmd, server.Truncate(k, 64))
		}
		if err != nil {
			return nil, wire.Errorf(wire.CodeProto, "%s: option %q has the wrong type", req.Cmd, k)
		}
	}
	name := auth.HomeName(s.Account())
	if _, given := opts["as"]; given {
		if _, err := s.RequireAdmin(ctx); err != nil {
			return nil, wire.Errorf(wire.CodePerm, "acting in another account's home (as) needs the admin role")
		}
		acct, err := s.Accounts().Get(ctx, as)
		if err != nil {
			return nil, err
		}
		name = auth.HomeName(acct.Name)
	}
	home, err := s.Files().Home(name)
	if err != nil {
		return nil, err
	}
	fr.home = home
	st := stateOf(s)
	if name == auth.HomeName(s.Account()) {
		fr.cwd = st.cwd
		fr.setCwd = func(d files.Cwd) { st.cwd = d }
	} else {
		// Each home keeps its own working directory on this connection, so
		// an admin's `cd x {as: bob}` never moves the admin's own one.
		fr.cwd = st.otherCwds[name]
		fr.setCwd = func(d files.Cwd) {
			if st.otherCwds == nil {
				st.otherCwds = map[string]files.Cwd{}
			}
			st.otherCwds[name] = d
		}
	}
	return fr, nil
}
