package node

import (
	"context"
	"time"

	"github.com/shoal-cache/shoal/catalog"
)

// Home read-ahead. A cold object read by many nodes at once is paced by
// the origin link: only the home nodes read it, each its own share. When
// the homes read only what the readers' windows ask for, the origin link
// idles whenever the windows wait on the fan-out of the chunks they hold
// (every chunk of a window completes at about the same time, since the
// links share bandwidth fairly between them), and then all homes start the
// next window at once. So a home that serves one of its chunks of a
// version that is being read in order also fetches its next own chunks
// (homeAheadDepth of them) into its store, in chunk order behind the
// chunks readers wait for (orderGate): the origin link stays busy and the
// chunks are there when the readers' windows reach them.
//
// "Read in order": chunk i is in the version's first window (a read from
// the start) or this node already holds its previous own chunk. A read of
// a few chunks in the middle of an object costs at most homeAheadDepth
// extra chunks per home.
const (
	// homeAheadDepth: own chunks fetched ahead of the one served.
	homeAheadDepth = 2
	// homeAheadTimeout bounds one home read-ahead fetch.
	homeAheadTimeout = time.Minute
)

// homeReadAhead starts fetching this node's next own chunks of v after
// chunk i (see above). It never blocks and must be called from a
// goroutine counted in n.wg or from a caller that Close waits for (a read
// or a peer request).
func (n *Node) homeReadAhead(v catalog.Version, i int64) {
	cl := n.cl
	if cl == nil || n.base.Err() != nil {
		return
	}
	members := cl.Members.Members()
	count := int64(len(members) + 1)
	if count < 2 {
		return
	}
	last := v.NumChunks() - 1
	isOwn := func(j int64) bool { return chunkHomes(v, j, cl.self, members, nil, 1)[0] == cl.self }
	if i >= count {
		prev := int64(-1)
		for j := i - 1; j >= 0 && j >= i-2*count; j-- {
			if isOwn(j) {
				prev = j
				break
			}
		}
		if prev < 0 {
			return
		}
		if _, err := n.cat.Chunk(n.base, v, prev); err != nil {
			return // not a read in order
		}
	}
	found := 0
	for j := i + 1; j <= last && j <= i+2*count*homeAheadDepth && found < homeAheadDepth; j++ {
		if !isOwn(j) {
			continue
		}
		found++
		if _, err := n.cat.Chunk(n.base, v, j); err == nil {
			continue // fetched already
		}
		key := homeFlight + flightKey(v, j)
		cl.mu.Lock()
		busy := cl.ahead[key]
		if !busy {
			cl.ahead[key] = true
		}
		cl.mu.Unlock()
		if busy {
			continue
		}
		n.wg.Go(func() {
			defer func() {
				cl.mu.Lock()
				delete(cl.ahead, key)
				cl.mu.Unlock()
			}()
			ctx, cancel := context.WithTimeout(n.base, homeAheadTimeout)
			defer cancel()
			_, _, err := n.chunks.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
				return n.fetch(ctx, v, j, false)
			})
			if err != nil && n.base.Err() == nil {
				n.log.Debug("home read-ahead failed", "bucket", v.Bucket, "key", v.Key, "chunk", j, "err", err)
			}
		})
	}
}
