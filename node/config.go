package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/content"
)

// Defaults for Config's zero values.
const (
	// DefaultChunkSize is 4 MiB: the piece size Kraken and Dragonfly settled
	// on; large enough that per-chunk overheads (a CID, an index record, a
	// ranged GET) are negligible, small enough that a reader's read-ahead
	// window stays a few tens of MiB.
	DefaultChunkSize = 4 << 20
	// DefaultMetadataTTL: how long cached metadata is trusted before the
	// origin is asked again (HEAD). 30 s bounds staleness while keeping
	// HEADs per object per node to two a minute.
	DefaultMetadataTTL = 30 * time.Second
	// DefaultNegativeTTL: how long a NoSuchKey answer is remembered.
	DefaultNegativeTTL = 2 * time.Second
	// DefaultListTTL: how long listings, bucket lists and bucket locations
	// are cached.
	DefaultListTTL = 2 * time.Second
	// DefaultListCacheEntries bounds the listing cache.
	DefaultListCacheEntries = 1024
	// DefaultReadAhead: chunks fetched in parallel ahead of a reader (4 x 4
	// MiB = 16 MiB per stream).
	DefaultReadAhead = 4
	// DefaultMaxOriginFetches bounds concurrent origin chunk fetches node
	// wide (each holds a chunk in memory).
	DefaultMaxOriginFetches = 16
	// DefaultPinConcurrency: objects fetched at once by Pin/Prefetch.
	DefaultPinConcurrency = 4

	minChunkSize = 64 << 10
	maxChunkSize = maxManifestChunkSize
)

// Config configures a Node. Zero values take the documented defaults.
type Config struct {
	// ChunkSize is the size of every chunk but a version's last (default
	// 4 MiB, 64 KiB .. 1 GiB). Changing it makes cached versions be
	// re-cut (their chunk indexes are keyed by chunk size).
	ChunkSize int64
	// Hash names chunk CIDs' hash: "sha2-256" (default) or "blake3".
	Hash content.Hash
	// MetadataTTL: cached metadata is served without asking the origin for
	// this long (default 30 s).
	MetadataTTL time.Duration
	// NegativeTTL: NoSuchKey is remembered this long (default 2 s; negative
	// disables negative caching).
	NegativeTTL time.Duration
	// Immutable lists "bucket/prefix" patterns whose objects never change:
	// their cached metadata is never revalidated. "bucket/" or "bucket"
	// matches the whole bucket.
	Immutable []string
	// ListTTL: listings, bucket lists and bucket locations are cached this
	// long (default 2 s; negative disables).
	ListTTL time.Duration
	// ListCacheEntries bounds the listing cache (default 1024).
	ListCacheEntries int
	// ReadAhead: chunks fetched in parallel ahead of a reader (default 4;
	// 16 with a cluster, whose home nodes serve a cold read's chunks in
	// parallel).
	ReadAhead int
	// MaxOriginFetches bounds concurrent origin chunk fetches (default 16).
	MaxOriginFetches int
	// PinConcurrency: objects fetched at once by Pin and Prefetch (default 4).
	PinConcurrency int
}

func (c Config) withDefaults() Config {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Hash == "" {
		c.Hash = content.SHA256
	}
	if c.MetadataTTL == 0 {
		c.MetadataTTL = DefaultMetadataTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.ListTTL == 0 {
		c.ListTTL = DefaultListTTL
	}
	if c.ListCacheEntries == 0 {
		c.ListCacheEntries = DefaultListCacheEntries
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = DefaultReadAhead
	}
	if c.MaxOriginFetches == 0 {
		c.MaxOriginFetches = DefaultMaxOriginFetches
	}
	if c.PinConcurrency == 0 {
		c.PinConcurrency = DefaultPinConcurrency
	}
	return c
}

// Validate checks the configuration after applying defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.ChunkSize < minChunkSize || c.ChunkSize > maxChunkSize {
		errs = append(errs, fmt.Errorf("chunk size %d outside [%d, %d]", c.ChunkSize, minChunkSize, maxChunkSize))
	}
	if _, err := content.ParseHash(string(c.Hash)); err != nil {
		errs = append(errs, err)
	}
	if c.MetadataTTL < 0 {
		errs = append(errs, fmt.Errorf("metadata TTL %v is negative", c.MetadataTTL))
	}
	for _, p := range c.Immutable {
		if b, _ := splitPattern(p); b == "" {
			errs = append(errs, fmt.Errorf("immutable pattern %q: want bucket/prefix", p))
		}
	}
	if c.ListCacheEntries < 0 {
		errs = append(errs, fmt.Errorf("list cache entries %d is negative", c.ListCacheEntries))
	}
	if c.ReadAhead < 1 || c.ReadAhead > 256 {
		errs = append(errs, fmt.Errorf("read-ahead %d outside [1, 256]", c.ReadAhead))
	}
	if c.MaxOriginFetches < 1 {
		errs = append(errs, fmt.Errorf("max origin fetches %d < 1", c.MaxOriginFetches))
	}
	if c.PinConcurrency < 1 {
		errs = append(errs, fmt.Errorf("pin concurrency %d < 1", c.PinConcurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: config: %w", err)
	}
	return nil
}

func splitPattern(p string) (bucket, prefix string) {
	bucket, prefix, _ = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return bucket, prefix
}

// Option injects a collaborator.
type Option func(*options)

type options struct {
	log     *slog.Logger
	reg     prometheus.Registerer
	now     func() time.Time
	peers   ChunkSource
	cluster *Cluster
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the node's metrics with r (default: none).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithClock sets the clock used for TTLs (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithPeers adds a chunk source consulted after the local store and before
// the origin (the P2P layer). It is only asked for chunks whose CID is known.
func WithPeers(s ChunkSource) Option { return func(o *options) { o.peers = s } }
