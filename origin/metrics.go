package origin

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one origin. Labels are the operation and a coarse result, never
// a bucket or key.
type metrics struct {
	requests  *prometheus.CounterVec // op, result
	readBytes prometheus.Counter
	inflight  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "origin", Name: "requests_total",
			Help: "Origin requests by operation and result (after retries).",
		}, []string{"op", "result"}),
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "origin", Name: "read_bytes_total",
			Help: "Object bytes read from the origin by GetRange bodies.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "origin", Name: "gets_in_flight",
			Help: "GetRange requests holding an in-flight slot (until the body is closed).",
		}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		// The read path's outcomes exist from the start at zero, so that
		// rate() and the error-ratio alert see the first of each.
		for _, op := range []string{"head", "get"} {
			for _, res := range []string{"ok", "not_found", "unavailable", "error"} {
				m.requests.WithLabelValues(op, res)
			}
		}
		m.readBytes = register(reg, m.readBytes)
		m.inflight = register(reg, m.inflight)
	}
	return m
}

// register registers c, or returns the already registered equal collector
// so two origins can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *metrics) observe(op string, err error) {
	m.requests.WithLabelValues(op, resultLabel(err)).Inc()
}

func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoSuchBucket), errors.Is(err, ErrNoSuchUpload):
		return "not_found"
	case errors.Is(err, ErrAccessDenied):
		return "denied"
	case errors.Is(err, ErrPreconditionFailed):
		return "precondition_failed"
	case errors.Is(err, ErrInvalidRange), errors.Is(err, ErrInvalidArgument):
		return "invalid"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	default:
		return "error"
	}
}
