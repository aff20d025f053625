package node

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/node/originfetch"
)

// metrics are atomic counters, exported to Prometheus as CounterFuncs so
// Status and the metrics endpoint read the same numbers.
type metrics struct {
	local, peer        atomic.Int64 // chunks served, by source (origin: the fetcher's)
	home               atomic.Int64 // chunks served by a home node
	homeBusy           atomic.Int64 // asks of a home repeated because it answered Busy
	metaHome           atomic.Int64 // metadata answered by a home node
	manifestsFound     atomic.Int64 // manifests learnt from DHT records
	manifestsPublished atomic.Int64 // manifest records published
	providesQueued     atomic.Int64 // CIDs handed to the router to announce
	providesFailed     atomic.Int64 // announcements refused or dropped
	tasksDropped       atomic.Int64 // background tasks dropped: queue full or not running
	clientWaits        atomic.Int64 // clients given up on after OriginWait (503 Retry-After)
	forgeries          atomic.Int64 // versions from peers proven false and dropped
	liesPenalized      atomic.Int64 // peers penalized for a proven lie
	manifestConflicts  atomic.Int64 // lookups that saw conflicting manifest records
	manifestsRejected  atomic.Int64 // manifests from peers refused (contradict the origin, or a conflict the origin cannot settle)
	spotChecks         struct{ passed, lies, failed atomic.Int64 }
	versionsVerified   atomic.Int64 // versions checked whole against the origin's integrity data
	heads              atomic.Int64
	shared             atomic.Int64
	stale              atomic.Int64
	metaHits           atomic.Int64
	metaMisses         atomic.Int64
	// Warm-up jobs this node runs: logical bytes by the first copy's
	// source, and every byte their chunk reads took from the origin.
	jobBytes       struct{ origin, peer, cached atomic.Int64 }
	jobOriginBytes atomic.Int64
	repairedBytes  atomic.Int64 // bytes copied to restore replica targets
}

const jobBytesHelp = "Logical bytes warmed by the warm-up jobs this node runs, by where each chunk's first copy came from."

// registerLive registers the gauges that read the node's job manager and
// repair state (built after the counters).
func (n *Node) registerLive(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shoal", Subsystem: "node", Name: name, Help: help}, f)
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		gauge("jobs_running", "Warm-up jobs running on this node.", func() float64 { return float64(len(n.jobs.Live())) }),
		gauge("replica_deficit_chunks", "Chunks this node should hold for a replica target and does not yet (0 when every target is met).", func() float64 {
			return float64(n.replicaStatus().Deficit)
		}),
	} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: metrics: %w", err)
	}
	return nil
}

func newMetrics(reg prometheus.Registerer, oc *originfetch.Counters) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		return m, nil
	}
	counter := func(name, help string, labels prometheus.Labels, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "node", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return float64(v.Load()) })
	}
	const chunkHelp = "Chunks served to readers, by the source that supplied them."
	cs := []prometheus.Collector{
		counter("chunks_total", chunkHelp, prometheus.Labels{"source": "local"}, &m.local),
		counter("chunks_total", chunkHelp, prometheus.Labels{"source": "peer"}, &m.peer),
		counter("chunks_total", chunkHelp, prometheus.Labels{"source": "origin"}, &oc.Chunks),
		counter("chunks_total", chunkHelp, prometheus.Labels{"source": "home"}, &m.home),
		counter("home_metadata_total", "Metadata lookups answered by the key's home node instead of the origin.", nil, &m.metaHome),
		counter("manifest_records_total", "Manifest records, by what happened to them.", prometheus.Labels{"result": "found"}, &m.manifestsFound),
		counter("manifest_records_total", "Manifest records, by what happened to them.", prometheus.Labels{"result": "published"}, &m.manifestsPublished),
		counter("provides_total", "Block announcements, by result.", prometheus.Labels{"result": "queued"}, &m.providesQueued),
		counter("provides_total", "Block announcements, by result.", prometheus.Labels{"result": "failed"}, &m.providesFailed),
		counter("origin_bytes_total", "Chunk bytes read from the origin.", nil, &oc.Bytes),
		counter("origin_hedges_total", "Origin range requests sent a second time because the first had no answer within the stall time.", nil, &oc.Hedges),
		counter("origin_resumes_total", "Origin responses that stalled mid-chunk and were asked again for the missing bytes.", nil, &oc.Resumes),
		counter("forgeries_total", "Versions learned from peers that the origin's integrity data proved false; each was dropped and read from the origin.", nil, &m.forgeries),
		counter("lies_penalized_total", "Peers penalized for a claim (manifest, chunk) the origin proved false.", nil, &m.liesPenalized),
		counter("manifest_conflicts_total", "Manifest lookups that saw conflicting records for one version (an alarm: all but one are false).", nil, &m.manifestConflicts),
		counter("manifests_rejected_total", "Manifests from peers refused: they contradict the origin's checksum, or conflict where the origin cannot settle it.", nil, &m.manifestsRejected),
		counter("versions_verified_total", "Versions checked whole on this node against the origin's integrity data (full-object CRC or MD5 ETag).", nil, &m.versionsVerified),
		counter("spot_checks_total", "Chunks from peers re-read from the origin by their auditor, by result.", prometheus.Labels{"result": "passed"}, &m.spotChecks.passed),
		counter("spot_checks_total", "Chunks from peers re-read from the origin by their auditor, by result.", prometheus.Labels{"result": "lie"}, &m.spotChecks.lies),
		counter("spot_checks_total", "Chunks from peers re-read from the origin by their auditor, by result.", prometheus.Labels{"result": "failed"}, &m.spotChecks.failed),
		counter("origin_wait_exceeded_total", "Client requests answered 503 (Retry-After) because the origin gave no answer within --origin-wait; the fetch went on.", nil, &m.clientWaits),
		counter("background_tasks_dropped_total", "Background tasks (home read-ahead, manifest lookups) dropped because the queue was full or Run was not running.", nil, &m.tasksDropped),
		counter("origin_heads_total", "HEAD requests sent to the origin.", nil, &m.heads),
		counter("home_busy_retries_total", "Chunk requests to a home node asked again because the home answered Busy (its transfer server at its limit), instead of going to the next candidate.", nil, &m.homeBusy),
		counter("shared_fetches_total", "Chunk or metadata fetches joined by a reader that did not start them (singleflight).", nil, &m.shared),
		counter("stale_served_total", "Stale metadata served because the origin could not be reached.", nil, &m.stale),
		counter("metadata_lookups_total", "Metadata lookups, by whether the catalog answered without the origin.", prometheus.Labels{"result": "hit"}, &m.metaHits),
		counter("metadata_lookups_total", "Metadata lookups, by whether the catalog answered without the origin.", prometheus.Labels{"result": "miss"}, &m.metaMisses),
		counter("job_bytes_total", jobBytesHelp, prometheus.Labels{"source": "origin"}, &m.jobBytes.origin),
		counter("job_bytes_total", jobBytesHelp, prometheus.Labels{"source": "peer"}, &m.jobBytes.peer),
		counter("job_bytes_total", jobBytesHelp, prometheus.Labels{"source": "cached"}, &m.jobBytes.cached),
		counter("job_origin_bytes_total", "Bytes the chunk reads of the warm-up jobs this node runs took from the origin, replica copies included (over job_bytes_total: the origin amplification).", nil, &m.jobOriginBytes),
		counter("replica_repaired_bytes_total", "Bytes this node copied to restore replica targets after a holder left.", nil, &m.repairedBytes),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	return m, nil
}
