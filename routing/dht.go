package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/provider"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
)

// ProtocolPrefix keeps Shoal's DHT apart from the public IPFS DHT
// ("/shoal/kad/1.0.0"), so the two can never merge.
const ProtocolPrefix = "/shoal"

// Defaults for Config.
const (
	// DefaultBucketSize (k): clusters are small next to the public DHT; k=20
	// replicates each provider record to 20 peers, which in a cluster of a
	// few dozen nodes covers a large part of it and makes lookups one hop.
	DefaultBucketSize = 20
	// DefaultConcurrency (alpha): loopback/LAN round trips are short, so a
	// few parallel requests finish a lookup faster than the public 10.
	DefaultConcurrency = 5
	// DefaultResiliency (beta): peers that must answer before a lookup ends.
	DefaultResiliency = 2
	// DefaultProvideValidity: provider records live 45 minutes (public
	// DHT: 48 h; Spegel 19 min; Gantry 6 h), so a node that evicted a chunk
	// or died stops being advertised within the hour.
	DefaultProvideValidity = 45 * time.Minute
	// DefaultReprovideInterval: each keyspace region is re-announced every
	// 15 minutes (as Spegel does), three times per validity period.
	DefaultReprovideInterval = 15 * time.Minute
	// DefaultMaxReprovideDelay bounds how late a region's reprovide may run;
	// interval + delay stays below the validity.
	DefaultMaxReprovideDelay = 5 * time.Minute
	// DefaultRecordMaxAge: manifest records are kept 24 h; the origin's ETag
	// is part of the key, so a record never goes stale, only unused.
	DefaultRecordMaxAge = 24 * time.Hour
	// DefaultProvideWorkers: concurrent region provides (sweeping provider
	// workers); two are reserved for reprovides and one for new chunks.
	DefaultProvideWorkers = 4
	// DefaultFindLimit is FindProviders' limit when the caller passes <= 0.
	DefaultFindLimit = 20
)

// Lookup bounds. kad-dht waits up to 10 s (fixed) for each peer's answer,
// so a lookup that queries a hung or partitioned peer, which keeps its
// connection open, lasts that long unless it is cut short.
const (
	// findSettle: once FindProviders has a provider, it waits at most this
	// much longer for more before returning what it has. A lookup in a LAN
	// cluster finishes in milliseconds; one still running after the settle
	// is waiting on a peer that does not answer.
	findSettle = 500 * time.Millisecond
	// manifestQuorum: GetManifestRecords stops after quorum+1 valid records
	// (kad-dht counts the local copy, which most nodes hold as one of the k
	// closest), instead of waiting for every queried peer. Every honest copy
	// of one version's record names the same manifest (the key includes the
	// chunk size and hash); three copies from different peers give a
	// conflicting claim held by some of the k closest a chance to be seen.
	manifestQuorum = 2
)

// Sentinel errors of the router.
var (
	// ErrNotFound: no manifest record for the object version.
	ErrNotFound = errors.New("routing: not found")
	// ErrClosed: the router was closed.
	ErrClosed = errors.New("routing: closed")
)

// Config configures the DHT and the provider. Zero fields take defaults.
type Config struct {
	BucketSize  int // default DefaultBucketSize
	Concurrency int // default DefaultConcurrency
	Resiliency  int // default DefaultResiliency
	// ProvideValidity is how long other nodes keep our provider records.
	ProvideValidity time.Duration // default DefaultProvideValidity
	// ReprovideInterval is how often every provided CID is re-announced.
	ReprovideInterval time.Duration // default DefaultReprovideInterval
	MaxReprovideDelay time.Duration // default DefaultMaxReprovideDelay
	// RecordMaxAge is how long manifest records are kept.
	RecordMaxAge   time.Duration // default DefaultRecordMaxAge
	ProvideWorkers int           // default DefaultProvideWorkers (min 3)
}

