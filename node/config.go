package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/node/originfetch"
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
	// DefaultReadAhead: chunks fetched in parallel ahead of a reader
	// alone (4 x 4 MiB = 16 MiB per stream): enough to keep one origin
	// connection's successor requests queued while the reader drains the
	// current chunk.
	DefaultReadAhead = 4
	// DefaultClusterReadAhead is the default ReadAhead with a cluster:
	// the chunks of one read fan out over many home nodes, so a lone cold
	// reader gains from more chunks in flight, and when many nodes read
	// one cold object at once every chunk of a window completes at about
	// the same time (links share bandwidth fairly), so a window of two home
	// rounds keeps a node's downlink busy while the next one lands (S4,
	// N=8: 16 gave 14.8-15.3 s, 8 gave 17.1-17.5 s, 32 gave 16.5 s;
	// 16 x 4 MiB = 64 MiB per stream).
	DefaultClusterReadAhead = 16
	// DefaultPinConcurrency: objects fetched at once by Pin/Prefetch.
	DefaultPinConcurrency = 4
	// DefaultRepairRate: bytes per second a node copies to restore replica
	// targets (a quarter of what one peer stream moves here, about 320 MB/s
	// with the PSK: repair goes on beside the readers, not instead of them).
	DefaultRepairRate = 64 << 20
	// DefaultOriginWait: how long a client waits for an answer that needs
	// the origin (a HEAD, the first chunk of a GET) before it gets a 503
	// with Retry-After, while the node goes on trying for the others. S3
	// clients retry a 503 with backoff; a client left without an answer for
	// minutes (30 s header timeout x 5 retries, before) retries nothing.
	// 15 s is above any healthy origin's first byte (a cold 4 MiB chunk
	// needs only 2.2 Mbit/s to arrive in that time) and below the idle
	// timeouts of common clients and load balancers (60 s).
	DefaultOriginWait = 15 * time.Second
	// originRetryAfter is the Retry-After a client waiting on the origin is
	// given: the origin client's own retries of one call take a few
	// seconds.
	originRetryAfter = 5 * time.Second

	// DefaultOriginStreams: origin fetches of one version in flight
	// cluster-wide (each node runs its share, lowest chunk index first). One
	// origin link carries them all. With cut-through a home passes bytes on
	// as they arrive, and TCP's unequal shares of one congested link
	// matter: with one stream per home the home with the slowest stream
	// held every reader back, with two the shares even out (S4, N=8, 5 runs
	// each: 8 streams 1.29x S/B median [1.19..1.55], 16 streams 1.20x
	// [1.18..1.45]).
	DefaultOriginStreams = 16
	// DefaultHomeCandidates: home nodes tried in order before the node
	// reads the origin itself. Three keeps the origin at one read per chunk
	// through one or two dead or failing homes (Gantry's designated puller
	// bounds the origin at three pulls per digest the same way).
	DefaultHomeCandidates = 3
	// DefaultHomeBusyWait: how long a node keeps asking a home that
	// answers Busy (its transfer server is at its MaxConcurrent, 32)
	// before it goes to the next candidate. A busy home is alive and
	// reading the chunk anyway; the next candidate would read it from the
	// origin a second time. With 64 nodes reading one cold object on
	// mocknet, moving on at once took origin chunk GETs to 2.9x the
	// object, at 128 nodes 17x (docs/SCALE.md, K1). Ten seconds lets a
	// home serve its queue of 32 x 4 MiB on any link of a few hundred
	// Mbit/s; a home that stays busy longer is treated as failing.
	DefaultHomeBusyWait = 10 * time.Second
	// DefaultHomeReadAhead: own chunks a home fetches ahead of one it
	// serves, for a version read in order, so the origin link stays busy
	// while the readers' windows wait on the fan-out of the chunks they
	// hold (S4: without it the origin link idled between windows).
	DefaultHomeReadAhead = 2
	// DefaultManifestWait: how long a chunk fetch that can go to a home
	// node waits for its version's manifest lookup. On an idle LAN a
	// lookup takes milliseconds; under a cold swarm read a miss took
	// 10-700 ms (S4), time every chunk fetched meanwhile would stall.
	DefaultManifestWait = 100 * time.Millisecond
	// DefaultLookupTimeout bounds one DHT lookup (providers or a manifest
	// record). On loopback or a LAN a lookup takes milliseconds, but one
	// that queries a hung peer waits for kad-dht's fixed 10 s per-RPC
	// timeout; in a private LAN cluster an answer not there after a few
	// seconds will not come, and the lookup returns what it found by then.
	DefaultLookupTimeout = 3 * time.Second
	// DefaultProviders: providers asked for per chunk. transfer pulls from
	// the K best (default 3) and needs spares for failover; more only
	// lengthens the DHT lookup.
	DefaultProviders = 8

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
	// PinConcurrency: objects fetched at once by Pin and Prefetch (default 4).
	PinConcurrency int
	// Jobs tunes warm-up jobs (package jobs: concurrency, retries).
	Jobs jobs.Config
	// RepairRate bounds the bytes per second this node copies to restore
	// replica targets after a holder left (default 64 MiB/s: a repair
	// must not starve the readers; negative: no bound).
	RepairRate int64
	// OriginWait bounds how long a client waits for an answer that needs
	// the origin, a HEAD or the first chunk of a GET (default 15 s;
	// negative: no bound); then it gets ErrUnavailable with a Retry-After
	// hint while the fetch goes on for the others.
	OriginWait time.Duration
	// SpotCheckRate: the fraction of chunks from peers, of versions not
	// verified against the origin yet, that their auditor re-reads from
	// the origin (default 0.01; negative: none). See verify.go.
	SpotCheckRate float64
	// Fetch tunes how chunks the node does not hold are fetched.
	Fetch FetchPolicy
}

