package httpserve

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one listener; the listener name is a constant label.
type metrics struct {
	open         prometheus.Gauge
	max          prometheus.Gauge
	waits        prometheus.Counter
	bodyTimeouts *prometheus.CounterVec // by direction: request, response
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	labels := prometheus.Labels{"listener": name}
	m := &metrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "http", Name: "connections", ConstLabels: labels,
			Help: "Open HTTP connections, by listener.",
		}),
		max: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "http", Name: "connections_max", ConstLabels: labels,
			Help: "Cap on open HTTP connections, by listener (reserved connections not included).",
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "http", Name: "connection_waits_total", ConstLabels: labels,
			Help: "Times a new connection found its listener at the cap and had to wait.",
		}),
		bodyTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "http", Name: "body_timeouts_total", ConstLabels: labels,
			Help: "Request bodies (direction=request) and responses (direction=response) cut for making no progress.",
		}, []string{"direction"}),
	}
	m.bodyTimeouts.WithLabelValues("request")
	m.bodyTimeouts.WithLabelValues("response")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.open, m.max, m.waits, m.bodyTimeouts} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("%w: metrics of listener %q already registered: %w", ErrInvalidConfig, name, err)
			}
			return nil, fmt.Errorf("httpserve: register metrics: %w", err)
		}
	}
	return m, nil
}
