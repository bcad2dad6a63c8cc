// Package metrics is vserv's Prometheus metrics (docs/operations.md
// "Metrics"): a registry made per node, never the global one, whose
// collectors read the node's parts when /metrics is scraped, and the HTTP
// handler that serves it on the --http listener.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vserv/vserv/internal/replic"
)

// Registry is the metrics of one node.
type Registry struct {
	reg *prometheus.Registry
}

// New returns an empty registry.
func New() *Registry { return &Registry{reg: prometheus.NewRegistry()} }

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Register adds a collector; it fails when its metrics collide with ones
// registered before.
func (r *Registry) Register(c prometheus.Collector) error { return r.reg.Register(c) }

// Replication returns the collector of the replication workers' status:
// vserv_mirror_lag_entries{peer,chain}, vserv_mirror_lag_seconds{peer,chain}
// and vserv_forks{chain}, read from status at every scrape (a peer or chain
// that goes away goes from the output with it).
func Replication(status func() []replic.ChainStatus) prometheus.Collector {
	return &replication{status: status}
}

var (
	lagEntriesDesc = prometheus.NewDesc("vserv_mirror_lag_entries",
		"Entries the mirror end lacks of a chain (home size minus mirror size), per peer and chain.", []string{"peer", "chain"}, nil)
	lagSecondsDesc = prometheus.NewDesc("vserv_mirror_lag_seconds",
		"Age of the oldest entry the mirror end lacks (0 when it lacks none), per peer and chain.", []string{"peer", "chain"}, nil)
	forksDesc = prometheus.NewDesc("vserv_forks",
		"Fork evidence kept for a mirrored chain (the most any peer's status shows).", []string{"chain"}, nil)
)

type replication struct {
	status func() []replic.ChainStatus
}

func (c *replication) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagEntriesDesc
	ch <- lagSecondsDesc
	ch <- forksDesc
}

func (c *replication) Collect(ch chan<- prometheus.Metric) {
	forks := map[string]uint64{}
	seen := map[[2]string]bool{}
	for _, s := range c.status() {
		// One server may be both a mirror and a home of ours: the first
		// row of a peer and chain wins.
		if k := [2]string{s.Peer, s.Chain}; !seen[k] {
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(lagEntriesDesc, prometheus.GaugeValue, float64(s.LagEntries), s.Peer, s.Chain)
			ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, s.LagSeconds, s.Peer, s.Chain)
		}
		forks[s.Chain] = max(forks[s.Chain], s.Forks)
	}
	for chain, n := range forks {
		ch <- prometheus.MustNewConstMetric(forksDesc, prometheus.GaugeValue, float64(n), chain)
	}
}
