package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vserv/vserv/internal/metrics"
	"github.com/vserv/vserv/internal/replic"
)

func TestReplicationMetricsFollowTheStatusAtEachScrape(t *testing.T) {
	t.Parallel()
	status := []replic.ChainStatus{
		{Peer: "b:6666", Role: replic.RoleMirror, Chain: "vserv/aa/c", LagEntries: 7, LagSeconds: 2.5},
		{Peer: "h:6666", Role: replic.RoleHome, Chain: "vserv/bb/v", Forks: 2},
	}
	reg := metrics.New()
	if err := reg.Register(metrics.Replication(func() []replic.ChainStatus { return status })); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(metrics.Replication(func() []replic.ChainStatus { return nil })); err == nil {
		t.Error("a second replication collector registered: want a collision")
	}
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape: %s %v", resp.Status, err)
		}
		return string(b)
	}
	got := scrape()
	for _, want := range []string{
		`vserv_mirror_lag_entries{chain="vserv/aa/c",peer="b:6666"} 7`,
		`vserv_mirror_lag_seconds{chain="vserv/aa/c",peer="b:6666"} 2.5`,
		`vserv_mirror_lag_entries{chain="vserv/bb/v",peer="h:6666"} 0`,
		`vserv_forks{chain="vserv/bb/v"} 2`,
		`vserv_forks{chain="vserv/aa/c"} 0`,
		"# TYPE vserv_mirror_lag_entries gauge",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "go_goroutines") {
		t.Error("the registry holds the Go runtime collectors: it must be the node's own, not the global one")
	}
	status = status[1:]
	if got := scrape(); strings.Contains(got, `peer="b:6666"`) {
		t.Errorf("a peer gone from the status is still scraped:\n%s", got)
	}
}
