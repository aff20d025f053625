package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by operation (the S3 API name, a bounded set) and
// status class, never by bucket or key.
type metrics struct {
	requests *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "gateway", Name: "requests_total",
			Help: "S3 requests by operation and status class.",
		}, []string{"operation", "status"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "gateway", Name: "response_bytes_total",
			Help: "Response body bytes written, by operation.",
		}, []string{"operation"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "shoal", Subsystem: "gateway", Name: "request_duration_seconds",
			Help: "Time from request to the end of the response, by operation.",
			// 1 ms .. ~65 s: cache hits are sub-millisecond, cold reads of
			// large objects take seconds.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}, []string{"operation"}),
	}
	// The read path's series exist from the start at zero, so that
	// rate() sees the first requests (a series born at its first
	// increment hides that increment).
	for _, op := range []operation{opGetObject, opHeadObject} {
		for _, class := range []string{"2xx", "3xx", "4xx", "5xx"} {
			m.requests.WithLabelValues(string(op), class)
		}
		m.bytesOut.WithLabelValues(string(op))
		m.latency.WithLabelValues(string(op))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.bytesOut, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("%w: metrics already registered: %w", ErrInvalidConfig, err)
			}
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return m, nil
}

func (g *Gateway) observe(req *request) {
	op := string(req.rt.op)
	class := strconv.Itoa(req.w.status/100) + "xx"
	g.metrics.requests.WithLabelValues(op, class).Inc()
	g.metrics.bytesOut.WithLabelValues(op).Add(float64(req.w.bytes))
	g.metrics.latency.WithLabelValues(op).Observe(time.Since(req.start).Seconds())
}
