package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/origin"
)

// BlockStore is the chunk storage the node needs (*blockstore.Tiered in
// production; blockstore/storetest checks every method). Get and Borrow
// return read-only bytes verified against their CID (a corrupt block is
// dropped and reported as not found); Put verifies the CID; PutBlock takes
// bytes already proven to match it (a content.Block) without hashing them
// again.
type BlockStore interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	// Borrow is Get for a reader that gives the buffer back with release
	// (never nil) when done: a disk hit then costs no allocation.
	Borrow(ctx context.Context, c cid.Cid) (data []byte, release func(), err error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Put(ctx context.Context, c cid.Cid, data []byte) error
	// Delete removes a block (a chunk of a version proven false).
	Delete(ctx context.Context, c cid.Cid) error
	PutBlock(ctx context.Context, b content.Block) error
	Pin(ctx context.Context, c cid.Cid) error
	Unpin(ctx context.Context, c cid.Cid) error
	// AllKeys calls fn for every block held, until fn returns false.
	AllKeys(ctx context.Context, fn func(cid.Cid) bool) error
	// Removals is the feed of blocks that left the store entirely.
	Removals() *blockstore.Removals
	Stats() blockstore.Stats
	// TierStats splits Stats by tier.
	TierStats() (memory, disk blockstore.Stats)
}

var _ BlockStore = (*blockstore.Tiered)(nil)

// Origin is the system of record (origin.S3 or origin.Dir). Errors wrap
// package origin's sentinels.
type Origin interface {
	HeadObject(ctx context.Context, bucket, key string) (origin.ObjectInfo, error)
	// GetRange reads n bytes at off (n < 0: to the end) of the version with
	// the given ETag; a changed object yields origin.ErrPreconditionFailed.
	GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error)
	ListObjects(ctx context.Context, p origin.ListParams) (origin.ListResult, error)
	ListBuckets(ctx context.Context) ([]origin.Bucket, error)
	HeadBucket(ctx context.Context, bucket string) (region string, err error)
	PutObject(ctx context.Context, p origin.PutParams) (origin.ObjectInfo, error)
	DeleteObject(ctx context.Context, bucket, key string) error
	CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error)
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []origin.CompletedPart) (origin.ObjectInfo, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
}

var _ gateway.Backend = (*Node)(nil)

// ErrClosed: the node was closed.
var ErrClosed = errors.New("node: closed")

// Node is the read path of one Shoal node. It is safe for concurrent use.
type Node struct {
	cfg   Config
	store BlockStore
	org   Origin
	cat   *catalog.Catalog
	cl    *cluster // nil: not in a cluster
	log   *slog.Logger
	now   func() time.Time
	m     *metrics

	// base is the parent of every shared (detached) fetch; Close cancels it.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the flights' goroutines

	origin *originfetch.Fetcher // every origin chunk read
	bg     *tasks               // background work, run by Run
	trust  *trust               // versions from peers not verified yet (verify.go)

	// chunks: one flight per chunk and role (see chunkFlightKey); a fetch
	// publishes the origin read it writes into, for cut-through.
	chunks *flight[chunkData, *originfetch.Arrival]
	heads  *flight[catalog.Object, struct{}]    // key: bucket/key (and role)
	lists  *flight[origin.ListResult, struct{}] // key: list params

	neg   *ttlCache[struct{}]          // bucket/key -> NoSuchKey
	listc *ttlCache[origin.ListResult] // list params -> page
	bktc  *ttlCache[[]origin.Bucket]   // "" -> bucket list
	locc  *ttlCache[string]            // bucket -> region
	immut []pattern                    // Config.Immutable, parsed

	// writeGen counts writes passed through; a metadata or listing answer
	// fetched while it moved is returned but not cached.
	writeGen atomic.Uint64

	pinMu sync.Mutex // serialises Pin/Unpin bookkeeping

	born   time.Time     // when New ran
	jobs   *jobs.Manager // warm-up jobs (jobs.go)
	repair *repairer     // replica targets (replicas.go)
}

type pattern struct{ bucket, prefix string }

