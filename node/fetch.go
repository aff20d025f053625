package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/routing"
)

// ChunkRequest names one chunk of one version.
type ChunkRequest struct {
	Version catalog.Version
	Index   int64
	// Off and Len locate the chunk in the object.
	Off, Len int64
	// CID is the chunk's CID when known (cid.Undef otherwise).
	CID cid.Cid
}

// ChunkSource supplies chunk bytes. The node verifies what a source returns
// against req.CID, so a source may be untrusted (a peer). A source that does
// not have the chunk returns an error; the node then asks the next source.
// The chain is: local block store -> peers (WithPeers) -> origin.
type ChunkSource interface {
	FetchChunk(ctx context.Context, req ChunkRequest) ([]byte, error)
}

// errShortChunk: a source returned the wrong number of bytes.
var errShortChunk = errors.New("node: chunk has the wrong length")

func (n *Node) request(v catalog.Version, i int64) ChunkRequest {
	off := i * v.ChunkSize
	return ChunkRequest{Version: v, Index: i, Off: off, Len: min(v.ChunkSize, v.Size-off), CID: cid.Undef}
}

func flightKey(v catalog.Version, i int64) string {
	id := v.ID()
	return string(binary.BigEndian.AppendUint64(id[:], uint64(i)))
}

// chunk returns the bytes of chunk i of v (read-only). A local hit is served
// inline; a miss joins or starts the one shared fetch for that chunk.
func (n *Node) chunk(ctx context.Context, v catalog.Version, i int64) ([]byte, error) {
	return n.chunkAt(ctx, v, i, false)
}

// chunkAt is chunk; asHome marks a request received as the chunk's home
// node (PeerHandler.Fetch), which is served from the store, providers or
// the origin but never forwarded to another home (no loops).
//
// A node that is itself the chunk's home (first in chunkHomes order) also
// never forwards, and both run in the same "home" flight, so a home's own
// readers and every peer's requests share one origin fetch. Flights that
// may forward use another key: a home flight never waits on a forwarding
// one, so nodes whose member lists disagree cannot deadlock each other.
func (n *Node) chunkAt(ctx context.Context, v catalog.Version, i int64, asHome bool) ([]byte, error) {
	home := n.cl != nil && (asHome || chunkHomes(v, i, n.cl.self, n.cl.Members.Members(), nil, 1)[0] == n.cl.self)
	req := n.request(v, i)
	if c, err := n.cat.Chunk(ctx, v, i); err == nil {
		req.CID = c
		if data, ok := n.local(ctx, req); ok {
			if home {
				n.homeReadAhead(v, i)
			}
			return data, nil
		}
	}
	key, forward := flightKey(v, i), n.cl != nil
	if home {
		key, forward = homeFlight+key, false
	}
	data, shared, err := n.chunks.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		return n.fetch(ctx, v, i, forward)
	})
	if shared {
		n.m.shared.Add(1)
	}
	if err == nil && home {
		n.homeReadAhead(v, i)
	}
	return data, err
}

// borrower is a BlockStore that lends its read buffers
// (*blockstore.Tiered): release gives them back and is never nil.
type borrower interface {
	Borrow(ctx context.Context, c cid.Cid) (data []byte, release func(), err error)
}

func noRelease() {}

// readChunk is chunk for a reader that gives the bytes back when done with
// them: a local hit is borrowed from the store (a disk hit then costs no
// allocation, and release recycles its buffer); anything else is shared
// and its release does nothing. release is never nil.
func (n *Node) readChunk(ctx context.Context, v catalog.Version, i int64) (data []byte, release func(), err error) {
	if b, ok := n.store.(borrower); ok {
		if c, err := n.cat.Chunk(ctx, v, i); err == nil {
			req := n.request(v, i)
			data, release, err := b.Borrow(ctx, c)
			switch {
			case err == nil && int64(len(data)) == req.Len:
				n.m.local.Add(1)
				return data, release, nil
			case err == nil:
				n.log.Warn("stored chunk has wrong length; refetching", "cid", c, "len", len(data), "want", req.Len)
			}
			release()
		}
	}
	data, err = n.chunk(ctx, v, i)
	return data, noRelease, err
}

// homeFlight prefixes the flight keys of fetches that do not forward to a
// home node (see chunkAt).
const homeFlight = "h\x00"

// isHome reports whether this node comes first in seed's rendezvous order.
func (n *Node) isHome(seed []byte) bool {
	top := rendezvous(seed, n.cl.self, n.cl.Members.Members(), 1)
	return len(top) == 1 && top[0] == n.cl.self
}

// local reads a chunk whose CID is known from the block store.
func (n *Node) local(ctx context.Context, req ChunkRequest) ([]byte, bool) {
	if !req.CID.Defined() {
		return nil, false
	}
	data, err := n.store.Get(ctx, req.CID)
	if err != nil {
		return nil, false // not found, or dropped as corrupt: refetch
	}
	if int64(len(data)) != req.Len {
		n.log.Warn("stored chunk has wrong length; refetching", "cid", req.CID, "len", len(data), "want", req.Len)
		return nil, false
	}
	n.m.local.Add(1)
	return data, true
}

