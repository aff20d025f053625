package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// Router is the subset of *routing.Router the node uses
// (routing.MemoryRouter also satisfies it).
type Router interface {
	Provide(ctx context.Context, c cid.Cid) error
	StopProviding(ctx context.Context, c cid.Cid) error
	FindProviders(ctx context.Context, c cid.Cid, limit int) ([]peer.AddrInfo, error)
	PutManifestRecord(ctx context.Context, rec routing.ManifestRecord) error
	GetManifestRecord(ctx context.Context, bucket, key, etag string) (routing.ManifestRecord, error)
}

// Transfer is the subset of *transfer.Client the node uses. Both fetches
// return a content.Block, proof that the bytes were verified against its
// CID, so neither the node nor its store hashes them again. A home's Fetch
// answer is also checked to carry the raw CID under the version's hash.
type Transfer interface {
	GetVerified(ctx context.Context, c cid.Cid, providers []peer.AddrInfo) (content.Block, error)
	FetchVerified(ctx context.Context, p peer.ID, key []byte) (content.Block, error)
	Meta(ctx context.Context, p peer.ID, key []byte) ([]byte, error)
	// Penalized reports a peer that recently stalled, failed or lied; it
	// is skipped as a home node until its penalty ends.
	Penalized(p peer.ID) bool
}

// Members tells who is in the cluster right now (live peers that speak the
// transfer protocol).
type Members interface {
	Self() peer.ID
	Members() []peer.ID // live members other than self
}

// The production collaborators satisfy the interfaces.
var (
	_ Router   = (*routing.Router)(nil)
	_ Router   = (*routing.MemoryRouter)(nil)
	_ Transfer = (*transfer.Client)(nil)
	_ Members  = (*routing.Members)(nil)
)

// Cluster is what a node needs to join a P2P cluster: content routing (who
// holds a CID, manifest records), chunk transfer, and the member list used
// to choose home nodes.
type Cluster struct {
	Router   Router
	Transfer Transfer
	Members  Members
}

// WithCluster makes the node a cluster member: it announces what it stores,
// fetches chunks from peers before the origin, and sends chunk and
// metadata misses to their home node so that the cluster reads each chunk
// from the origin about once. Without it the node works alone.
func WithCluster(c Cluster) Option { return func(o *options) { o.cluster = &c } }

// Cluster tuning.
const (
	// clusterReadAhead is the default ReadAhead with a cluster: the chunks
	// of one read fan out over many home nodes, so a lone cold reader gains
	// from more chunks in flight, and when many nodes read one cold object
	// at once every chunk of a window completes at about the same time
	// (links share bandwidth fairly), so a window of two home rounds keeps
	// a node's downlink busy while the next one lands (S4, N=8: 16 gave
	// 14.8-15.3 s, 8 gave 17.1-17.5 s, 32 gave 16.5 s; 16 x 4 MiB = 64 MiB
	// per stream).
	clusterReadAhead = 16
	// clusterOriginStreams: origin fetches of one version in flight
	// cluster-wide (each node runs its share, lowest chunk index first;
	// see orderGate). One origin link carries them all. Before cut-through
	// fewer streams were better (a chunk landed sooner and could be passed
	// on); with cut-through a home passes bytes on as they arrive, and
	// TCP's unequal shares of one congested link matter more: with one
	// stream per home the home with the slowest stream held every reader
	// back, with two the shares even out (S4, N=8, 5 runs each: 8 streams
	// 1.29x S/B median [1.19..1.55], 16 streams 1.20x [1.18..1.45]).
	clusterOriginStreams = 16
	// findLimit: providers asked for per chunk. transfer pulls from the K
	// best (default 3) and needs spares for failover; more only lengthens
	// the DHT lookup.
	findLimit = 8
	// homeCandidates: home nodes tried in rendezvous order before the node
	// reads the origin itself. Three keeps the origin at one read per chunk
	// through one or two dead or failing homes (Gantry's designated puller
	// bounds the origin at three pulls per digest the same way).
	homeCandidates = 3
	// lookupTimeout bounds one DHT lookup (providers or a manifest record).
	// On loopback or a LAN a lookup takes milliseconds, but one that queries
	// a hung peer waits for kad-dht's fixed 10 s per-RPC timeout; in a
	// private LAN cluster an answer not there after a few seconds will not
	// come, and the lookup returns what it found by then (the router hands
	// back partial results) so the next source can be tried.
	lookupTimeout = 3 * time.Second
	// manifestWait: how long a chunk fetch that can go to a home node
	// waits for its version's manifest lookup. On an idle LAN a lookup
	// takes milliseconds; under a cold swarm read a miss took 10-700 ms
	// (S4), time every chunk fetched meanwhile would stall.
	manifestWait = 100 * time.Millisecond
	// manifestMissTTL: after a version's manifest record was not found, the
	// DHT is not asked again for it this long, so the chunks of a cold object
	// cost one record lookup, not one per chunk. Short, because the record
	// appears as soon as any node completes the object; meanwhile home nodes
	// serve the chunks anyway.
	manifestMissTTL = 2 * time.Second
	// maxPendingAnnounces bounds the announce queue (distinct CIDs waiting
	// for Run); beyond it announcements are dropped and counted as failed.
	maxPendingAnnounces = 1 << 20
	// maxPendingRecords bounds manifest records waiting to be published.
	maxPendingRecords = 4096
	// recordTimeout bounds one manifest record publication (a DHT put).
	recordTimeout = 30 * time.Second
)

// originPerVersion is how many origin fetches of one version this node runs
// at once: clusterOriginStreams shared by the nodes of the cluster (each
// home reads its own share), at least one.
func (cl *cluster) originPerVersion() int {
	n := len(cl.Members.Members()) + 1
	return max(1, (clusterOriginStreams+n-1)/n)
}

// cluster is the node's cluster state.
type cluster struct {
	Cluster
	self peer.ID

	mu      sync.Mutex               // guards pending, records and ahead
	ahead   map[string]bool          // home read-ahead fetches running, by flight key
	pending map[cid.Cid]bool         // CID -> provide (true) or stop (false); the last call wins
	records []routing.ManifestRecord // manifest records to publish
	wakeAnn chan struct{}            // signals pending (capacity 1)
	wakeRec chan struct{}            // signals records (capacity 1)
	order   *orderGate               // origin fetches per version, in chunk order
	lookups *flight[struct{}]        // manifest resolutions, by version id
	missing *ttlCache[struct{}]      // versions whose record was not found recently
}

func newCluster(c Cluster, n *Node) (*cluster, error) {
	if c.Router == nil || c.Transfer == nil || c.Members == nil {
		return nil, errors.New("node: cluster needs a router, a transfer client and a member list")
	}
	return &cluster{
		Cluster: c,
		self:    c.Members.Self(),
		pending: make(map[cid.Cid]bool),
		ahead:   make(map[string]bool),
		wakeAnn: make(chan struct{}, 1),
		wakeRec: make(chan struct{}, 1),
		order:   newOrderGate(gateSettle),
		lookups: newFlight[struct{}](n.base, &n.wg),
		missing: newTTLCache[struct{}](manifestMissTTL, 4096, n.now),
	}, nil
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// announce queues c to be provided (or, with provide false, no longer
// provided). It never blocks.
func (n *Node) announce(c cid.Cid, provide bool) {
	cl := n.cl
	if cl == nil || !c.Defined() {
		return
	}
	cl.mu.Lock()
	_, queued := cl.pending[c]
	full := !queued && len(cl.pending) >= maxPendingAnnounces
	if !full {
		cl.pending[c] = provide
	}
	cl.mu.Unlock()
	if full {
		n.m.providesFailed.Add(1)
		return
	}
	wake(cl.wakeAnn)
}

// publish queues a manifest record for publication.
func (n *Node) publish(rec routing.ManifestRecord) {
	cl := n.cl
	if cl == nil {
		return
	}
	if err := rec.Validate(); err != nil {
		// An object the record format cannot carry (e.g. a bucket name
		// longer than S3 allows): peers find its chunks via home nodes.
		n.log.Debug("manifest record not publishable", "bucket", rec.Bucket, "key", rec.Key, "err", err)
		return
	}
	cl.mu.Lock()
	full := len(cl.records) >= maxPendingRecords
	if !full {
		cl.records = append(cl.records, rec)
	}
	cl.mu.Unlock()
	if full {
		n.log.Warn("manifest record queue full; dropping record", "bucket", rec.Bucket, "key", rec.Key)
		return
	}
	wake(cl.wakeRec)
}

// Evicted tells the node a block left the store entirely (wire it to
// blockstore.WithOnRemove): the node stops announcing it. It never blocks.
func (n *Node) Evicted(c cid.Cid) { n.announce(c, false) }

// Run does the node's background work until ctx ends: it first announces
// every block the store holds (when the store can list them with an
// AllKeys method, as *blockstore.Tiered can), then keeps announcements and
// manifest records flowing as chunks land and leave. Without a cluster it
// just waits. It returns nil when ctx ends.
func (n *Node) Run(ctx context.Context) error {
	cl := n.cl
	if cl == nil {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { n.publishLoop(ctx) })
	n.announceStored(ctx)
	for {
		n.drainAnnounces(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-cl.wakeAnn:
		}
	}
}

// keyLister is implemented by stores that can list their blocks.
type keyLister interface {
	AllKeys(ctx context.Context, fn func(cid.Cid) bool) error
}

// announceStored provides every block the store holds (after a restart the
// DHT's provider records may have lapsed and the provider's keystore is
// empty).
func (n *Node) announceStored(ctx context.Context) {
	kl, ok := n.store.(keyLister)
	if !ok {
		return
	}
	var count, failed int
	err := kl.AllKeys(ctx, func(c cid.Cid) bool {
		if err := n.cl.Router.Provide(ctx, c); err != nil {
			failed++
			n.m.providesFailed.Add(1)
			return ctx.Err() == nil
		}
		count++
		n.m.providesQueued.Add(1)
		return true
	})
	if err != nil && ctx.Err() == nil {
		n.log.Warn("listing stored blocks for announcement failed", "err", err)
	}
	n.log.Info("announced stored blocks", "blocks", count, "failed", failed)
}

// drainAnnounces hands every queued announcement to the router.
func (n *Node) drainAnnounces(ctx context.Context) {
	cl := n.cl
	cl.mu.Lock()
	batch := cl.pending
	cl.pending = make(map[cid.Cid]bool, len(batch))
	cl.mu.Unlock()
	for c, provide := range batch {
		if ctx.Err() != nil {
			return
		}
		if !provide {
			// WithOnRemove may report a block that was put again right
			// after: keep announcing what the store still holds.
			if has, err := n.store.Has(ctx, c); err == nil && has {
				provide = true
			}
		}
		var err error
		if provide {
			err = cl.Router.Provide(ctx, c)
		} else {
			err = cl.Router.StopProviding(ctx, c)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			n.m.providesFailed.Add(1)
			n.log.Debug("announcement failed", "cid", c, "provide", provide, "err", err)
		case err == nil && provide:
			n.m.providesQueued.Add(1)
		}
	}
}

// publishLoop publishes queued manifest records until ctx ends.
func (n *Node) publishLoop(ctx context.Context) {
	cl := n.cl
	for {
		cl.mu.Lock()
		batch := cl.records
		cl.records = nil
		cl.mu.Unlock()
		for _, rec := range batch {
			if ctx.Err() != nil {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, recordTimeout)
			err := cl.Router.PutManifestRecord(pctx, rec)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("publishing manifest record failed", "bucket", rec.Bucket, "key", rec.Key, "err", err)
				}
				continue
			}
			n.m.manifestsPublished.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-cl.wakeRec:
		}
	}
}

// ClusterStatus is the cluster section of Status (zero without a cluster).
type ClusterStatus struct {
	Enabled            bool
	Self               string // this node's peer ID
	Members            int    // live members other than self
	ProvidesPending    int    // announcements waiting for Run
	RecordsPending     int    // manifest records waiting for Run
	ProvidesQueued     int64  // CIDs handed to the router to announce
	ProvidesFailed     int64  // announcements the router refused or the queue dropped
	ManifestsFound     int64  // manifests learnt from a DHT record
	ManifestsPublished int64  // manifest records published
	MetaHome           int64  // metadata lookups answered by a home node
}

func (n *Node) clusterStatus() ClusterStatus {
	cl := n.cl
	if cl == nil {
		return ClusterStatus{}
	}
	cl.mu.Lock()
	pending, records := len(cl.pending), len(cl.records)
	cl.mu.Unlock()
	return ClusterStatus{
		Enabled:            true,
		Self:               cl.self.String(),
		Members:            len(cl.Members.Members()),
		ProvidesPending:    pending,
		RecordsPending:     records,
		ProvidesQueued:     n.m.providesQueued.Load(),
		ProvidesFailed:     n.m.providesFailed.Load(),
		ManifestsFound:     n.m.manifestsFound.Load(),
		ManifestsPublished: n.m.manifestsPublished.Load(),
		MetaHome:           n.m.metaHome.Load(),
	}
}

// errNoManifest: no usable manifest for a version was found in the cluster.
var errNoManifest = errors.New("node: no manifest record in the cluster")

// errManifestPending: a manifest lookup did not finish in the time the
// caller could wait; it goes on in the background.
var errManifestPending = errors.New("node: manifest lookup still running")

func wrapLookup(what string, err error) error { return fmt.Errorf("node: %s: %w", what, err) }