func (c *Config) setDefaults() {
	if c.BucketSize == 0 {
		c.BucketSize = DefaultBucketSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Resiliency == 0 {
		c.Resiliency = DefaultResiliency
	}
	if c.ProvideValidity == 0 {
		c.ProvideValidity = DefaultProvideValidity
	}
	if c.ReprovideInterval == 0 {
		c.ReprovideInterval = DefaultReprovideInterval
	}
	if c.MaxReprovideDelay == 0 {
		c.MaxReprovideDelay = DefaultMaxReprovideDelay
	}
	if c.RecordMaxAge == 0 {
		c.RecordMaxAge = DefaultRecordMaxAge
	}
	if c.ProvideWorkers == 0 {
		c.ProvideWorkers = DefaultProvideWorkers
	}
}

// Validate reports the first problem in c (after defaults are applied).
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.BucketSize < 1 || c.Concurrency < 1 || c.Resiliency < 1:
		return fmt.Errorf("%w: bucket size, concurrency and resiliency must be positive", ErrInvalidConfig)
	case c.ProvideValidity < 0 || c.ReprovideInterval < 0 || c.MaxReprovideDelay < 0 || c.RecordMaxAge < 0:
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	case c.ReprovideInterval+c.MaxReprovideDelay > c.ProvideValidity:
		return fmt.Errorf("%w: reprovide interval %v + max delay %v exceeds provide validity %v (records would lapse)",
			ErrInvalidConfig, c.ReprovideInterval, c.MaxReprovideDelay, c.ProvideValidity)
	case c.ProvideWorkers < 3:
		return fmt.Errorf("%w: provide workers %d < 3 (2 reprovide + 1 provide are reserved)", ErrInvalidConfig, c.ProvideWorkers)
	}
	return nil
}

// Router is Shoal's view of the private DHT: announce and find chunk
// providers, publish and read manifest records.
type Router struct {
	host      host.Host
	dht       *dht.IpfsDHT
	prov      *provider.SweepingProvider
	validator *ManifestValidator
	log       *slog.Logger
	metrics   *routerMetrics // nil: no metrics
}

// Option injects collaborators into NewDHT.
type Option func(*routerOptions)

type routerOptions struct {
	log *slog.Logger
	reg prometheus.Registerer
}

// WithLogger sets the router's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *routerOptions) { o.log = l } }

// WithRegisterer registers the router's metrics (lookup latency, the
// provider's announcements) with reg. Without it there are none.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *routerOptions) { o.reg = reg }
}

