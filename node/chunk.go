package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/origin"
)

// The journey of a chunk. Every read of a chunk, by the node's own readers
// (GetObject, Pin, Prefetch), by a peer that asks this node as the
// chunk's home (PeerHandler), or by home read-ahead, goes through chunk
// and fetch below:
//
//  1. the chunk index (catalog) gives the chunk's CID, if this node has
//     seen the chunk;
//  2. the block store serves it if it holds it (a memory or disk hit);
//  3. otherwise the caller joins the chunk's flight, one per chunk and
//     role on this node: concurrent readers of a chunk share one fetch,
//     which goes on until the last of them has left. The role comes from
//     one placement snapshot (package placement): this node is the chunk's home
//     (it was asked as the home, or comes first in the order), or it
//     forwards (asks the homes first);
//  4. inside the flight, fetch tries the sources in order: the store again
//     (a flight that ended a moment ago may have landed it), the CID's
//     providers (sources.go; when the CID is unknown, the version's
//     manifest record may name it, manifests.go), the chunk's homes in
//     placement order up to this node's own place (forwarding only), and
//     the origin (origin.go) — read only by a home flight: a forwarding
//     flight that reaches its own place joins the chunk's home flight, so
//     one node reads a chunk from the origin at most once however it was
//     asked;
//  5. what arrived is kept: stored, announced, and its CID recorded
//     (land); a completed version gets its manifest.
//
// Bytes are verified once per node, where they enter it: the store checks
// what it reads back, transfer what it receives from a peer, the origin
// fetcher hashes what it reads (a content.Block proves the match, so the
// store does not hash again).

// chunkReq names one chunk of one version and what is known of it.
type chunkReq struct {
	v        catalog.Version
	i        int64
	off, len int64   // where the chunk lies in the object
	cid      cid.Cid // cid.Undef until known
}

func (n *Node) request(v catalog.Version, i int64) chunkReq {
	off := i * v.ChunkSize
	return chunkReq{v: v, i: i, off: off, len: min(v.ChunkSize, v.Size-off), cid: cid.Undef}
}

// chunkData is a chunk's bytes (read-only) and the CID they match.
type chunkData struct {
	cid  cid.Cid
	data []byte
	src  Source // where the flight found it
}

// Source is where a chunk read found the bytes (warm-up jobs report their
// progress by source).
type Source string

// Sources of a chunk.
const (
	SourceCached Source = "cached" // this node's store
	SourcePeer   Source = "peer"   // a provider or the chunk's home
	SourceOrigin Source = "origin" // read from the origin by this node
)

// chunkTicket is a hold on a chunk's flight.
type chunkTicket = ticket[chunkData, *originfetch.Arrival]

// access says who reads a chunk and how.
type access struct {
	// asHome: a peer asked this node as the chunk's home (or a home
	// read-ahead): never forwarded to another home, so requests between
	// nodes whose member lists disagree cannot loop.
	asHome bool
	// borrow: the caller gives a store buffer back with release.
	borrow bool
	// ahead: serving the chunk as its home starts the home's read-ahead
	// (not for the read-ahead's own fetches).
	ahead bool
	// bounded: a client waits for the chunk at most OriginWait (the first
	// chunk of a GET, before the response has begun).
	bounded bool
}

// errShortChunk: a source returned the wrong number of bytes.
var errShortChunk = errors.New("node: chunk has the wrong length")

func noRelease() {}

// chunkRead is where steps 1-3 of a chunk's journey left it: a local hit,
// or a ticket for the chunk's flight.
type chunkRead struct {
	hit     chunkData
	release func()       // gives a borrowed hit back; never nil
	t       *chunkTicket // nil on a hit; the caller leaves it
	place   placement.Placement
	home    bool // this node reads the chunk as its home
}

// chunk runs steps 1-3 of the journey: a local hit is returned at once;
// otherwise the caller gets a ticket for the chunk's flight, to wait on or
// to follow while the bytes arrive.
func (n *Node) chunk(ctx context.Context, v catalog.Version, i int64, how access) (chunkRead, error) {
	req := n.request(v, i)
	// 1. The chunk index.
	req.cid = n.knownCID(ctx, req)
	// 2. The store.
	if d, release, ok := n.fromStore(ctx, req, how.borrow); ok {
		n.m.local.Add(1)
		r := chunkRead{hit: d, release: release}
		if n.cl != nil {
			r.place = n.snapshot()
			r.home = how.asHome || r.place.HomeOf(v, i)
			n.served(r, how, v, i)
		}
		return r, nil
	}
	// 3. The flight.
	r := chunkRead{release: noRelease, place: n.snapshot()}
	r.home = how.asHome || r.place.HomeOf(v, i)
	t, err := n.joinFlight(req, r.place, r.home)
	if err != nil {
		return chunkRead{}, err
	}
	if t.shared {
		n.m.shared.Add(1)
	}
	r.t = t
	return r, nil
}

