package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Inner is the method set Health needs from the origin it wraps; S3 and Dir
// have it.
type Inner interface {
	HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error)
	GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error)
	ListObjects(ctx context.Context, p ListParams) (ListResult, error)
	ListBuckets(ctx context.Context) ([]Bucket, error)
	HeadBucket(ctx context.Context, bucket string) (string, error)
	PutObject(ctx context.Context, p PutParams) (ObjectInfo, error)
	DeleteObject(ctx context.Context, bucket, key string) error
	CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error)
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectInfo, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
}

var (
	_ Inner = (*S3)(nil)
	_ Inner = (*Dir)(nil)
	_ Inner = (*Health)(nil)
)

// Defaults for HealthConfig.
const (
	// DefaultFailuresToDegrade: one failed call can be one bad connection;
	// three in a row, each after the origin's own retries, is an outage.
	DefaultFailuresToDegrade = 3
	// DefaultStallAfter is how long a call may wait for its answer, with no
	// other call answered meanwhile, before the origin counts as degraded
	// while it waits. It equals DefaultHeaderTimeout: S3 answers in tens of
	// milliseconds, so a call waiting this long is stuck, and a hung origin
	// shows in /readyz about when its first clients give up, not only when
	// the calls fail at the end of their retry budget.
	DefaultStallAfter = DefaultHeaderTimeout
)

// HealthConfig configures Health. Zero values take the defaults.
type HealthConfig struct {
	// FailuresToDegrade is the number of consecutive failed calls after
	// which the origin is degraded (default DefaultFailuresToDegrade).
	FailuresToDegrade int
	// StallAfter: see DefaultStallAfter (default DefaultStallAfter).
	StallAfter time.Duration
}

// Validate reports a configuration error wrapping ErrInvalidArgument.
func (c HealthConfig) Validate() error {
	if c.FailuresToDegrade < 0 || c.StallAfter < 0 {
		return fmt.Errorf("origin: health config: negative FailuresToDegrade or StallAfter: %w", ErrInvalidArgument)
	}
	return nil
}

// HealthOption injects a collaborator into NewHealth.
type HealthOption func(*healthOptions)

type healthOptions struct {
	logger     *slog.Logger
	registerer prometheus.Registerer
}

// WithHealthLogger logs the changes between ok and degraded (default: discard).
func WithHealthLogger(l *slog.Logger) HealthOption {
	return func(o *healthOptions) { o.logger = l }
}

// WithHealthRegisterer registers the health gauges (default: none).
func WithHealthRegisterer(r prometheus.Registerer) HealthOption {
	return func(o *healthOptions) { o.registerer = r }
}

// Health wraps an origin and tracks whether it answers. It passes every
// call through unchanged and watches the outcome:
//
//   - a failure is ErrUnavailable (network error, 5xx, throttling after
//     retries, a hung server's retry budget) or an error of no origin
//     sentinel, from the call or, for GetRange, from reading its body;
//   - any other answer (nil, ErrNotFound, ErrPreconditionFailed,
//     ErrAccessDenied, ...) is a success: the origin answered;
//   - a call ended by its caller's context counts as neither.
//
// The origin is degraded after FailuresToDegrade consecutive failures, and
// while a call (other than an upload, whose duration follows its bytes) has
// waited StallAfter for its answer with no success since it started. One
// success makes it ok again. Health is safe for concurrent use.
type Health struct {
	o   Inner
	cfg HealthConfig
	log *slog.Logger

	mu          sync.Mutex // guards the fields below
	failures    int        // consecutive failures
	lastErr     error      // the last failure
	lastSuccess time.Time
	nextID      uint64
	waiting     map[uint64]time.Time // calls in flight (uploads excluded): start times
	degraded    bool                 // by failures, as last logged
}

