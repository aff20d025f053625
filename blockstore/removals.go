package blockstore

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
)

// maxRemovals bounds the blocks a Removals feed holds until they are
// taken: 64 Ki CIDs is about 4 MiB, and more than a disk tier of 256 GiB
// of 4 MiB chunks evicts in one sweep.
const maxRemovals = 1 << 16

// Removals is the feed of blocks that left a store entirely (no tier holds
// them any more: eviction, corruption, Delete), for a consumer that stops
// announcing them. It is bounded and coalescing: a block removed twice
// before it is taken is reported once; beyond its bound, removals are
// dropped and counted (a consumer that far behind keeps announcing a few
// blocks it no longer holds until their provider records expire).
// Concurrent activity can report a block that was put again right after;
// the consumer checks Has before acting.
type Removals struct {
	mu      sync.Mutex // guards set and dropped
	set     map[cid.Cid]struct{}
	dropped int64
	wake    chan struct{} // capacity 1: signals a non-empty set
}

// NewRemovals returns an empty feed (for stores other than Tiered).
func NewRemovals() *Removals {
	return &Removals{set: make(map[cid.Cid]struct{}), wake: make(chan struct{}, 1)}
}

// Add reports that c left the store.
func (r *Removals) Add(c cid.Cid) {
	r.mu.Lock()
	_, ok := r.set[c]
	switch {
	case ok:
	case len(r.set) >= maxRemovals:
		r.dropped++
	default:
		r.set[c] = struct{}{}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Take waits until some removals are queued (or ctx ends) and returns
// them all, emptying the feed.
func (r *Removals) Take(ctx context.Context) ([]cid.Cid, error) {
	for {
		r.mu.Lock()
		if len(r.set) > 0 {
			out := make([]cid.Cid, 0, len(r.set))
			for c := range r.set {
				out = append(out, c)
			}
			clear(r.set)
			r.mu.Unlock()
			return out, nil
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Dropped counts removals lost because the feed was full.
func (r *Removals) Dropped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