// readChunk is the whole journey for a caller that waits for the bytes.
// release gives a borrowed buffer back (never nil).
func (n *Node) readChunk(ctx context.Context, v catalog.Version, i int64, how access) (chunkData, func(), error) {
	r, err := n.chunk(ctx, v, i, how)
	if err != nil {
		return chunkData{}, noRelease, err
	}
	if r.t == nil {
		return r.hit, r.release, nil
	}
	var d chunkData
	if how.bounded {
		d, err = r.t.waitAtMost(ctx, n.cfg.OriginWait)
		err = n.waitedTooLong(err)
	} else {
		d, err = r.t.wait(ctx)
	}
	if err == nil {
		n.served(r, how, v, i)
	}
	return d, noRelease, err
}

// served is called once a caller has chunk i: a home that served one of
// its chunks fetches its next own chunks ahead (readahead.go).
func (n *Node) served(r chunkRead, how access, v catalog.Version, i int64) {
	if r.home && how.ahead && n.cl != nil {
		n.homeReadAhead(r.place, v, i)
	}
}

// chunkFlightKey is the flight key of chunk i of v in a role. A home flight
// never waits on a forwarding one (it does not forward), so nodes whose
// member lists disagree cannot deadlock each other; a forwarding flight
// may join the home flight of its chunk.
func chunkFlightKey(v catalog.Version, i int64, home bool) string {
	id := v.ID()
	b := binary.BigEndian.AppendUint64(id[:], uint64(i))
	if home {
		b = append(b, 'h')
	}
	return string(b)
}

// joinFlight joins (or starts) the flight of req's chunk in its role.
func (n *Node) joinFlight(req chunkReq, place placement.Placement, home bool) (*chunkTicket, error) {
	return n.chunks.join(chunkFlightKey(req.v, req.i, home), func(ctx context.Context, publish func(*originfetch.Arrival)) (chunkData, error) {
		return n.fetch(ctx, req, place, home, publish)
	})
}

// fetch is step 4 and 5 of the journey: it runs in the chunk's flight and
// tries the sources in order (see the top of this file). A version proven
// false (verify.go) is read from the origin only: no manifest, no
// provider, no home.
func (n *Node) fetch(ctx context.Context, req chunkReq, place placement.Placement, home bool, publish func(*originfetch.Arrival)) (chunkData, error) {
	distrusted := n.trust.isDistrusted(req.v)
	if !req.cid.Defined() || distrusted {
		// Recorded by a flight that ended since the caller looked, or
		// named by the version's manifest in the cluster. (A version
		// proven false lost its index: what the caller saw is void.)
		req.cid = n.knownCID(ctx, req)
		if !req.cid.Defined() && n.cl != nil && !distrusted {
			req.cid = n.cidFromManifest(ctx, req, !home)
		}
	}
	if d, _, ok := n.fromStore(ctx, req, false); ok {
		n.m.local.Add(1)
		return d, nil
	}
	if !distrusted {
		if blk, ok := n.fromProviders(ctx, req); ok {
			// The bytes match the CID the manifest named; the manifest's
			// checksum of the chunk (confirmed by the origin) tells
			// whether that CID is the origin's.
			if n.sumAgrees(ctx, req, blk) {
				n.m.peer.Add(1)
				n.keep(ctx, blk)
				if n.trust.isDistrusted(req.v) {
					// Proven false while it landed: not kept, and the
					// caller gets the origin's bytes.
					_ = n.store.Delete(ctx, blk.CID())
					return n.fetch(ctx, req, place, home, publish)
				}
				n.spotCheck(place, req, blk.CID(), n.trust.supplierOf(req.v, req.i))
				return chunkData{blk.CID(), blk.Data(), SourcePeer}, nil
			}
			distrusted, req.cid = true, cid.Undef
		}
		if err := ctx.Err(); err != nil {
			return chunkData{}, err
		}
	}
	if !home {
		if !distrusted {
			if blk, from, ok := n.fromHomes(ctx, req, place); ok {
				n.m.home.Add(1)
				n.land(ctx, req, blk, from)
				n.spotCheck(place, req, blk.CID(), from)
				return chunkData{blk.CID(), blk.Data(), SourcePeer}, nil
			}
			if err := ctx.Err(); err != nil {
				return chunkData{}, err
			}
		}
		// This node's own place in the order: it reads the chunk as its
		// home, in the one flight that also serves peers asking for it.
		t, err := n.joinFlight(req, place, true)
		if err != nil {
			return chunkData{}, err
		}
		return t.wait(ctx)
	}
	if n.trust.isDistrusted(req.v) {
		req.cid = n.knownCID(ctx, req) // the index may have been dropped since
	}
	blk, err := n.fromOrigin(ctx, req, place, publish)
	if err != nil {
		return chunkData{}, err
	}
	n.land(ctx, req, blk, "")
	return chunkData{blk.CID(), blk.Data(), SourceOrigin}, nil
}

