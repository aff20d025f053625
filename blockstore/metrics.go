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
		{&m.dropped, "dropped_writes_total", "Disk writes dropped, by tier: tiered when its write queue was full, disk when the write failed or the filesystem had no room."},
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

// spaceMetrics are the SSD tier's view of its filesystem (see Space). A nil
// *spaceMetrics records nothing.
type spaceMetrics struct {
	free, limit, full prometheus.Gauge
}

func newSpaceMetrics(reg prometheus.Registerer) (*spaceMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &spaceMetrics{}
	for _, g := range []struct {
		dst        *prometheus.Gauge
		name, help string
	}{
		{&m.free, "free_bytes", "Bytes free on the filesystem under the tier, at the last check."},
		{&m.limit, "limit_bytes", "The tier's budget in force: the configured budget, or less when the filesystem has less room."},
		{&m.full, "disk_full", "1 while the tier's filesystem is full (the budget shrank to what the disk has), else 0."},
	} {
		v, err := registerOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "blockstore", Name: g.name, Help: g.help,
		}, []string{"tier"}))
		if err != nil {
			return nil, err
		}
		*g.dst = v.WithLabelValues(tierDisk)
	}
	return m, nil
}

func (m *spaceMetrics) set(s Space) {
	if m == nil {
		return
	}
	m.free.Set(float64(s.FreeBytes))
	m.limit.Set(float64(s.LimitBytes))
	full := 0.0
	if s.Full {
		full = 1
	}
	m.full.Set(full)
}
