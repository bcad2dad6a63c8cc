package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/vserv/vserv/canon"
	"github.com/vserv/vserv/internal/testenv"
)

// TestVcliRecountExitsOneWhenTheServersViewDisagrees alters the server's
// stored tally behind its back (its data directory, server stopped), so the
// `view` it answers is no longer what the entries say: recount and tally
// must print both and exit 1.
func TestVcliRecountExitsOneWhenTheServersViewDisagrees(t *testing.T) {
	e := newAppsEnv(t)
	e.vcli(0, "chain", "create", "poll", "--public", "--schema", "vote")
	e.vcli(0, "vote", "open", "b1", "--chain", "poll", "--question", "Yes?", "yes", "no")
	out, _ := e.vcli(0, "vote", "register", "v1", "--chain", "poll")
	e.vcli(0, "vote", "cast", eidOf(t, out), "b1", "yes", "--chain", "poll")
	e.vcli(0, "recount", "poll")

	if err := e.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(e.srv.DataRoot, "ledger.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		st := testenv.ChainBucket(tx, "", "poll").Bucket([]byte("state"))
		k := []byte("bt\x00b1") // the counts per choice of ballot b1
		var counts []uint64
		if err := canon.Unmarshal(st.Get(k), &counts); err != nil || len(counts) != 2 || counts[0] != 1 {
			t.Fatalf("stored counts of b1 = %v (%v), want [1 0]", counts, err)
		}
		nv, _ := canon.Marshal([]uint64{1, 5}) // five votes for "no" nobody cast
		return st.Put(bytes.Clone(k), nv)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.srv = testenv.Start(t, testenv.WithDataRoot(e.srv.DataRoot))
	c := e.srv.AdminClient()
	c.Throttle(context.Background(), "off")
	c.Close()

	out, _ = e.vcli(1, "recount", "poll")
	if !strings.Contains(out, "chain poll view tally ballot=b1 differs:\n  recount {") || !strings.Contains(out, `"no": 5`) {
		t.Fatalf("recount of an altered view:\n%s", out)
	}
	if !strings.Contains(out, "choice  recount   server   share\nno            0        5   83.3%  █████████████████  <- differs\nyes           1        1   16.7%  ███\n") {
		t.Fatalf("recount of an altered view has no side-by-side table:\n%s", out)
	}
	out, _ = e.vcli(1, "tally", "poll", "b1")
	if !strings.Contains(out, "chain poll view tally ballot=b1 differs:") {
		t.Fatalf("tally of an altered view:\n%s", out)
	}
	out, _ = e.vcli(1, "--json", "recount", "poll")
	if !strings.Contains(out, `"view": "tally ballot=b1"`) || !strings.Contains(out, `"ok": false`) {
		t.Fatalf("recount --json of an altered view:\n%s", out)
	}
}