// NewHealth wraps o.
func NewHealth(o Inner, cfg HealthConfig, opts ...HealthOption) (*Health, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FailuresToDegrade == 0 {
		cfg.FailuresToDegrade = DefaultFailuresToDegrade
	}
	if cfg.StallAfter == 0 {
		cfg.StallAfter = DefaultStallAfter
	}
	var ho healthOptions
	for _, opt := range opts {
		opt(&ho)
	}
	if ho.logger == nil {
		ho.logger = slog.New(slog.DiscardHandler)
	}
	h := &Health{o: o, cfg: cfg, log: ho.logger.With("component", "origin"), waiting: map[uint64]time.Time{}}
	if reg := ho.registerer; reg != nil {
		register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "origin", Name: "degraded",
			Help: "1 while the origin is degraded (consecutive failures, or a call stalled), else 0.",
		}, func() float64 {
			if ok, _ := h.State(); ok {
				return 0
			}
			return 1
		}))
		register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "origin", Name: "consecutive_failures",
			Help: "Origin calls failed in a row (unavailable or unexplained errors) since the last answer.",
		}, func() float64 {
			h.mu.Lock()
			defer h.mu.Unlock()
			return float64(h.failures)
		}))
		register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "shoal", Subsystem: "origin", Name: "last_success_timestamp_seconds",
			Help: "Unix time of the origin's last answer (0: none yet).",
		}, func() float64 {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.lastSuccess.IsZero() {
				return 0
			}
			return float64(h.lastSuccess.UnixNano()) / 1e9
		}))
	}
	return h, nil
}

// State reports whether the origin is ok and, when it is not, why: for
// /readyz and /v1/status.
func (h *Health) State() (ok bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	since := "never"
	if !h.lastSuccess.IsZero() {
		since = now.Sub(h.lastSuccess).Round(time.Millisecond).String() + " ago"
	}
	if h.failures >= h.cfg.FailuresToDegrade {
		return false, fmt.Sprintf("origin degraded: %d calls failed in a row, last answer %s; last error: %v", h.failures, since, h.lastErr)
	}
	var oldest time.Time
	for _, start := range h.waiting {
		if oldest.IsZero() || start.Before(oldest) {
			oldest = start
		}
	}
	if !oldest.IsZero() && now.Sub(oldest) >= h.cfg.StallAfter && h.lastSuccess.Before(oldest) {
		return false, fmt.Sprintf("origin degraded: a call has waited %s for an answer, last answer %s", now.Sub(oldest).Round(time.Millisecond), since)
	}
	return true, ""
}

// Close closes the wrapped origin if it has a Close method.
func (h *Health) Close() error {
	if c, ok := h.o.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// begin records a call that may stall (watch) and returns the function that
// records its outcome.
func (h *Health) begin(ctx context.Context, watch bool) func(error) {
	var id uint64
	if watch {
		h.mu.Lock()
		h.nextID++
		id = h.nextID
		h.waiting[id] = time.Now()
		h.mu.Unlock()
	}
	return func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if watch {
			delete(h.waiting, id)
		}
		h.recordLocked(ctx, err)
	}
}

func (h *Health) recordLocked(ctx context.Context, err error) {
	switch outcome(ctx, err) {
	case answered:
		h.lastSuccess = time.Now()
		h.failures, h.lastErr = 0, nil
		if h.degraded {
			h.degraded = false
			h.log.Info("origin recovered")
		}
	case failed:
		h.failures++
		h.lastErr = err
		if h.failures == h.cfg.FailuresToDegrade && !h.degraded {
			h.degraded = true
			h.log.Warn("origin degraded", "failures", h.failures, "err", err)
		}
	}
}

type verdict int

const (
	answered verdict = iota
	failed
	noVerdict // the caller gave up first
)