// knownCID is the chunk's CID from the chunk index, or cid.Undef.
func (n *Node) knownCID(ctx context.Context, req chunkReq) cid.Cid {
	c, err := n.cat.Chunk(ctx, req.v, req.i)
	switch {
	case err == nil:
		return c
	case !errors.Is(err, catalog.ErrNotFound) && ctx.Err() == nil:
		n.log.Warn("chunk index lookup failed; fetching", "bucket", req.v.Bucket, "key", req.v.Key, "chunk", req.i, "err", err)
	}
	return cid.Undef
}

// fromStore reads a chunk whose CID is known from the block store (the
// store verifies what it reads; a corrupt block is dropped and refetched).
// With borrow the buffer is lent (release gives it back).
func (n *Node) fromStore(ctx context.Context, req chunkReq, borrow bool) (chunkData, func(), bool) {
	if !req.cid.Defined() {
		return chunkData{}, noRelease, false
	}
	var (
		data    []byte
		release = noRelease
		err     error
	)
	if borrow {
		data, release, err = n.store.Borrow(ctx, req.cid)
	} else {
		data, err = n.store.Get(ctx, req.cid)
	}
	if err != nil {
		return chunkData{}, noRelease, false // not found, or dropped as corrupt: refetch
	}
	if int64(len(data)) != req.len {
		release()
		n.log.Warn("stored chunk has wrong length; refetching", "cid", req.cid, "len", len(data), "want", req.len)
		return chunkData{}, noRelease, false
	}
	return chunkData{req.cid, data, SourceCached}, release, true
}

// land keeps a chunk this node hashed or verified itself, from a home
// (from) or the origin (from == ""), and records its CID and, when the
// origin offers a full-object CRC, the chunk's CRC under that algorithm.
// When the version's index is complete, completed checks it against the
// origin and builds its manifest (verify.go).
func (n *Node) land(ctx context.Context, req chunkReq, b content.Block, from peer.ID) {
	v := req.v
	if from != "" && n.trust.isDistrusted(v) {
		return // proven false while this chunk was on its way: not kept
	}
	n.keep(ctx, b)
	var sum catalog.Sum
	if check := n.originCheckOf(ctx, v); check.alg != SumNone {
		sum = catalog.Sum{Alg: check.alg, Value: chunkSum(check.alg, b.Data())}
	}
	known, err := n.cat.PutChunkSum(ctx, v, req.i, b.CID(), sum)
	if err != nil {
		n.log.Warn("recording chunk failed", "bucket", v.Bucket, "key", v.Key, "chunk", req.i, "err", err)
		return
	}
	if from != "" {
		if n.trust.isDistrusted(v) {
			// Proven false meanwhile (poison marks the version before it
			// drops the index, so one of the two drops this record).
			_ = n.cat.DropVersion(ctx, v)
			_ = n.store.Delete(ctx, b.CID())
			return
		}
		n.trust.supplied(v, req.i, from)
	} else {
		n.judgeAgainstOrigin(v, req.i, b.CID())
	}
	if known == v.NumChunks() {
		n.completed(ctx, v)
	}
}

// keep stores a verified block and announces it as soon as it lands (not
// after the whole object). A store that is full or failing only costs a
// later refetch, so the error is logged, not returned.
func (n *Node) keep(ctx context.Context, b content.Block) {
	if err := n.store.PutBlock(ctx, b); err != nil {
		n.log.Warn("storing chunk failed", "cid", b.CID(), "err", err)
		return
	}
	n.announce(b.CID(), true)
}

// hashOf is the hash v's chunks are addressed with: the version's own (a
// home node serves versions cut by other nodes' configuration).
func (n *Node) hashOf(v catalog.Version) content.Hash {
	if v.Hash == "" {
		return n.cfg.Hash
	}
	return content.Hash(v.Hash)
}

// waitedTooLong turns a client's ended wait (errWaitBound) into what the
// client is told: the service is unavailable, try again shortly. Other
// errors pass as they are.
func (n *Node) waitedTooLong(err error) error {
	if !errors.Is(err, errWaitBound) {
		return err
	}
	n.m.clientWaits.Add(1)
	return gateway.WithRetryAfter(fmt.Errorf("node: no answer from the origin in time: %w: %w", err, origin.ErrUnavailable), originRetryAfter)
}

// errOriginMismatch: the origin's bytes for a version differ from what the
// version was recorded as.
func errOriginMismatch(req chunkReq) error {
	return fmt.Errorf("node: chunk %d of %s/%s: origin bytes do not match recorded %s: %w",
		req.i, req.v.Bucket, req.v.Key, req.cid, origin.ErrPreconditionFailed)
}
