package node

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/transfer"
)

// Cut-through at home nodes. A home reads a chunk from the origin for the
// whole cluster; instead of making the other nodes wait until the chunk has
// landed (about 1.3 s for 4 MiB when eight homes share one 200 Mbit/s origin
// link, S4), it passes the bytes on while they arrive. Origin reads run
// through an arrival (hashed as they come, content.Builder) registered
// under the chunk's flight key while the read lasts; PeerHandler.FetchStream
// starts or joins the chunk's home flight and streams from its arrival.
// Peers verify the bytes against the CID the home names at the end, as
// before, and the node's own readers still get whole verified chunks.

// arrivals registers the origin reads in progress on this node, by chunk
// flight key (see flightKey).
type arrivals struct {
	mu      sync.Mutex          // guards m and changed
	m       map[string]*arrival // reads in progress
	changed chan struct{}       // closed (and replaced) when an entry is added
}

func newArrivals() *arrivals {
	return &arrivals{m: make(map[string]*arrival), changed: make(chan struct{})}
}

// lookup returns key's read in progress, or nil and a channel closed when
// the next read starts.
func (r *arrivals) lookup(key string) (*arrival, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.m[key]; a != nil {
		return a, nil
	}
	return nil, r.changed
}

// start registers a read of a chunk of size bytes under key.
func (r *arrivals) start(key string, h content.Hash, size int64) *arrival {
	a := &arrival{b: content.NewBuilder(h, int(size)), h: h, size: size}
	r.mu.Lock()
	r.m[key] = a
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return a
}

// end records the outcome of a's read and unregisters it; readers holding
// a still see the outcome.
func (r *arrivals) end(key string, a *arrival, err error) (content.Block, error) {
	r.mu.Lock()
	if r.m[key] == a {
		delete(r.m, key)
	}
	r.mu.Unlock()
	return a.finish(err)
}

// arrival is one chunk being read from the origin. Its single writer (the
// origin read) hashes and appends through Write; any number of readers
// follow with next.
type arrival struct {
	b    *content.Builder // written by the writer only, outside mu
	h    content.Hash
	size int64

	mu   sync.Mutex    // guards the fields below
	data []byte        // bytes so far (a prefix of b's buffer, never modified)
	done bool          // the read ended: blk or err is set
	blk  content.Block // the finished chunk
	err  error         // why the read failed
	wake chan struct{} // closed on the next change; nil while nobody waits
}

// Write appends p (the origin's bytes) and wakes the readers.
func (a *arrival) Write(p []byte) (int, error) {
	n, err := a.b.Write(p)
	if n > 0 {
		data := a.b.Bytes()
		a.mu.Lock()
		a.data = data
		wake := a.wake
		a.wake = nil
		a.mu.Unlock()
		if wake != nil {
			close(wake)
		}
	}
	return n, err
}

// finish ends the read: with err nil the chunk must be complete, and its
// Block (named by the hash of what was written) is returned.
func (a *arrival) finish(err error) (content.Block, error) {
	var blk content.Block
	if err == nil {
		blk, err = a.b.Block()
	}
	a.mu.Lock()
	a.done, a.blk, a.err = true, blk, err
	wake := a.wake
	a.wake = nil
	a.mu.Unlock()
	if wake != nil {
		close(wake)
	}
	return blk, err
}

// next returns the bytes after off once there are some, io.EOF when the
// chunk is complete and off is its end, or the read's error.
func (a *arrival) next(ctx context.Context, off int64) ([]byte, error) {
	for {
		a.mu.Lock()
		data, done, err := a.data, a.done, a.err
		if off < int64(len(data)) {
			a.mu.Unlock()
			return data[off:], nil
		}
		if done {
			a.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		if a.wake == nil {
			a.wake = make(chan struct{})
		}
		wake := a.wake
		a.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// result reports the finished chunk and whether the read ended well.
func (a *arrival) result() (content.Block, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.blk, a.done && a.err == nil
}

// fetchResult is the outcome of a home flight run for a stream.
type fetchResult struct {
	data []byte
	err  error
}

// homeStream streams a chunk from its arrival at this home node, while the
// home flight that reads it is kept joined (a flight whose callers all
// left is cancelled).
type homeStream struct {
	a      *arrival
	v      catalog.Version
	i      int64
	cancel context.CancelFunc // leaves the flight
	res    <-chan fetchResult // the flight's outcome
}

var (
	_ transfer.ChunkStream   = (*homeStream)(nil)
	_ transfer.StreamHandler = (*PeerHandler)(nil)
)

func (s *homeStream) Size() int64        { return s.a.size }
func (s *homeStream) Hash() content.Hash { return s.a.h }

func (s *homeStream) Next(ctx context.Context, off int64) ([]byte, error) {
	data, err := s.a.next(ctx, off)
	if err != nil && err != io.EOF && ctx.Err() == nil {
		return nil, fmt.Errorf("node: home read of %s/%s chunk %d: %w", s.v.Bucket, s.v.Key, s.i, err)
	}
	return data, err
}

func (s *homeStream) CID() cid.Cid {
	blk, ok := s.a.result()
	if !ok {
		return cid.Undef
	}
	return blk.CID()
}

// Close leaves the flight. After a complete read it waits for the flight
// to store and record the chunk instead of cancelling it.
func (s *homeStream) Close() {
	if _, ok := s.a.result(); !ok {
		s.cancel()
	}
	<-s.res
	s.cancel()
}

// FetchStream serves the chunk named by a home request key (see
// encodeChunkKey) as its home node, as Fetch does, but streams it: a chunk
// in the store is sent at once; otherwise the home flight is started or
// joined and, as soon as the chunk is being read from the origin, its bytes
// are sent as they arrive. A flight that finds the chunk elsewhere (a
// provider) is streamed once it has the whole chunk.
func (h *PeerHandler) FetchStream(ctx context.Context, key []byte) (transfer.ChunkStream, error) {
	n := h.n
	v, i, err := decodeChunkKey(key)
	if err != nil {
		return nil, err
	}
	if v.ChunkSize > maxServedChunk {
		return nil, fmt.Errorf("%w: chunk size %d exceeds %d", ErrBadKey, v.ChunkSize, maxServedChunk)
	}
	hash := n.hashOf(v)
	if c, err := n.cat.Chunk(ctx, v, i); err == nil {
		req := n.request(v, i)
		req.CID = c
		if data, ok := n.local(ctx, req); ok {
			if n.cl != nil {
				n.homeReadAhead(v, i)
			}
			return transfer.NewWholeChunkStream(c, hash, data), nil
		}
	}

	fctx, cancel := context.WithCancel(ctx)
	res := make(chan fetchResult, 1)
	go func() {
		data, err := n.chunkAt(fctx, v, i, true)
		res <- fetchResult{data, err}
	}()
	fk := flightKey(v, i)
	for {
		a, changed := n.arrivals.lookup(fk)
		if a != nil {
			return &homeStream{a: a, v: v, i: i, cancel: cancel, res: res}, nil
		}
		select {
		case r := <-res:
			cancel()
			if r.err != nil {
				return nil, peerErr(fmt.Sprintf("fetch %s/%s chunk %d", v.Bucket, v.Key, i), r.err)
			}
			c, err := n.cat.Chunk(ctx, v, i)
			if err != nil {
				c = content.Sum(hash, r.data)
			}
			return transfer.NewWholeChunkStream(c, hash, r.data), nil
		case <-changed:
		case <-ctx.Done():
			cancel()
			<-res
			return nil, ctx.Err()
		}
	}
}
