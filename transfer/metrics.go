package transfer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type serverMetrics struct {
	bytesSent  prometheus.Counter
	requests   *prometheus.CounterVec // type, result
	inflight   prometheus.Gauge
	keepAlives prometheus.Counter
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "bytes_sent_total",
			Help: "Chunk bytes sent to peers (upload).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "server_requests_total",
			Help: "Requests served, by type and result.",
		}, []string{"type", "result"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "server_inflight",
			Help: "Requests being served now.",
		}),
		keepAlives: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "keepalives_sent_total",
			Help: "Keep-alive (working) frames sent while a handler ran.",
		}),
	}
	if err := register(reg, m.bytesSent, m.requests, m.inflight, m.keepAlives); err != nil {
		return nil, err
	}
	return m, nil
}

type clientMetrics struct {
	bytesReceived prometheus.Counter
	requests      *prometheus.CounterVec // type, result
	stalls        prometheus.Counter
	corrupt       prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	m := &clientMetrics{
		bytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "bytes_received_total",
			Help: "Chunk bytes received from peers (download).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "client_requests_total",
			Help: "Requests sent to peers (one per sub-range), by type and result.",
		}, []string{"type", "result"}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "stalls_total",
			Help: "Providers dropped for making no progress within the stall timeout.",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "shoal", Subsystem: "transfer", Name: "corrupt_total",
			Help: "Providers caught sending bytes that do not match the CID.",
		}),
	}
	if err := register(reg, m.bytesReceived, m.requests, m.stalls, m.corrupt); err != nil {
		return nil, err
	}
	return m, nil
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(errors.New("transfer: register metrics"), err)
	}
	return nil
}

// resultLabel names an error's class for the "result" label.
func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrStalled):
		return "stalled"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrRemote):
		return "remote_error"
	}
	return "error"
}
