package blockstore

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Tier label values. Metrics are labelled by tier only (never by CID).
const (
	tierMemory = "memory"
	tierDisk   = "disk"
	tierTiered = "tiered"
)

// tierMetrics are one tier's Prometheus series. A nil *tierMetrics (no
// Registerer injected) records nothing.
type tierMetrics struct {
	hits, misses, evictions, corrupt, dropped prometheus.Counter
	bytes                                     prometheus.Gauge
}

// newTierMetrics registers (or reuses, when another tier already registered
// them on the same Registerer) the blockstore metric families and returns the
// series for tier. reg == nil disables metrics.
func newTierMetrics(reg prometheus.Registerer, tier string) (*tierMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	gauge, err := registerOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "shoal", Subsystem: "blockstore", Name: "bytes",
		Help: "Payload bytes held, by tier.",
	}, []string{"tier"}))
	if err != nil {
		return nil, err
	}
	m := &tierMetrics{bytes: gauge.WithLabelValues(tier)}
	for _, c := range []struct {
		dst        *prometheus.Counter
		name, help string
	}{
		{&m.hits, "hits_total", "Block reads served, by tier."},
		{&m.misses, "misses_total", "Block reads not served, by tier."},
		{&m.evictions, "evictions_total", "Blocks evicted to stay within the byte budget, by tier."},
		{&m.corrupt, "corrupt_total", "Blocks dropped because they failed verification, by tier."},
		{&m.dropped, "dropped_writes_total", "Disk writes dropped because the write queue was full, by tier."},
	} {
		v, err := registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "blockstore", Name: c.name, Help: c.help,
		}, []string{"tier"}))
		if err != nil {
			return nil, err
		}
		*c.dst = v.WithLabelValues(tier)
	}
	return m, nil
}

// registerOrReuse registers c, or returns the collector of the same
// description registered earlier (several tiers share one metric family and
// differ only in their tier label).
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, err
	}
	return c, nil
}

func (m *tierMetrics) hit() {
	if m != nil {
		m.hits.Inc()
	}
}

func (m *tierMetrics) miss() {
	if m != nil {
		m.misses.Inc()
	}
}

func (m *tierMetrics) evicted(n int) {
	if m != nil && n > 0 {
		m.evictions.Add(float64(n))
	}
}

func (m *tierMetrics) corrupted() {
	if m != nil {
		m.corrupt.Inc()
	}
}

func (m *tierMetrics) droppedWrite() {
	if m != nil {
		m.dropped.Inc()
	}
}

func (m *tierMetrics) setBytes(n int64) {
	if m != nil {
		m.bytes.Set(float64(n))
	}
}
