package server

import (
	"context"
	"testing"

	"github.com/vserv/vserv/internal/auth"
	"github.com/vserv/vserv/internal/server/cmdspec"
	"github.com/vserv/vserv/internal/wire"
)

// releaseCounter is a session value that counts its releases.
type releaseCounter struct{ n int }

func (r *releaseCounter) Release() { r.n++ }

func TestSessionValuesAreReleasedWhenTheLoginEndsAndDroppedWithTheConnection(t *testing.T) {
	s, _, _ := newClockedServer(t)
	for _, name := range []string{"lee", "max"} {
		if _, err := s.accounts.Add(context.Background(), name, name+"-password", auth.RoleUser); err != nil {
			t.Fatal(err)
		}
	}
	type key struct{}
	c := loggedInConn(s, "lee", stateUser)
	v := &releaseCounter{}
	c.apiSession().SetValue(key{}, v)
	steps := []struct {
		what string
		do   func()
		n    int  // releases so far
		kept bool // the value is still there
	}{
		{"the second factor passes (same login)", func() { c.setLoggedIn("lee", stateVerified) }, 0, true},
		{"logout", func() { c.forgetLogin(context.Background()) }, 1, true},
		{"login as max", func() { c.setLoggedIn("max", stateVerified) }, 2, true},
		{"login as lee over max's", func() { c.setLoggedIn("lee", stateVerified) }, 3, true},
		{"the connection ends", c.endValues, 4, false},
	}
	for _, st := range steps {
		st.do()
		if v.n != st.n {
			t.Errorf("after %s: released %d times, want %d", st.what, v.n, st.n)
		}
		if kept := c.apiSession().Value(key{}) == v; kept != st.kept {
			t.Errorf("after %s: value kept = %v, want %v", st.what, kept, st.kept)
		}
	}
	c.apiSession().SetValue(key{}, v)
	c.apiSession().SetValue(key{}, nil)
	if got := c.apiSession().Value(key{}); got != nil {
		t.Errorf("SetValue(key, nil) left %v", got)
	}
}

func TestNewFreezesItsTable(t *testing.T) {
	s, _, _ := newClockedServer(t)
	defer func() {
		if recover() == nil {
			t.Error("Handle on the table of a running server did not panic")
		}
	}()
	s.cmds.Handle("zz", Command{Spec: cmdspec.Spec{Usage: "zz — late"},
		Run: func(context.Context, *Session, *wire.Request) (*Reply, error) { return OK() }})
}
