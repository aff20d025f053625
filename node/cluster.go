package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// Router is the subset of *routing.Router the node uses
// (routing.MemoryRouter also satisfies it).
type Router interface {
	Provide(ctx context.Context, c cid.Cid) error
	StopProviding(ctx context.Context, c cid.Cid) error
	FindProviders(ctx context.Context, c cid.Cid, limit int) ([]peer.AddrInfo, error)
	// PutManifestRecord signs and publishes rec.
	PutManifestRecord(ctx context.Context, rec routing.ManifestRecord) error
	// GetManifestRecords returns a version's records: the one the DHT
	// settled on first, then any conflicting claims seen.
	GetManifestRecords(ctx context.Context, bucket, key, etag string, chunkSize int64, hash string) ([]routing.ManifestRecord, error)
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
	// PenalizeLiar penalizes a peer whose claim (a manifest, a chunk) the
	// origin proved false.
	PenalizeLiar(p peer.ID, why string)
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

// Queues of announcements and records waiting for Run.
const (
	// maxPendingAnnounces bounds the announce queue (distinct CIDs waiting
	// for Run); beyond it announcements are dropped and counted as failed.
	maxPendingAnnounces = 1 << 20
	// maxPendingRecords bounds manifest records waiting to be published.
	maxPendingRecords = 4096
	// recordTimeout bounds one manifest record publication (a DHT put).
	recordTimeout = 30 * time.Second
	// manifestMissTTL: after a version's manifest record was not found, the
	// DHT is not asked again for it this long, so the chunks of a cold object
	// cost one record lookup, not one per chunk. Short, because the record
	// appears as soon as any node completes the object; meanwhile home nodes
	// serve the chunks anyway.
	manifestMissTTL = 2 * time.Second
)

// cluster is the node's cluster state.
type cluster struct {
	Cluster
	self peer.ID

	mu      sync.Mutex               // guards pending, records, ahead and lookups
	ahead   map[string]bool          // home read-ahead tasks queued or running, by flight key
	pending map[cid.Cid]bool         // CID -> provide (true) or stop (false); the last call wins
	records []routing.ManifestRecord // manifest records to publish
	lookups map[string]*lookup       // manifest lookups queued or running, by version id
	wakeAnn chan struct{}            // signals pending (capacity 1)
	wakeRec chan struct{}            // signals records (capacity 1)
	missing *ttlCache[struct{}]      // versions whose record was not found recently
}

func newCluster(c Cluster, now func() time.Time) (*cluster, error) {
	if c.Router == nil || c.Transfer == nil || c.Members == nil {
		return nil, errors.New("node: cluster needs a router, a transfer client and a member list")
	}
	return &cluster{
		Cluster: c,
		self:    c.Members.Self(),
		pending: make(map[cid.Cid]bool),
		ahead:   make(map[string]bool),
		lookups: make(map[string]*lookup),
		wakeAnn: make(chan struct{}, 1),
		wakeRec: make(chan struct{}, 1),
		missing: newTTLCache[struct{}](manifestMissTTL, 4096, now),
	}, nil
}

// snapshot is who is home for what now (package placement): the live
// members, penalized ones passed over; alone without a cluster.
func (n *Node) snapshot() placement.Placement {
	cl := n.cl
	if cl == nil {
		return placement.New("", nil, nil)
	}
	return placement.New(cl.self, cl.Members.Members(), cl.Transfer.Penalized)
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