// NewDHT starts a private kad-dht server on h (protocol prefix "/shoal", no
// public bootstrap peers, "shoal-obj" records only) and a sweeping provider
// that keeps provided CIDs announced. Peers come from the host's
// connections (see package bootstrap). The caller closes the Router before
// the host.
func NewDHT(ctx context.Context, h host.Host, cfg Config, opts ...Option) (*Router, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := routerOptions{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	validator := NewManifestValidator(cfg.RecordMaxAge)
	d, err := dht.New(h,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.BootstrapPeers(), // never the public IPFS bootstrappers
		// Only our namespace: the default /pk and /ipns validators are not
		// installed when a validator is set.
		dht.Validator(record.NamespacedValidator{ManifestNamespace: validator}),
		dht.BucketSize(cfg.BucketSize),
		dht.Concurrency(cfg.Concurrency),
		dht.Resiliency(cfg.Resiliency),
		dht.MaxRecordAge(cfg.RecordMaxAge),
		dht.ProviderManagerOpts(
			records.ProvideValidity(cfg.ProvideValidity),
			records.ProviderAddrTTL(cfg.ProvideValidity),
			records.CleanupInterval(cfg.ProvideValidity/2),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("routing: new dht: %w", err)
	}
	pstore := d.ProviderStore()
	self := h.ID()
	prov, err := provider.New(
		provider.WithHost(h),
		provider.WithRouter(d),
		provider.WithMessageSender(d.MessageSender()),
		provider.WithSelfAddrs(func() []ma.Multiaddr { return h.Addrs() }),
		provider.WithAddLocalRecord(func(ctx context.Context, k mh.Multihash) error {
			return pstore.AddProvider(ctx, k, peer.AddrInfo{ID: self})
		}),
		provider.WithReplicationFactor(cfg.BucketSize),
		provider.WithReprovideInterval(cfg.ReprovideInterval),
		provider.WithMaxReprovideDelay(cfg.MaxReprovideDelay),
		provider.WithMaxWorkers(cfg.ProvideWorkers),
		provider.WithDatastore(dssync.MutexWrap(ds.NewMapDatastore())),
		// A fresh in-memory keystore per process: the node re-provides what
		// its block store holds at startup.
		provider.WithResumeCycle(false),
		provider.WithDhtType("shoal"),
	)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("routing: new provider: %w", err)
	}
	m, err := newRouterMetrics(o.reg, prov)
	if err != nil {
		prov.Close()
		d.Close()
		return nil, err
	}
	return &Router{host: h, dht: d, prov: prov, validator: validator, log: o.log.With("component", "routing"), metrics: m}, nil
}

// Host returns the libp2p host the router runs on.
func (r *Router) Host() host.Host { return r.host }

// Bootstrap refreshes the routing table from the host's current
// connections and waits for the refresh (or ctx) to finish.
func (r *Router) Bootstrap(ctx context.Context) error {
	select {
	case err := <-r.dht.RefreshRoutingTable():
		if err != nil {
			return fmt.Errorf("routing: bootstrap: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("routing: bootstrap: %w", ctx.Err())
	}
}

// RoutingTableSize is the number of peers in the DHT routing table.
func (r *Router) RoutingTableSize() int { return r.dht.RoutingTable().Size() }

// Provide starts announcing that this node holds c and keeps re-announcing
// it every ReprovideInterval until StopProviding. It returns at once; the
// announcement is sent by the sweeping provider in the background, batched
// with other CIDs of the same keyspace region. CIDs provided while the node
// has no peers are kept and announced once it is connected.
func (r *Router) Provide(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("routing: provide: undefined cid")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.prov.StartProviding(false, c.Hash()); err != nil {
		return fmt.Errorf("routing: provide %s: %w", c, translateProvErr(err))
	}
	return nil
}

// StopProviding removes c from the reprovide set (for example after
// eviction). Records already published expire after ProvideValidity;
// the protocol has no withdrawal.
func (r *Router) StopProviding(ctx context.Context, c cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.prov.StopProviding(c.Hash()); err != nil {
		return fmt.Errorf("routing: stop providing %s: %w", c, translateProvErr(err))
	}
	return nil
}

func translateProvErr(err error) error {
	if errors.Is(err, provider.ErrClosed) {
		return ErrClosed
	}
	return err
}

// FindProviders returns up to limit peers (other than this node) that
// announced c; limit <= 0 means DefaultFindLimit. It returns as soon as it
// has limit providers, the lookup ends, or findSettle after the first
// provider; when ctx ends it returns the providers found so far (an error
// only if there are none). No providers is an empty slice and no error.
func (r *Router) FindProviders(ctx context.Context, c cid.Cid, limit int) (out []peer.AddrInfo, err error) {
	if !c.Defined() {
		return nil, fmt.Errorf("routing: find providers: undefined cid")
	}
	defer func(start time.Time) { r.metrics.observe(opFindProviders, start, len(out) > 0, err) }(time.Now())
	if limit <= 0 {
		limit = DefaultFindLimit
	}
	r.awaitTable(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var settle <-chan time.Time
	// Ask for one more: this node may be among the providers.
	found := r.dht.FindProvidersAsync(ctx, c, limit+1)
collect:
	for {
		select {
		case ai, ok := <-found:
			if !ok {
				break collect
			}
			if ai.ID == r.host.ID() {
				continue
			}
			out = append(out, ai)
			if len(out) == limit {
				break collect
			}
			if settle == nil {
				t := time.NewTimer(findSettle)
				defer t.Stop()
				settle = t.C
			}
		case <-settle:
			break collect
		}
	}
	if len(out) == 0 {
		if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("routing: find providers: %w", err)
		}
	}
	return out, nil
}

// PutManifestRecord signs rec with this host's key (it becomes the
// publisher) and publishes it under its DHT key.
func (r *Router) PutManifestRecord(ctx context.Context, rec ManifestRecord) (err error) {
	key := r.host.Peerstore().PrivKey(r.host.ID())
	if key == nil {
		return fmt.Errorf("routing: put manifest record: no private key for %s", r.host.ID())
	}
	if err := rec.Sign(key); err != nil {
		return err
	}
	val, err := rec.MarshalBinary()
	if err != nil {
		return err
	}
	start := time.Now()
	err = r.dht.PutValue(ctx, rec.DHTKey(), val)
	r.metrics.observe(opPutManifest, start, err == nil, err)
	if err != nil {
		return fmt.Errorf("routing: put manifest record: %w", err)
	}
	return nil
}

// GetManifestRecords returns the manifest records of an object version cut
// with chunkSize and hash: first the one the lookup settled on (the
// earliest valid publication among the first manifestQuorum+1 found), then
// every other claim seen for the version recently (a conflict: all but at
// most one are false; the caller settles it against the origin). It
// returns ErrNotFound if there is none. When ctx ends after a record was
// found it returns what it has.
func (r *Router) GetManifestRecords(ctx context.Context, bucket, key, etag string, chunkSize int64, hash string) (out []ManifestRecord, err error) {
	defer func(start time.Time) { r.metrics.observe(opGetManifest, start, len(out) > 0, err) }(time.Now())
	r.awaitTable(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dkey := ManifestRecordKey(bucket, key, etag, chunkSize, hash)
	vals, err := r.dht.SearchValue(ctx, dkey, dht.Quorum(manifestQuorum))
	if err != nil {
		return nil, fmt.Errorf("routing: get manifest record: %w", err)
	}
	var val []byte
	for v := range vals {
		val = v // each value is better than the last
	}
	if val == nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("routing: get manifest record: %w", err)
		}
		return nil, fmt.Errorf("routing: manifest %s/%s: %w", bucket, key, ErrNotFound)
	}
	rec, err := DecodeManifestRecord(val)
	if err != nil {
		return nil, err
	}
	if rec.Bucket != bucket || rec.Key != key || rec.ETag != etag {
		return nil, fmt.Errorf("%w: record for another object", ErrBadRecord)
	}
	out = []ManifestRecord{rec}
	for _, c := range r.validator.Conflicts(dkey) {
		if !c.SameClaim(rec) {
			out = append(out, c)
		}
	}
	return out, nil
}

// tableWait bounds how long a lookup waits for an empty routing table to
// take in the peers the host is connected to.
const tableWait = 2 * time.Second

// awaitTable waits (at most tableWait, within ctx) while the routing table
// is empty but the host has connected peers: a node that has just joined
// is connected before identify has confirmed its peers as DHT servers, and
// a lookup run then fails at once. A node reading as soon as it joined took
// that failure for "no record in the cluster" and read half an object from
// the origin that a peer held (S3). A node with no connections does not
// wait: there is nobody to learn from.
func (r *Router) awaitTable(ctx context.Context) {
	if r.dht.RoutingTable().Size() > 0 || len(r.host.Network().Peers()) == 0 {
		return
	}
	t := time.NewTimer(tableWait)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for r.dht.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-tick.C:
		}
	}
}

// Close stops the provider and the DHT (not the host).
func (r *Router) Close() error {
	return errors.Join(r.prov.Close(), r.dht.Close())
}
