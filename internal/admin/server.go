package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Backend is what the admin API needs from the node. Results are encoded as
// JSON as they are, so the node's own result types define the wire format.
type Backend interface {
	Status(ctx context.Context) (any, error)
	// Checks reports the state of the node's parts for /readyz. A failing
	// check that is not Critical (an origin that is down: the node still
	// serves what it holds) is reported but keeps the node ready.
	Checks(ctx context.Context) []Check
	Pin(ctx context.Context, bucket, prefix string) (any, error)
	Unpin(ctx context.Context, bucket, prefix string) (any, error)
	Prefetch(ctx context.Context, bucket, prefix string) (any, error)
}

// Check is one part's state in /readyz.
type Check struct {
	Name     string // e.g. "origin"
	OK       bool
	Detail   string // why not OK
	Critical bool   // a failing critical check makes the node not ready
}

// ErrBadRequest marks a Backend error caused by the request (400).
var ErrBadRequest = errors.New("admin: bad request")

// PrefixRequest is the body of /v1/pin, /v1/unpin and /v1/prefetch.
type PrefixRequest struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
}

// maxBody bounds request bodies: a bucket name and a key prefix are at most
// ~1 KiB each.
const maxBody = 16 << 10

// Server is the admin API handler.
type Server struct {
	cfg    Config
	be     Backend
	mux    *http.ServeMux
	log    *slog.Logger
	ready  atomic.Bool
	gather prometheus.Gatherer
	extra  []extraHandler // set by WithHandler
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithGatherer sets where /metrics reads from (default: an empty registry).
func WithGatherer(g prometheus.Gatherer) Option { return func(s *Server) { s.gather = g } }

// WithHandler serves h under pattern (a ServeMux pattern such as
// "/debug/pprof/") behind the same guard as the API itself.
func WithHandler(pattern string, h http.Handler) Option {
	return func(s *Server) { s.extra = append(s.extra, extraHandler{pattern, h}) }
}

type extraHandler struct {
	pattern string
	h       http.Handler
}

// New returns the admin handler. It reports not ready until SetReady(true).
func New(cfg Config, be Backend, opts ...Option) (*Server, error) {
	cfg.AllowedHosts = append([]string(nil), cfg.AllowedHosts...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, be: be, mux: http.NewServeMux(), log: slog.New(slog.DiscardHandler), gather: prometheus.NewRegistry()}
	for _, o := range opts {
		o(s)
	}
	for _, e := range s.extra {
		s.mux.Handle(e.pattern, e.h)
	}
	s.log = s.log.With("component", "admin")
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		// One line per check after the verdict: "origin: ok" or
		// "origin: degraded: <why>".
		var b strings.Builder
		ready := true
		for _, c := range s.be.Checks(r.Context()) {
			if c.OK {
				fmt.Fprintf(&b, "%s: ok\n", c.Name)
				continue
			}
			ready = ready && !c.Critical
			fmt.Fprintf(&b, "%s: degraded: %s\n", c.Name, c.Detail)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n"+b.String())
			return
		}
		io.WriteString(w, "ready\n"+b.String())
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.be.Status(r.Context())
		s.reply(w, "status", res, err)
	})
	s.mux.HandleFunc("POST /v1/pin", s.prefixOp("pin", s.be.Pin))
	s.mux.HandleFunc("POST /v1/unpin", s.prefixOp("unpin", s.be.Unpin))
	s.mux.HandleFunc("POST /v1/prefetch", s.prefixOp("prefetch", s.be.Prefetch))
	if o, ok := be.(Ops); ok {
		s.routeOps(o)
	}
	return s, nil
}

// SetReady flips /readyz.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.guard(w, r) {
		s.mux.ServeHTTP(w, r)
	}
}

func (s *Server) prefixOp(name string, op func(context.Context, string, string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req PrefixRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
			return
		}
		if err := ValidateBucket(req.Bucket); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Info(name, "bucket", req.Bucket, "prefix", req.Prefix)
		res, err := op(r.Context(), req.Bucket, req.Prefix)
		s.reply(w, name, res, err)
	}
}

func (s *Server) reply(w http.ResponseWriter, op string, res any, err error) {
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrBadRequest):
			status = http.StatusBadRequest
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		}
		s.log.Warn(op+" failed", "err", err)
		writeError(w, status, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		s.log.Warn("encode "+op, "err", err)
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// ValidateBucket checks a bucket name loosely (S3 rules: 3-63 characters of
// lower-case letters, digits, '.', '-'); the origin has the final word.
func ValidateBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q: want 3 to 63 characters", b)
	}
	if strings.IndexFunc(b, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) >= 0 {
		return fmt.Errorf("bucket name %q: want lower-case letters, digits, '.', '-'", b)
	}
	return nil
}
