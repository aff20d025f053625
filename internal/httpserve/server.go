package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate and New.
var ErrInvalidConfig = errors.New("httpserve: invalid config")

// ErrBodyTimeout: a request or response body made no progress for
// BodyTimeout. It is returned wrapped together with the connection's
// deadline error (os.ErrDeadlineExceeded).
var ErrBodyTimeout = errors.New("httpserve: body stalled")

// Defaults applied by Config.Validate when a field is zero.
const (
	// DefaultIdleTimeout: longer than the pauses of a client's connection
	// pool between bursts, short enough that abandoned connections go
	// within a minute.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultBodyTimeout: a moving transfer sends or takes bytes every few
	// milliseconds; a minute without any is a dead or hostile peer.
	DefaultBodyTimeout = 60 * time.Second
	// DefaultReadHeaderTimeout bounds how long a client may take to send
	// its request headers (slowloris); real clients send them at once.
	DefaultReadHeaderTimeout = 30 * time.Second
)

// logEvery rate-limits the warnings about a full listener or missing file
// descriptors: one line per this interval, carrying the count since the
// previous line, says enough without flooding the log under attack.
const logEvery = 30 * time.Second

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Name labels logs and metrics ("gateway", "admin"). Required.
	Name string
	// MaxConns caps open connections. Required.
	MaxConns int
	// ReservedConns are accepted beyond MaxConns; they serve one request
	// each, and only for ReservedPaths (others get 503). Default 0.
	ReservedConns int
	// ReservedPaths are the URL paths reserved connections serve.
	ReservedPaths []string
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// BodyTimeout is the longest pause allowed while a request body is
	// read or a response written; the connection is closed after it.
	// Default DefaultBodyTimeout.
	BodyTimeout time.Duration
	// ReadHeaderTimeout bounds reading request headers. Default
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds request headers. Default
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
}

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: no Name", ErrInvalidConfig)
	case c.MaxConns < 1:
		return fmt.Errorf("%w: %s: MaxConns %d: want at least 1", ErrInvalidConfig, c.Name, c.MaxConns)
	case c.ReservedConns < 0:
		return fmt.Errorf("%w: %s: ReservedConns %d is negative", ErrInvalidConfig, c.Name, c.ReservedConns)
	case c.ReservedConns > 0 && len(c.ReservedPaths) == 0:
		return fmt.Errorf("%w: %s: ReservedConns without ReservedPaths", ErrInvalidConfig, c.Name)
	case c.IdleTimeout < 0 || c.BodyTimeout < 0 || c.ReadHeaderTimeout < 0 || c.MaxHeaderBytes < 0:
		return fmt.Errorf("%w: %s: negative timeout or header limit", ErrInvalidConfig, c.Name)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	return nil
}

// Option injects a collaborator into New.
type Option func(*options)

type options struct {
	log *slog.Logger
	reg prometheus.Registerer
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the server's metrics with reg (default: none).
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// Server serves one handler on one listener.
type Server struct {
	cfg Config
	srv *http.Server
	ln  *limitListener
	m   *metrics
	log *slog.Logger
	// stalls rate-limits the log line about cut bodies.
	stalls *rateLimit
}

// New returns a Server for h on ln; Serve starts it. The Server owns ln.
func New(ln net.Listener, h http.Handler, cfg Config, opts ...Option) (*Server, error) {
	cfg.ReservedPaths = append([]string(nil), cfg.ReservedPaths...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	m, err := newMetrics(o.reg, cfg.Name)
	if err != nil {
		return nil, err
	}
	m.max.Set(float64(cfg.MaxConns))
	log := o.log.With("component", "http", "listener", cfg.Name)
	s := &Server{cfg: cfg, m: m, log: log, stalls: &rateLimit{every: logEvery}}
	s.ln = newLimitListener(ln, cfg, m, log)
	s.srv = &http.Server{
		Handler:           s.wrap(h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if lc, ok := c.(*limitConn); ok && lc.reserved {
				return context.WithValue(ctx, reservedKey{}, true)
			}
			return ctx
		},
	}
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until Shutdown or Close; it then returns http.ErrServerClosed.
func (s *Server) Serve() error { return s.srv.Serve(s.ln) }

// Shutdown stops accepting, closes idle connections and waits for active
// ones until ctx ends (see http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

type reservedKey struct{}

// wrap applies the reserved-connection rule and the body deadlines.
func (s *Server) wrap(h http.Handler) http.Handler {
	paths := strings.Join(s.cfg.ReservedPaths, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(reservedKey{}) != nil {
			w.Header().Set("Connection", "close")
			if !slices.Contains(s.cfg.ReservedPaths, r.URL.Path) {
				http.Error(w, "too many open connections: only "+paths+" answered until some close", http.StatusServiceUnavailable)
				return
			}
		}
		s.serveWithDeadlines(h, w, r)
	})
}
