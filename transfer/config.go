package transfer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerConfig configures a Server. A zero field takes its documented
// default.
type ServerConfig struct {
	// MaxConcurrent bounds requests served at once; a request beyond it is
	// answered Busy at once rather than queued. Default 32: enough to keep
	// a 2-core node's uplink busy with 1 MiB sub-ranges without letting a
	// burst of readers pin hundreds of 4 MiB chunks in memory.
	MaxConcurrent int
	// UploadBytesPerSec caps the bytes per second sent by all serves
	// together (token bucket). Default 0: unlimited.
	UploadBytesPerSec int64
	// IdleTimeout is the per-stream read/write idle deadline: a stream on
	// which no request byte arrives, or no answer byte can be written, for
	// this long is reset. Default 10s.
	IdleTimeout time.Duration
	// HandlerTimeout bounds one Handler call (a Fetch may go to the origin),
	// and a streamed fetch (MsgFetchStream) as a whole. Default 60s.
	HandlerTimeout time.Duration
	// KeepAliveInterval is how often a "working" frame is sent while a
	// Handler call runs, or a keep-alive frame while a streamed chunk waits
	// for more bytes, so the asker can tell a busy server from a hung
	// one. It must stay well below the clients' StallTimeout. Default
	// 500ms: a quarter of the default StallTimeout, so one lost or late
	// frame never trips it, at 11 bytes per frame.
	KeepAliveInterval time.Duration
}

// Defaults for ServerConfig.
const (
	DefaultServerMaxConcurrent  = 32
	DefaultServerIdleTimeout    = 10 * time.Second
	DefaultServerHandlerTimeout = 60 * time.Second
	DefaultKeepAliveInterval    = 500 * time.Millisecond
)

// Validate reports a configuration that cannot work.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("transfer: server MaxConcurrent %d < 0", c.MaxConcurrent))
	}
	if c.UploadBytesPerSec < 0 {
		errs = append(errs, fmt.Errorf("transfer: server UploadBytesPerSec %d < 0", c.UploadBytesPerSec))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("transfer: server IdleTimeout %s < 0", c.IdleTimeout))
	}
	if c.HandlerTimeout < 0 {
		errs = append(errs, fmt.Errorf("transfer: server HandlerTimeout %s < 0", c.HandlerTimeout))
	}
	if c.KeepAliveInterval < 0 {
		errs = append(errs, fmt.Errorf("transfer: server KeepAliveInterval %s < 0", c.KeepAliveInterval))
	}
	return errors.Join(errs...)
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultServerMaxConcurrent
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultServerIdleTimeout
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultServerHandlerTimeout
	}
	if c.KeepAliveInterval == 0 {
		c.KeepAliveInterval = DefaultKeepAliveInterval
	}
	return c
}

// ClientConfig configures a Client. A zero field takes its documented
// default.
type ClientConfig struct {
	// SubRangeSize is the unit a chunk is split into when several providers
	// serve it at once. Default 1 MiB: a 4 MiB chunk spreads over up to 4
	// providers, and a failed provider costs at most this much rework.
	SubRangeSize int64
	// MaxParallel (K) is how many providers serve one chunk at once.
	// Default 3.
	MaxParallel int
	// StallTimeout drops a provider that delivers no byte for this long
	// (a progress timeout, never a total one). Default 2s.
	StallTimeout time.Duration
	// DialTimeout bounds connecting to a provider. Default 5s.
	DialTimeout time.Duration
	// FetchTimeout caps the whole wait for the answer header of a Fetch or
	// Meta, during which the home node may be reading from the origin.
	// Within it the home must still show progress: a keep-alive frame (see
	// ServerConfig.KeepAliveInterval) or the answer at least every
	// StallTimeout, so a hung home costs StallTimeout, not FetchTimeout.
	// Default 60s.
	FetchTimeout time.Duration
	// PenaltyDuration keeps a provider that failed or stalled out of
	// selection for this long. Default 30s.
	PenaltyDuration time.Duration
	// CorruptPenalty keeps a provider that sent bytes that do not match
	// their CID out of selection for this long. Default 10m.
	CorruptPenalty time.Duration
	// MaxBlockSize rejects blocks announced larger than this. Default 64 MiB.
	MaxBlockSize int64
	// DownloadBytesPerSec caps the bytes per second received by this client
	// (token bucket shared by all fetches). Default 0: unlimited.
	DownloadBytesPerSec int64
	// MaxConcurrent bounds concurrent GetBlock/Fetch/Meta calls; further
	// calls wait (respecting their context). Default 16.
	MaxConcurrent int
	// PriorThroughput (bytes/s) is the optimistic estimate for a provider
	// never measured, so new providers get tried. Default 1 GB/s.
	PriorThroughput int64
}

// Defaults for ClientConfig.
const (
	DefaultSubRangeSize    = 1 << 20
	DefaultMaxParallel     = 3
	DefaultStallTimeout    = 2 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	DefaultFetchTimeout    = 60 * time.Second
	DefaultPenaltyDuration = 30 * time.Second
	DefaultCorruptPenalty  = 10 * time.Minute
	DefaultMaxBlockSize    = 64 << 20
	DefaultClientMaxConc   = 16
	DefaultPriorThroughput = 1 << 30
)

// Validate reports a configuration that cannot work.
func (c ClientConfig) Validate() error {
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("transfer: client %s %d < 0", name, v))
		}
	}
	neg("SubRangeSize", c.SubRangeSize)
	neg("MaxParallel", int64(c.MaxParallel))
	neg("StallTimeout", int64(c.StallTimeout))
	neg("DialTimeout", int64(c.DialTimeout))
	neg("FetchTimeout", int64(c.FetchTimeout))
	neg("PenaltyDuration", int64(c.PenaltyDuration))
	neg("CorruptPenalty", int64(c.CorruptPenalty))
	neg("MaxBlockSize", c.MaxBlockSize)
	neg("DownloadBytesPerSec", c.DownloadBytesPerSec)
	neg("MaxConcurrent", int64(c.MaxConcurrent))
	neg("PriorThroughput", c.PriorThroughput)
	if c.MaxBlockSize > maxOffset {
		errs = append(errs, fmt.Errorf("transfer: client MaxBlockSize %d exceeds %d", c.MaxBlockSize, int64(maxOffset)))
	}
	return errors.Join(errs...)
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.SubRangeSize == 0 {
		c.SubRangeSize = DefaultSubRangeSize
	}
	if c.MaxParallel == 0 {
		c.MaxParallel = DefaultMaxParallel
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.PenaltyDuration == 0 {
		c.PenaltyDuration = DefaultPenaltyDuration
	}
	if c.CorruptPenalty == 0 {
		c.CorruptPenalty = DefaultCorruptPenalty
	}
	if c.MaxBlockSize == 0 {
		c.MaxBlockSize = DefaultMaxBlockSize
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultClientMaxConc
	}
	if c.PriorThroughput == 0 {
		c.PriorThroughput = DefaultPriorThroughput
	}
	return c
}

// Option injects a collaborator into a Server or Client.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	reg     prometheus.Registerer
	traffic *Traffic
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer sets where metrics are registered (default: a private
// registry, so nothing is exported).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithTraffic sets where per-peer byte counts go (default: a Traffic of
// its own). Give a Client and a Server the same one to see both directions
// in Client.Peer.
func WithTraffic(t *Traffic) Option { return func(o *options) { o.traffic = t } }

func buildOptions(component string, opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	o.logger = o.logger.With("component", component)
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	if o.traffic == nil {
		o.traffic = NewTraffic()
	}
	return o
}