// FetchPolicy tunes how a node fetches chunks it does not hold. Zero
// values take the defaults above (each says why it has its value;
// docs/FETCH.md has the measurements).
type FetchPolicy struct {
	// Origin: node-wide origin fetch slots (default 16), the order gate's
	// settle time (10 ms), the stall time after which a silent request is
	// hedged or a silent response resumed (1 s), and resumes per chunk (3).
	Origin originfetch.Policy
	// OriginStreams: origin fetches of one version in flight cluster-wide;
	// each of N nodes runs ceil(OriginStreams/N) (default 16).
	OriginStreams int
	// HomeCandidates: home nodes tried in order before the node reads the
	// origin itself (default 3).
	HomeCandidates int
	// HomeBusyWait: how long a home that answers Busy is asked again
	// (backing off from 10 ms to 500 ms, with jitter) before the next
	// candidate is tried (default 10 s; negative: never asked again).
	HomeBusyWait time.Duration
	// HomeReadAhead: own chunks a home fetches ahead of one it serves from
	// a version read in order (default 2; negative: off).
	HomeReadAhead int
	// ManifestWait: how long a fetch that can go to a home waits for its
	// version's manifest lookup (default 100 ms).
	ManifestWait time.Duration
	// LookupTimeout bounds one DHT lookup (default 3 s).
	LookupTimeout time.Duration
	// Providers: providers asked for per chunk (default 8).
	Providers int
}

func (f FetchPolicy) withDefaults() FetchPolicy {
	f.Origin = f.Origin.WithDefaults()
	if f.OriginStreams == 0 {
		f.OriginStreams = DefaultOriginStreams
	}
	if f.HomeCandidates == 0 {
		f.HomeCandidates = DefaultHomeCandidates
	}
	if f.HomeReadAhead == 0 {
		f.HomeReadAhead = DefaultHomeReadAhead
	}
	if f.HomeBusyWait == 0 {
		f.HomeBusyWait = DefaultHomeBusyWait
	}
	if f.ManifestWait == 0 {
		f.ManifestWait = DefaultManifestWait
	}
	if f.LookupTimeout == 0 {
		f.LookupTimeout = DefaultLookupTimeout
	}
	if f.Providers == 0 {
		f.Providers = DefaultProviders
	}
	return f
}

func (f FetchPolicy) validate() []error {
	f = f.withDefaults()
	var errs []error
	if err := f.Origin.Validate(); err != nil {
		errs = append(errs, err)
	}
	if f.OriginStreams < 1 || f.OriginStreams > 4096 {
		errs = append(errs, fmt.Errorf("origin streams per version %d outside [1, 4096]", f.OriginStreams))
	}
	if f.HomeCandidates < 1 || f.HomeCandidates > 16 {
		errs = append(errs, fmt.Errorf("home candidates %d outside [1, 16]", f.HomeCandidates))
	}
	if f.HomeBusyWait > 10*time.Minute {
		errs = append(errs, fmt.Errorf("home busy wait %v above 10m", f.HomeBusyWait))
	}
	if f.HomeReadAhead > 64 {
		errs = append(errs, fmt.Errorf("home read-ahead %d above 64", f.HomeReadAhead))
	}
	if f.ManifestWait < 0 || f.ManifestWait > time.Minute {
		errs = append(errs, fmt.Errorf("manifest wait %v outside [0, 1m]", f.ManifestWait))
	}
	if f.LookupTimeout < 10*time.Millisecond || f.LookupTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("lookup timeout %v outside [10ms, 5m]", f.LookupTimeout))
	}
	if f.Providers < 1 || f.Providers > 100 {
		errs = append(errs, fmt.Errorf("providers per chunk %d outside [1, 100]", f.Providers))
	}
	return errs
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
	if c.PinConcurrency == 0 {
		c.PinConcurrency = DefaultPinConcurrency
	}
	if c.RepairRate == 0 {
		c.RepairRate = DefaultRepairRate
	}
	if c.OriginWait == 0 {
		c.OriginWait = DefaultOriginWait
	}
	if c.SpotCheckRate == 0 {
		c.SpotCheckRate = DefaultSpotCheckRate
	}
	c.Fetch = c.Fetch.withDefaults()
	return c
}

// Validate checks the configuration after applying defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := c.Jobs.Validate(); err != nil {
		errs = append(errs, err)
	}
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
	if c.PinConcurrency < 1 {
		errs = append(errs, fmt.Errorf("pin concurrency %d < 1", c.PinConcurrency))
	}
	if c.SpotCheckRate > 1 {
		errs = append(errs, fmt.Errorf("spot check rate %v above 1", c.SpotCheckRate))
	}
	errs = append(errs, c.Fetch.validate()...)
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
	cluster *Cluster
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the node's metrics with r (default: none).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithClock sets the clock used for TTLs (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }
