package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p-kad-dht/provider"
	"github.com/prometheus/client_golang/prometheus"
)

// Lookup operations, the "op" label of shoal_routing_lookup_duration_seconds.
const (
	opFindProviders = "find_providers"
	opGetManifest   = "get_manifest"
	opPutManifest   = "put_manifest"
)

// lookupBuckets span a one-hop lookup on loopback (about a millisecond) up
// to the multi-second lookups of a cluster with unreachable peers, where
// kad-dht waits on its dial and query timeouts.
var lookupBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// statsTimeout bounds the provider's Stats call of one scrape (it walks the
// keystore, in memory here).
const statsTimeout = 2 * time.Second

// routerMetrics are the router's Prometheus series. A nil *routerMetrics
// (no Registerer injected) records nothing.
type routerMetrics struct {
	lookups *prometheus.HistogramVec // op, result
}

func newRouterMetrics(reg prometheus.Registerer, prov *provider.SweepingProvider) (*routerMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &routerMetrics{
		lookups: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "shoal", Subsystem: "routing", Name: "lookup_duration_seconds",
			Help:    "DHT operations by op (find_providers, get_manifest, put_manifest) and result (found, none, error): how long each took.",
			Buckets: lookupBuckets,
		}, []string{"op", "result"}),
	}
	// Every op shows from the start, so a dashboard has series before the
	// first read.
	for _, op := range []string{opFindProviders, opGetManifest, opPutManifest} {
		for _, res := range []string{"found", "none", "error"} {
			if op == opPutManifest && res == "none" {
				continue
			}
			m.lookups.WithLabelValues(op, res)
		}
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.lookups, &providerCollector{prov: prov}} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing: register metrics: %w", err)
	}
	return m, nil
}

// observe records one operation that started at start.
func (m *routerMetrics) observe(op string, start time.Time, found bool, err error) {
	if m == nil {
		return
	}
	res := "found"
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		res = "error"
	case !found || err != nil:
		res = "none"
	}
	m.lookups.WithLabelValues(op, res).Observe(time.Since(start).Seconds())
}

// providerCollector exports the sweeping provider's own statistics at
// scrape time: announcements are batched by keyspace region in the
// background, so their latency is the provider's per-region figure, not a
// per-call timing.
type providerCollector struct {
	prov *provider.SweepingProvider
}

var (
	descProvKeys = prometheus.NewDesc("shoal_routing_provider_keys",
		"Keys (chunk CIDs) this node keeps announced.", nil, nil)
	descProvQueue = prometheus.NewDesc("shoal_routing_provide_queue_keys",
		"Keys waiting for their first announcement.", nil, nil)
	descProvDone = prometheus.NewDesc("shoal_routing_provided_keys_total",
		"Keys announced to the DHT since start (first announcements and re-announcements).", nil, nil)
	descProvFailed = prometheus.NewDesc("shoal_routing_provide_failed_keys_total",
		"Keys whose announcement failed since start.", nil, nil)
	descProvRegion = prometheus.NewDesc("shoal_routing_reprovide_region_duration_seconds",
		"Mean time to re-announce one keyspace region in the last reprovide cycle (0 before the first cycle).", nil, nil)
	descProvOnline = prometheus.NewDesc("shoal_routing_provider_online",
		"1 while the provider sees the DHT as reachable, else 0 (no peers: announcements wait).", nil, nil)
)

func (c *providerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProvKeys, descProvQueue, descProvDone, descProvFailed, descProvRegion, descProvOnline} {
		ch <- d
	}
}

func (c *providerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	st, err := c.prov.Stats(ctx)
	if err != nil || st.Closed {
		return // a closed provider has nothing to say; Stats only fails on ctx
	}
	online := 0.0
	if st.Connectivity.Status == "online" {
		online = 1
	}
	ch <- prometheus.MustNewConstMetric(descProvKeys, prometheus.GaugeValue, float64(max(st.Schedule.Keys, 0)))
	ch <- prometheus.MustNewConstMetric(descProvQueue, prometheus.GaugeValue, float64(st.Queues.PendingKeyProvides))
	ch <- prometheus.MustNewConstMetric(descProvDone, prometheus.CounterValue, float64(st.Operations.Past.KeysProvided))
	ch <- prometheus.MustNewConstMetric(descProvFailed, prometheus.CounterValue, float64(st.Operations.Past.KeysFailed))
	ch <- prometheus.MustNewConstMetric(descProvRegion, prometheus.GaugeValue, st.Operations.Past.RegionReprovideDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(descProvOnline, prometheus.GaugeValue, online)
}