// fetch runs inside the shared flight: store (again: another flight may
// have just landed it), then, with a cluster, the version's manifest from
// the DHT if the chunk's CID is unknown; then peers (WithPeers), the CID's
// providers, the chunk's home nodes (only if forward), and the origin. It
// records the chunk's CID and builds the manifest when the version's index
// is complete.
func (n *Node) fetch(ctx context.Context, v catalog.Version, i int64, forward bool) ([]byte, error) {
	req := n.request(v, i)
	c, err := n.cat.Chunk(ctx, v, i)
	if errors.Is(err, catalog.ErrNotFound) && n.cl != nil {
		// A node that can forward to a home waits for the manifest lookup
		// only briefly (under load a DHT miss takes up to seconds, and the
		// home serves the chunk anyway); the lookup goes on for the chunks
		// after this one.
		wait := time.Duration(0)
		if forward {
			wait = manifestWait
		}
		if rerr := n.resolveManifestWait(ctx, v, wait); rerr == nil {
			c, err = n.cat.Chunk(ctx, v, i)
		} else if ctx.Err() == nil {
			n.log.Debug("no manifest from the cluster", "bucket", v.Bucket, "key", v.Key, "err", rerr)
		}
	}
	switch {
	case err == nil:
		req.CID = c
		if data, ok := n.local(ctx, req); ok {
			return data, nil
		}
		if n.peers != nil {
			data, err := n.peers.FetchChunk(ctx, req)
			if err == nil && int64(len(data)) == req.Len {
				if b, verr := content.VerifyBlock(c, data); verr == nil {
					n.m.peer.Add(1)
					n.keepBlock(ctx, b)
					return data, nil
				}
			}
			if err != nil && ctx.Err() == nil {
				n.log.Debug("peer fetch failed", "cid", c, "err", err)
			}
		}
		if n.cl != nil {
			if b, ok := n.fromProviders(ctx, req); ok {
				n.m.peer.Add(1)
				n.keepBlock(ctx, b)
				return b.Data(), nil
			}
		}
	case errors.Is(err, catalog.ErrNotFound):
	default:
		n.log.Warn("catalog lookup failed; fetching from origin", "err", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if forward {
		if b, ok := n.fromHome(ctx, req); ok {
			n.m.home.Add(1)
			n.landedBlock(ctx, v, i, b)
			return b.Data(), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}

	blk, err := n.fromOrigin(ctx, req)
	if err != nil {
		return nil, err
	}
	if req.CID.Defined() && !blk.CID().Equals(req.CID) {
		// Same ETag, other bytes: the origin is not behaving like S3. Never
		// serve bytes that disagree with what this version was recorded as.
		// (Peers that streamed them from this home check the CID they know
		// too; one that knows none takes the origin's word, as this node.)
		return nil, fmt.Errorf("node: chunk %d of %s/%s: origin bytes do not match recorded %s: %w",
			i, v.Bucket, v.Key, req.CID, origin.ErrPreconditionFailed)
	}
	n.landedBlock(ctx, v, i, blk)
	return blk.Data(), nil
}

// hashOf is the hash v's chunks are addressed with: the version's own (a
// home node serves versions cut by other nodes' configuration).
func (n *Node) hashOf(v catalog.Version) content.Hash {
	if v.Hash == "" {
		return n.cfg.Hash
	}
	return content.Hash(v.Hash)
}

// landedBlock stores a chunk this node hashed or verified itself, records
// its CID and builds the manifest when the version's index is complete.
func (n *Node) landedBlock(ctx context.Context, v catalog.Version, i int64, b content.Block) {
	n.keepBlock(ctx, b)
	n.record(ctx, v, i, b.CID())
}

// record notes chunk i's CID in the version's index and builds the
// manifest when the index is complete.
func (n *Node) record(ctx context.Context, v catalog.Version, i int64, sum cid.Cid) {
	known, err := n.cat.PutChunk(ctx, v, i, sum)
	if err != nil {
		n.log.Warn("recording chunk failed", "bucket", v.Bucket, "key", v.Key, "chunk", i, "err", err)
		return
	}
	if known == v.NumChunks() {
		if _, err := n.ensureManifest(ctx, v); err != nil {
			n.log.Warn("building manifest failed", "bucket", v.Bucket, "key", v.Key, "err", err)
		}
	}
}

// keep stores a verified chunk; a store that is full or failing only costs
// a later refetch, so the error is logged, not returned.
func (n *Node) keep(ctx context.Context, c cid.Cid, data []byte) {
	n.stored(c, n.store.Put(ctx, c, data))
}

// blockPutter is a store that takes bytes already proven to match their
// CID (a content.Block) without hashing them again.
type blockPutter interface {
	PutBlock(ctx context.Context, b content.Block) error
}

// keepBlock stores a block this node hashed or verified itself, hashing
// it only once in all when the store accepts a content.Block.
func (n *Node) keepBlock(ctx context.Context, b content.Block) {
	if bp, ok := n.store.(blockPutter); ok {
		n.stored(b.CID(), bp.PutBlock(ctx, b))
		return
	}
	n.keep(ctx, b.CID(), b.Data())
}

func (n *Node) stored(c cid.Cid, err error) {
	if err != nil {
		n.log.Warn("storing chunk failed", "cid", c, "err", err)
		return
	}
	n.announce(c, true) // as soon as it lands, not after the whole object
}

// fromOrigin reads exactly req.Len bytes of the chunk, pinned to the
// version's ETag, holding one of MaxOriginFetches slots and, in a cluster,
// one of the version's ordered slots (see orderGate). It hashes the bytes
// as they arrive, and while it reads, peers asking this node for the chunk
// get them as they come (see arrivals).
func (n *Node) fromOrigin(ctx context.Context, req ChunkRequest) (content.Block, error) {
	asked := time.Now()
	if cl := n.cl; cl != nil {
		id := req.Version.ID()
		release, err := cl.order.acquire(ctx, string(id[:]), req.Index, cl.originPerVersion())
		if err != nil {
			return content.Block{}, err
		}
		defer release()
	}
	select {
	case n.originSem <- struct{}{}:
	case <-ctx.Done():
		return content.Block{}, ctx.Err()
	}
	defer func() { <-n.originSem }()
	v := req.Version
	asking := time.Now()
	rc, err := n.openOrigin(ctx, v, req.Off, req.Len)
	if err != nil {
		return content.Block{}, fmt.Errorf("node: origin range %d+%d of %s/%s: %w", req.Off, req.Len, v.Bucket, v.Key, err)
	}
	started := time.Now()
	key := flightKey(v, req.Index)
	a := n.arrivals.start(key, n.hashOf(v), req.Len)
	blk, err := n.arrivals.end(key, a, n.readOrigin(ctx, rc, a, req))
	if err != nil {
		return content.Block{}, err
	}
	n.m.origin.Add(1)
	n.log.Debug("origin chunk", "bucket", v.Bucket, "key", v.Key, "chunk", req.Index,
		"queued", asking.Sub(asked), "headers", started.Sub(asking), "read", time.Since(started))
	return blk, nil
}

// originPiece is the buffer an origin body is copied through into the
// chunk's arrival: each piece is hashed and passed on to waiting peers, so
// it bounds the latency added at the home, not the throughput.
const originPiece = 64 << 10

// ensureManifest builds, stores and records v's manifest if every chunk CID
// is known, and returns its CID.
func (n *Node) ensureManifest(ctx context.Context, v catalog.Version) (cid.Cid, error) {
	if c, err := n.cat.Manifest(ctx, v); err == nil {
		return c, nil
	}
	chunks, err := n.cat.Chunks(ctx, v)
	if err != nil {
		return cid.Undef, err
	}
	for i, c := range chunks {
		if !c.Defined() {
			return cid.Undef, fmt.Errorf("node: manifest of %s/%s: chunk %d not known yet", v.Bucket, v.Key, i)
		}
	}
	m := Manifest{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag, Size: v.Size,
		ChunkSize: v.ChunkSize, Hash: content.Hash(v.Hash), Chunks: chunks}
	c, b := m.CID()
	if err := n.store.Put(ctx, c, b); err != nil {
		return cid.Undef, fmt.Errorf("node: store manifest: %w", err)
	}
	n.announce(c, true)
	if err := n.cat.SetManifest(ctx, v, c); err != nil {
		return cid.Undef, err
	}
	n.publish(routing.ManifestRecord{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag, Size: v.Size,
		ChunkSize: v.ChunkSize, Hash: v.Hash, Manifest: c, Timestamp: n.now()})
	return c, nil
}

// Manifest returns the manifest of the current version of bucket/key and
// its CID, once every chunk of that version has been fetched (otherwise an
// error wrapping catalog.ErrNotFound).
func (n *Node) Manifest(ctx context.Context, bucket, key string) (Manifest, cid.Cid, error) {
	o, err := n.head(ctx, bucket, key)
	if err != nil {
		return Manifest{}, cid.Undef, mapErr("manifest", err)
	}
	v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
	c, err := n.cat.Manifest(ctx, v)
	if errors.Is(err, catalog.ErrNotFound) && v.NumChunks() == 0 {
		c, err = n.ensureManifest(ctx, v)
	}
	if err != nil {
		return Manifest{}, cid.Undef, fmt.Errorf("node: manifest of %s/%s: %w", bucket, key, err)
	}
	b, err := n.store.Get(ctx, c)
	if err != nil {
		return Manifest{}, cid.Undef, fmt.Errorf("node: manifest block %s: %w", c, err)
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return Manifest{}, cid.Undef, err
	}
	return m, c, nil
}