// New builds a node over the given store, origin and catalog. The node does
// not own them: the caller closes them after Close. Run does the node's
// background work; Close ends what is left.
func New(cfg Config, store BlockStore, org Origin, cat *catalog.Catalog, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || org == nil || cat == nil {
		return nil, errors.New("node: nil store, origin or catalog")
	}
	o := options{log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.cluster != nil && cfg.ReadAhead == 0 {
		cfg.ReadAhead = DefaultClusterReadAhead
	}
	cfg = cfg.withDefaults()
	log := o.log.With("component", "node")
	fetcher, err := originfetch.New(org, cfg.Fetch.Origin, log)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	m, err := newMetrics(o.reg, fetcher.Counters())
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:    cfg,
		store:  store,
		org:    org,
		cat:    cat,
		log:    log,
		now:    o.now,
		m:      m,
		base:   base,
		cancel: cancel,
		origin: fetcher,
		bg:     newTasks(backgroundQueue),
		trust:  newTrust(o.now),
	}
	if o.cluster != nil {
		cl, err := newCluster(*o.cluster, n.now)
		if err != nil {
			cancel()
			return nil, err
		}
		n.cl = cl
	}
	n.chunks = newFlight[chunkData, *originfetch.Arrival](base, &n.wg)
	n.heads = newFlight[catalog.Object, struct{}](base, &n.wg)
	n.lists = newFlight[origin.ListResult, struct{}](base, &n.wg)
	n.neg = newTTLCache[struct{}](cfg.NegativeTTL, cfg.ListCacheEntries, n.now)
	n.listc = newTTLCache[origin.ListResult](cfg.ListTTL, cfg.ListCacheEntries, n.now)
	n.bktc = newTTLCache[[]origin.Bucket](cfg.ListTTL, 1, n.now)
	n.locc = newTTLCache[string](cfg.ListTTL, cfg.ListCacheEntries, n.now)
	for _, p := range cfg.Immutable {
		b, pfx := splitPattern(p)
		n.immut = append(n.immut, pattern{b, pfx})
	}
	jopts := []jobs.Option{jobs.WithLogger(o.log), jobs.WithClock(o.now)}
	if n.cl != nil {
		jopts = append(jopts, jobs.WithPeers(jobPeers{n}))
	}
	n.jobs, err = jobs.New(cfg.Jobs, n.selfName(), jobExec{n}, cat, jopts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("node: %w", err)
	}
	n.repair = newRepairer(cfg.RepairRate)
	n.born = o.now()
	if err := n.registerLive(o.reg); err != nil {
		cancel()
		return nil, err
	}
	return n, nil
}

// Run does the node's background work until ctx ends, on goroutines it
// owns and waits for: a bounded pool of workers for queued tasks (home
// read-ahead, manifest lookups), the stream of removals from the store
// and, in a cluster, announcements (every stored block first, then each
// as it lands or leaves) and manifest record publication. It returns nil
// when ctx ends; tasks still queued are then dropped.
func (n *Node) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { n.bg.run(ctx, backgroundWorkers) })
	wg.Go(func() { n.removalsLoop(ctx) })
	wg.Go(func() { _ = n.jobs.Run(ctx) })
	if n.cl != nil {
		wg.Go(func() { n.publishLoop(ctx) })
		wg.Go(func() { n.announceLoop(ctx) })
		wg.Go(func() { n.repairLoop(ctx) })
	}
	wg.Wait()
	return nil
}

// Close cancels shared fetches and waits for them. Readers still open get
// errors. Call it after Run has returned; it does not close the store,
// origin or catalog.
func (n *Node) Close() error {
	n.cancel()
	n.bg.stop()
	n.wg.Wait()
	n.origin.Close()
	return nil
}

// version returns the version the node cuts info into.
func (n *Node) version(bucket, key, etag string, size int64) catalog.Version {
	return catalog.Version{Bucket: bucket, Key: key, ETag: etag, Size: size,
		ChunkSize: n.cfg.ChunkSize, Hash: string(n.cfg.Hash)}
}

