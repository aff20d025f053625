package node

import (
	"context"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/node/placement"
)

// Home read-ahead. A cold object read by many nodes at once is paced by
// the origin link: only the home nodes read it, each its own share. When
// the homes read only what the readers' windows ask for, the origin link
// idles whenever the windows wait on the fan-out of the chunks they hold
// (every chunk of a window completes at about the same time, since the
// links share bandwidth fairly between them), and then all homes start the
// next window at once. So a home that serves one of its chunks of a
// version that is being read in order also fetches its next own chunks
// (FetchPolicy.HomeReadAhead of them) into its store, as background tasks,
// in chunk order behind the chunks readers wait for (the origin fetcher's
// order gate): the origin link stays busy and the chunks are there when
// the readers' windows reach them.
//
// "Read in order": chunk i is in the version's first window (a read from
// the start) or this node already holds its previous own chunk. A read of
// a few chunks in the middle of an object costs at most HomeReadAhead
// extra chunks per home.

// homeReadAhead queues fetches of this node's next own chunks of v after
// chunk i (see above). It never blocks.
func (n *Node) homeReadAhead(place placement.Placement, v catalog.Version, i int64) {
	cl := n.cl
	depth := n.cfg.Fetch.HomeReadAhead
	if cl == nil || depth <= 0 || place.Alone() || n.base.Err() != nil {
		return
	}
	count := int64(place.Size())
	if i >= count {
		prev := place.OwnChunkBefore(v, i)
		if prev < 0 {
			return
		}
		if _, err := n.cat.Chunk(n.base, v, prev); err != nil {
			return // not a read in order
		}
	}
	for _, j := range place.OwnChunksAfter(v, i, depth) {
		if _, err := n.cat.Chunk(n.base, v, j); err == nil {
			continue // fetched already
		}
		key := chunkFlightKey(v, j, true)
		cl.mu.Lock()
		busy := cl.ahead[key]
		if !busy {
			cl.ahead[key] = true
		}
		cl.mu.Unlock()
		if busy {
			continue
		}
		done := func() {
			cl.mu.Lock()
			delete(cl.ahead, key)
			cl.mu.Unlock()
		}
		ok := n.bg.submit(func(ctx context.Context) {
			defer done()
			ctx, cancel := context.WithTimeout(ctx, homeAheadTimeout)
			defer cancel()
			if _, _, err := n.readChunk(ctx, v, j, access{asHome: true}); err != nil && ctx.Err() == nil {
				n.log.Debug("home read-ahead failed", "bucket", v.Bucket, "key", v.Key, "chunk", j, "err", err)
			}
		})
		if !ok {
			done()
			n.m.tasksDropped.Add(1)
		}
	}
}
