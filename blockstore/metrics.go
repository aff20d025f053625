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
	readBytes                                 prometheus.Counter
	bytes, budget                             prometheus.Gauge
	// removals by reason (memory and disk tiers only; nil for tiered)
	removedBudget, removedCorrupt, removedMissing, removedDeleted prometheus.Counter
}

// Reasons a block leaves a tier, the "reason" label of removals_total.
const (
	reasonBudget  = "budget"  // evicted to stay within the byte budget
	reasonCorrupt = "corrupt" // failed verification or could not be read
	reasonMissing = "missing" // its file was gone (removed behind the store's back)
	reasonDeleted = "deleted" // deleted on request (a version proven false)
)

// newTierMetrics registers (or reuses, when another tier already registered
// them on the same Registerer) the blockstore metric families and returns the
// series for tier, whose byte budget is budget (0: none, the tiered store's
// own series). reg == nil disables metrics.
func newTierMetrics(reg prometheus.Registerer, tier string, budget int64) (*tierMetrics, error) {
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
	if budget > 0 {
		b, err := registerOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "blockstore", Name: "budget_bytes",
			Help: "Configured byte budget, by tier (memory, disk).",
		}, []string{"tier"}))
		if err != nil {
			return nil, err
		}
		m.budget = b.WithLabelValues(tier)
		m.budget.Set(float64(budget))
	}
	for _, c := range []struct {
		dst        *prometheus.Counter
		name, help string
	}{
		{&m.hits, "hits_total", "Block reads served, by tier."},
		{&m.misses, "misses_total", "Block reads not served, by tier."},
		{&m.evictions, "evictions_total", "Blocks evicted to stay within the byte budget, by tier."},
		{&m.corrupt, "corrupt_total", "Blocks dropped because they failed verification, by tier."},
		{&m.dropped, "dropped_writes_total", "Disk writes dropped, by tier: tiered when its write queue was full, disk when the write failed or the filesystem had no room."},
		{&m.readBytes, "read_bytes_total", "Payload bytes of the block reads served, by tier (tiered: all reads of the node's store, the disk write queue included)."},
	} {
		v, err := registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "blockstore", Name: c.name, Help: c.help,
		}, []string{"tier"}))
		if err != nil {
			return nil, err
		}
		*c.dst = v.WithLabelValues(tier)
	}
	if tier != tierTiered {
		rv, err := registerOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "blockstore", Name: "removals_total",
			Help: "Blocks that left a tier, by tier and reason: budget (eviction), corrupt, missing (file gone), deleted (on request).",
		}, []string{"tier", "reason"}))
		if err != nil {
			return nil, err
		}
		m.removedBudget = rv.WithLabelValues(tier, reasonBudget)
		m.removedCorrupt = rv.WithLabelValues(tier, reasonCorrupt)
		m.removedMissing = rv.WithLabelValues(tier, reasonMissing)
		m.removedDeleted = rv.WithLabelValues(tier, reasonDeleted)
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

// hit counts one block read served of n bytes.
func (m *tierMetrics) hit(n int) {
	if m != nil {
		m.hits.Inc()
		m.readBytes.Add(float64(n))
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
		removed(m.removedBudget, n)
	}
}

func (m *tierMetrics) corrupted() {
	if m != nil {
		m.corrupt.Inc()
		removed(m.removedCorrupt, 1)
	}
}

// missing counts a block dropped because its file was gone.
func (m *tierMetrics) missing() {
	if m != nil {
		removed(m.removedMissing, 1)
	}
}

// deleted counts a block deleted on request.
func (m *tierMetrics) deleted() {
	if m != nil {
		removed(m.removedDeleted, 1)
	}
}

func removed(c prometheus.Counter, n int) {
	if c != nil {
		c.Add(float64(n))
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