// outcome judges one call: any answer of the origin, an error one included,
// is an answer; ErrUnavailable is a failure; else an error after the
// caller's context ended says nothing about the origin, and any other error
// (a disk error under Dir, say) is a failure.
func outcome(ctx context.Context, err error) verdict {
	if err == nil {
		return answered
	}
	for _, s := range []error{ErrNotFound, ErrNoSuchBucket, ErrNoSuchUpload, ErrAccessDenied,
		ErrPreconditionFailed, ErrInvalidRange, ErrInvalidArgument} {
		if errors.Is(err, s) {
			return answered
		}
	}
	switch {
	case errors.Is(err, ErrUnavailable):
		return failed
	case ctx.Err() != nil:
		return noVerdict
	}
	return failed
}

// HeadObject passes the call through.
func (h *Health) HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	done := h.begin(ctx, true)
	info, err := h.o.HeadObject(ctx, bucket, key)
	done(err)
	return info, err
}

// GetRange passes the call through; a failure reading the body counts as a
// failure of the origin.
func (h *Health) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	done := h.begin(ctx, true)
	rc, err := h.o.GetRange(ctx, bucket, key, etag, off, n)
	done(err)
	if err != nil {
		return nil, err
	}
	return &healthBody{rc: rc, h: h, ctx: ctx}, nil
}

// healthBody reports the first read error of a body (io.EOF aside).
type healthBody struct {
	rc       io.ReadCloser
	h        *Health
	ctx      context.Context
	reported bool
}

func (b *healthBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && !b.reported {
		b.reported = true
		b.h.mu.Lock()
		b.h.recordLocked(b.ctx, err)
		b.h.mu.Unlock()
	}
	return n, err
}

func (b *healthBody) Close() error { return b.rc.Close() }

// ListObjects passes the call through.
func (h *Health) ListObjects(ctx context.Context, p ListParams) (ListResult, error) {
	done := h.begin(ctx, true)
	r, err := h.o.ListObjects(ctx, p)
	done(err)
	return r, err
}

// ListBuckets passes the call through.
func (h *Health) ListBuckets(ctx context.Context) ([]Bucket, error) {
	done := h.begin(ctx, true)
	b, err := h.o.ListBuckets(ctx)
	done(err)
	return b, err
}

// HeadBucket passes the call through.
func (h *Health) HeadBucket(ctx context.Context, bucket string) (string, error) {
	done := h.begin(ctx, true)
	r, err := h.o.HeadBucket(ctx, bucket)
	done(err)
	return r, err
}

// PutObject passes the call through (not watched for stalls).
func (h *Health) PutObject(ctx context.Context, p PutParams) (ObjectInfo, error) {
	done := h.begin(ctx, false)
	info, err := h.o.PutObject(ctx, p)
	done(err)
	return info, err
}

// DeleteObject passes the call through.
func (h *Health) DeleteObject(ctx context.Context, bucket, key string) error {
	done := h.begin(ctx, true)
	err := h.o.DeleteObject(ctx, bucket, key)
	done(err)
	return err
}

// CreateMultipartUpload passes the call through.
func (h *Health) CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	done := h.begin(ctx, true)
	id, err := h.o.CreateMultipartUpload(ctx, bucket, key, contentType, meta)
	done(err)
	return id, err
}

// UploadPart passes the call through (not watched for stalls).
func (h *Health) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error) {
	done := h.begin(ctx, false)
	etag, err := h.o.UploadPart(ctx, bucket, key, uploadID, partNumber, body, size)
	done(err)
	return etag, err
}

// CompleteMultipartUpload passes the call through (not watched for stalls:
// S3 may take minutes to assemble a large object).
func (h *Health) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectInfo, error) {
	done := h.begin(ctx, false)
	info, err := h.o.CompleteMultipartUpload(ctx, bucket, key, uploadID, parts)
	done(err)
	return info, err
}

// AbortMultipartUpload passes the call through.
func (h *Health) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	done := h.begin(ctx, true)
	err := h.o.AbortMultipartUpload(ctx, bucket, key, uploadID)
	done(err)
	return err
}
