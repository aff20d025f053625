package routing

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MemoryNetwork is an in-process stand-in for the DHT, shared by the
// MemoryRouters it creates: for other packages' unit tests. Providers are
// keyed by multihash as in the DHT; StopProviding takes effect at once.
type MemoryNetwork struct {
	mu sync.Mutex
	// providers and records are guarded by mu.
	providers map[string]map[peer.ID]peer.AddrInfo // multihash bytes -> providers
	records   map[string][]ManifestRecord          // DHT key -> claims, earliest publication first
}

// NewMemoryNetwork returns an empty in-memory network.
func NewMemoryNetwork() *MemoryNetwork {
	return &MemoryNetwork{
		providers: make(map[string]map[peer.ID]peer.AddrInfo),
		records:   make(map[string][]ManifestRecord),
	}
}

// Router returns a router for the node self on this network.
func (n *MemoryNetwork) Router(self peer.AddrInfo) *MemoryRouter {
	return &MemoryRouter{net: n, self: self}
}

// MemoryRouter has the same method set as *Router, backed by a MemoryNetwork.
type MemoryRouter struct {
	net  *MemoryNetwork
	self peer.AddrInfo

	mu     sync.Mutex
	closed bool // guarded by mu
}

func (r *MemoryRouter) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// Bootstrap is a no-op.
func (r *MemoryRouter) Bootstrap(ctx context.Context) error { return r.check(ctx) }

// Provide records this node as a provider of c.
func (r *MemoryRouter) Provide(ctx context.Context, c cid.Cid) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if !c.Defined() {
		return fmt.Errorf("routing: provide: undefined cid")
	}
	n := r.net
	n.mu.Lock()
	defer n.mu.Unlock()
	k := string(c.Hash())
	if n.providers[k] == nil {
		n.providers[k] = make(map[peer.ID]peer.AddrInfo)
	}
	n.providers[k][r.self.ID] = r.self
	return nil
}

// StopProviding removes this node from c's providers.
func (r *MemoryRouter) StopProviding(ctx context.Context, c cid.Cid) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	n := r.net
	n.mu.Lock()
	defer n.mu.Unlock()
	k := string(c.Hash())
	delete(n.providers[k], r.self.ID)
	if len(n.providers[k]) == 0 {
		delete(n.providers, k)
	}
	return nil
}

// FindProviders returns up to limit providers of c other than this node,
// in peer ID order.
func (r *MemoryRouter) FindProviders(ctx context.Context, c cid.Cid, limit int) ([]peer.AddrInfo, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	if !c.Defined() {
		return nil, fmt.Errorf("routing: find providers: undefined cid")
	}
	if limit <= 0 {
		limit = DefaultFindLimit
	}
	n := r.net
	n.mu.Lock()
	var out []peer.AddrInfo
	for id, ai := range n.providers[string(c.Hash())] {
		if id != r.self.ID {
			out = append(out, ai)
		}
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// PutManifestRecord stores rec (it neither signs nor verifies: a test
// double). A record of a claim already stored keeps the earliest
// publication; a different claim is kept beside it (a conflict), ordered
// by publication, as the DHT's validator would settle and note it.
func (r *MemoryRouter) PutManifestRecord(ctx context.Context, rec ManifestRecord) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	if err := rec.Validate(); err != nil {
		return err
	}
	n := r.net
	n.mu.Lock()
	defer n.mu.Unlock()
	k := rec.DHTKey()
	recs := n.records[k]
	for i, o := range recs {
		if o.SameClaim(rec) {
			if rec.Timestamp.Before(o.Timestamp) {
				recs[i] = rec
			}
			rec = ManifestRecord{}
			break
		}
	}
	if rec.Manifest.Defined() {
		recs = append(recs, rec)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Timestamp.Before(recs[j].Timestamp) })
	n.records[k] = recs
	return nil
}

// GetManifestRecords returns the stored claims, earliest first, or
// ErrNotFound.
func (r *MemoryRouter) GetManifestRecords(ctx context.Context, bucket, key, etag string, chunkSize int64, hash string) ([]ManifestRecord, error) {
	if err := r.check(ctx); err != nil {
		return nil, err
	}
	n := r.net
	n.mu.Lock()
	defer n.mu.Unlock()
	recs := n.records[ManifestRecordKey(bucket, key, etag, chunkSize, hash)]
	if len(recs) == 0 {
		return nil, fmt.Errorf("routing: manifest %s/%s: %w", bucket, key, ErrNotFound)
	}
	return append([]ManifestRecord(nil), recs...), nil
}

// Close makes further calls fail with ErrClosed.
func (r *MemoryRouter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
