package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/transfer"
)

// The sources of a chunk the store does not hold, in the order fetch tries
// them: the CID's providers, the chunk's homes, the origin. Each returns
// a content.Block: bytes proven to match their CID.

// fromProviders fetches a chunk whose CID is known from the peers that
// announced it, several at once (transfer splits the chunk between them
// and verifies what arrives). It reports false when there are none or none
// delivered.
func (n *Node) fromProviders(ctx context.Context, req chunkReq) (content.Block, bool) {
	cl := n.cl
	if cl == nil || !req.cid.Defined() {
		return content.Block{}, false
	}
	c := req.cid
	fctx, cancel := context.WithTimeout(ctx, n.cfg.Fetch.LookupTimeout)
	provs, err := cl.Router.FindProviders(fctx, c, n.cfg.Fetch.Providers)
	cancel()
	if err != nil || len(provs) == 0 {
		if err != nil && ctx.Err() == nil {
			n.log.Debug("finding providers failed", "cid", c, "err", err)
		}
		return content.Block{}, false
	}
	b, err := cl.Transfer.GetVerified(ctx, c, provs)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("providers could not deliver", "cid", c, "providers", len(provs), "err", err)
		}
		return content.Block{}, false
	}
	if int64(len(b.Data())) != req.len {
		n.log.Warn("providers delivered a chunk of the wrong length", "cid", c, "len", len(b.Data()), "want", req.len)
		return content.Block{}, false
	}
	return b, true
}

// fromHomes asks the chunk's homes, in placement order, to serve it (each
// fetches from the origin if needed, once for the whole cluster), up to
// this node's own place (from there on this node is the home) and at most
// HomeCandidates of them. A home that answers Busy is asked again for up
// to HomeBusyWait (askHome). A home that stalls costs the transfer client's
// stall timeout (it sends keep-alives while it works) and is penalized,
// so the chunks after it pass it over. The answer's CID must be the raw
// CID of the bytes under the version's hash, and equal to req.cid if known.
// It also returns the home that served it.
func (n *Node) fromHomes(ctx context.Context, req chunkReq, place placement.Placement) (content.Block, peer.ID, bool) {
	v := req.v
	// want carries the CID prefix (v1, raw, the version's hash) of this
	// version's chunks.
	want := content.Sum(content.Hash(v.Hash), nil)
	var key []byte
	for _, p := range placement.Before(place.ChunkHomes(v, req.i, n.cfg.Fetch.HomeCandidates), place.Self()) {
		if key == nil {
			key = encodeChunkKey(v, req.i)
		}
		b, err := n.askHome(ctx, p, key)
		if err != nil {
			if ctx.Err() != nil {
				return content.Block{}, "", false
			}
			n.log.Debug("home node could not serve chunk", "home", p, "bucket", v.Bucket, "key", v.Key, "chunk", req.i, "err", err)
			continue
		}
		// The bytes match b's CID (FetchVerified); that CID must also be
		// the raw CID under the version's hash, which its prefix tells
		// without hashing again.
		if int64(len(b.Data())) != req.len || b.CID().Prefix() != want.Prefix() ||
			(req.cid.Defined() && !b.CID().Equals(req.cid)) {
			n.log.Warn("home node sent a chunk that does not verify", "home", p, "bucket", v.Bucket, "key", v.Key, "chunk", req.i)
			continue
		}
		return b, p, true
	}
	return content.Block{}, "", false
}

// askHome asks home p for a chunk; while p answers Busy (its transfer
// server at its limit: alive, and reading the chunk for others) it asks
// again, backing off, for up to HomeBusyWait: going to the next candidate
// instead would read the chunk from the origin a second time.
func (n *Node) askHome(ctx context.Context, p peer.ID, key []byte) (content.Block, error) {
	tr := n.cl.Transfer
	b, err := tr.FetchVerified(ctx, p, key)
	wait := n.cfg.Fetch.HomeBusyWait
	if !errors.Is(err, transfer.ErrBusy) || wait <= 0 {
		return b, err
	}
	deadline := time.Now().Add(wait)
	backoff := homeBusyBackoff
	for errors.Is(err, transfer.ErrBusy) && time.Now().Before(deadline) {
		n.m.homeBusy.Add(1)
		// Full jitter: askers turned away together do not come back
		// together.
		t := time.NewTimer(time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return content.Block{}, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, homeBusyMaxBackoff)
		b, err = tr.FetchVerified(ctx, p, key)
	}
	return b, err
}

// The backoff between the asks of a busy home.
const (
	homeBusyBackoff    = 10 * time.Millisecond
	homeBusyMaxBackoff = 500 * time.Millisecond
)

// fromOrigin reads the chunk from the origin, pinned to the version's ETag,
// through the node's origin fetcher: one of its node-wide slots and, in a
// cluster, one of this node's share of the version's origin streams,
// lowest chunk index first. publish hands the fetch's arrival to the
// flight's joiners (cut-through) as soon as the origin answered.
func (n *Node) fromOrigin(ctx context.Context, req chunkReq, place placement.Placement, publish func(*originfetch.Arrival)) (content.Block, error) {
	v := req.v
	r := originfetch.Request{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag, Off: req.off, Len: req.len,
		Hash: n.hashOf(v), Index: req.i}
	if n.cl != nil {
		id := v.ID()
		r.Group, r.Limit = string(id[:]), place.OriginShare(n.cfg.Fetch.OriginStreams)
	}
	blk, err := n.origin.Fetch(ctx, r, publish)
	if err != nil {
		return content.Block{}, err
	}
	if req.cid.Defined() && !blk.CID().Equals(req.cid) {
		if from := n.trust.supplierOf(v, req.i); from != "" || n.trust.isDistrusted(v) {
			// The CID came from a peer (a manifest's publisher), or
			// from a version proven false since: the origin's bytes win.
			n.poison(ctx, v, fmt.Sprintf("chunk %d: the origin's bytes are not the CID a peer named", req.i), from)
			return blk, nil
		}
		// Same ETag, other bytes: the origin is not behaving like S3. Never
		// serve bytes that disagree with what this version was recorded as.
		// (Peers that streamed them from this home check the CID they know
		// too; one that knows none takes the origin's word, as this node.)
		return content.Block{}, errOriginMismatch(req)
	}
	return blk, nil
}

// homeAheadTimeout bounds one home read-ahead fetch.
const homeAheadTimeout = time.Minute