// mapErr translates errors from our collaborators to gateway sentinels.
// Both the gateway sentinel and the cause stay visible to errors.Is.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var s error
	switch {
	case errors.Is(err, gateway.ErrNoSuchKey), errors.Is(err, gateway.ErrNoSuchBucket),
		errors.Is(err, gateway.ErrUnavailable), errors.Is(err, gateway.ErrPreconditionFailed),
		errors.Is(err, gateway.ErrInvalidArgument), errors.Is(err, gateway.ErrAccessDenied),
		errors.Is(err, gateway.ErrNoSuchUpload), errors.Is(err, gateway.ErrSlowDown):
		return fmt.Errorf("node: %s: %w", op, err)
	case errors.Is(err, origin.ErrNotFound):
		s = gateway.ErrNoSuchKey
	case errors.Is(err, origin.ErrNoSuchBucket):
		s = gateway.ErrNoSuchBucket
	case errors.Is(err, origin.ErrNoSuchUpload):
		s = gateway.ErrNoSuchUpload
	case errors.Is(err, origin.ErrAccessDenied):
		s = gateway.ErrAccessDenied
	case errors.Is(err, origin.ErrPreconditionFailed):
		s = gateway.ErrPreconditionFailed
	case errors.Is(err, origin.ErrInvalidArgument), errors.Is(err, origin.ErrInvalidRange):
		s = gateway.ErrInvalidArgument
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("node: %s: %w", op, err)
	case errors.Is(err, blockstore.ErrFull):
		s = gateway.ErrSlowDown
	default:
		// origin.ErrUnavailable, network errors, a closed node or store.
		s = gateway.ErrUnavailable
	}
	return fmt.Errorf("node: %s: %w: %w", op, s, err)
}

// originDown reports whether err means "the origin could not answer"
// (as opposed to an authoritative answer such as NoSuchKey).
func originDown(err error) bool {
	switch {
	case errors.Is(err, origin.ErrNotFound), errors.Is(err, origin.ErrNoSuchBucket),
		errors.Is(err, origin.ErrAccessDenied), errors.Is(err, origin.ErrPreconditionFailed),
		errors.Is(err, origin.ErrInvalidArgument), errors.Is(err, origin.ErrInvalidRange),
		errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// Status is a snapshot for `shoal status`.
type Status struct {
	Objects   int64 // cached object metadata records
	Chunks    int64 // chunk index entries
	Manifests int64 // versions with a complete manifest
	Pins      int64 // pinned prefixes

	Store blockstore.Stats // the block store's own counters
	// Memory and Disk are the per-tier figures.
	Memory, Disk blockstore.Stats

	ChunkHits      int64 // chunks served from the local store
	ChunkPeer      int64 // chunks fetched from peers (providers of a known CID)
	ChunkHome      int64 // chunks served by their home node
	ChunkOrigin    int64 // chunks fetched from the origin
	OriginBytes    int64 // chunk bytes read from the origin
	OriginHeads    int64 // HEAD requests sent to the origin
	SharedFetches  int64 // fetches joined by more than one reader
	StaleServed    int64 // stale metadata served because the origin was down
	MetadataHits   int64 // HEADs answered from the catalog without the origin
	MetadataMisses int64 // HEADs that asked the origin (or the key's home node)

	Cluster ClusterStatus // zero without a cluster
	// Jobs are the warm-up jobs running on this node now.
	Jobs []jobs.Job
	// Replicas is this node's share of the replica targets.
	Replicas ReplicaStatus
}

// Status reports figures from the catalog, the store and the node's counters.
func (n *Node) Status(ctx context.Context) (Status, error) {
	c, err := n.cat.Counts(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("node: status: %w", err)
	}
	m := n.m
	mem, disk := n.store.TierStats()
	return Status{
		Memory: mem, Disk: disk,
		Objects: c.Objects, Chunks: c.Chunks, Manifests: c.Manifests, Pins: c.Pins,
		Store:          n.store.Stats(),
		ChunkHits:      m.local.Load(),
		ChunkPeer:      m.peer.Load(),
		ChunkHome:      m.home.Load(),
		ChunkOrigin:    n.origin.Counters().Chunks.Load(),
		OriginBytes:    n.origin.Counters().Bytes.Load(),
		OriginHeads:    m.heads.Load(),
		SharedFetches:  m.shared.Load(),
		StaleServed:    m.stale.Load(),
		MetadataHits:   m.metaHits.Load(),
		MetadataMisses: m.metaMisses.Load(),
		Cluster:        n.clusterStatus(),
		Jobs:           n.jobs.Live(),
		Replicas:       n.replicaStatus(),
	}, nil
}
