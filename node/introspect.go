package node

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/transfer"
)

// Introspection answers from live state: which nodes hold the chunks of an
// object (asked now, by chunk: each member checks its chunk index and its
// store; a DHT provider record alone is never reported, it may be 48 h
// old), what share of the objects under a prefix is cached, and how the
// transfer client sees each member.

// maxHasRange bounds the chunks of one "has" request (the answer lists one
// CID string, about 60 bytes, per chunk and must fit transfer.MaxMetaSize).
const maxHasRange = 512

// ChunkPlace is one chunk of a Where answer.
type ChunkPlace struct {
	Index   int64    `json:"index"`
	Size    int64    `json:"size"`
	CID     string   `json:"cid,omitempty"`
	Holders []string `json:"holders"` // peer IDs (or "local") holding it now
	Homes   []string `json:"homes"`   // its home candidates now, best first
}

// WhereResult is where every chunk of an object's current version is.
type WhereResult struct {
	Bucket    string       `json:"bucket"`
	Key       string       `json:"key"`
	ETag      string       `json:"etag"`
	Size      int64        `json:"size"`
	ChunkSize int64        `json:"chunk_size"`
	Self      string       `json:"self"`
	Asked     []string     `json:"asked"`              // members that answered
	Unreached []string     `json:"unreached,omitzero"` // members that did not
	Chunks    []ChunkPlace `json:"chunks"`
	// CachedHere and CachedCluster are the shares of the object's bytes
	// held by this node and by at least one node (0..1).
	CachedHere    float64 `json:"cached_here"`
	CachedCluster float64 `json:"cached_cluster"`
	MinCopies     int     `json:"min_copies"` // copies of the least-held chunk
}

// Where asks this node and every live member which chunks of bucket/key's
// current version each holds.
func (n *Node) Where(ctx context.Context, bucket, key string) (WhereResult, error) {
	o, err := n.head(ctx, bucket, key)
	if err != nil {
		return WhereResult{}, mapErr("where", err)
	}
	v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
	place := n.snapshot()
	res := WhereResult{Bucket: bucket, Key: key, ETag: o.ETag, Size: o.Size, ChunkSize: v.ChunkSize, Self: n.selfName()}
	nc := v.NumChunks()
	res.Chunks = make([]ChunkPlace, nc)
	here := n.holdsChunks(ctx, v, 0, nc)
	for i := range nc {
		cp := ChunkPlace{Index: i, Size: n.request(v, i).len, Holders: []string{}}
		if c := here[i]; c != "" {
			cp.CID = c
			cp.Holders = append(cp.Holders, res.Self)
		}
		if place.Alone() {
			cp.Homes = []string{res.Self}
		} else {
			for _, h := range place.ChunkHomes(v, i, place.Size()) {
				cp.Homes = append(cp.Homes, h.String())
			}
		}
		res.Chunks[i] = cp
	}
	held, asked, unreached := n.askHolders(ctx, v, nc)
	res.Asked, res.Unreached = asked, unreached
	for p, cids := range held {
		for i, c := range cids {
			if c == "" {
				continue
			}
			res.Chunks[i].Holders = append(res.Chunks[i].Holders, p)
			if res.Chunks[i].CID == "" {
				res.Chunks[i].CID = c
			}
		}
	}
	var hereB, anyB int64
	res.MinCopies = -1
	for i := range res.Chunks {
		cp := &res.Chunks[i]
		sort.Strings(cp.Holders)
		if slices.Contains(cp.Holders, res.Self) {
			hereB += cp.Size
		}
		if len(cp.Holders) > 0 {
			anyB += cp.Size
		}
		if res.MinCopies < 0 || len(cp.Holders) < res.MinCopies {
			res.MinCopies = len(cp.Holders)
		}
	}
	res.MinCopies = max(res.MinCopies, 0)
	if o.Size > 0 {
		res.CachedHere, res.CachedCluster = float64(hereB)/float64(o.Size), float64(anyB)/float64(o.Size)
	}
	return res, nil
}

// holdsChunks returns, for chunks [from, to) of v, the CID of each chunk
// this node's store holds ("" for the others).
func (n *Node) holdsChunks(ctx context.Context, v catalog.Version, from, to int64) []string {
	out := make([]string, to-from)
	for i := from; i < to; i++ {
		c := n.knownCID(ctx, n.request(v, i))
		if !c.Defined() {
			continue
		}
		if ok, _ := n.store.Has(ctx, c); ok {
			out[i-from] = c.String()
		}
	}
	return out
}

// askHolders asks every live member which of v's nc chunks it holds:
// peer -> CID per chunk ("" where not held).
func (n *Node) askHolders(ctx context.Context, v catalog.Version, nc int64) (held map[string][]string, asked, unreached []string) {
	held = make(map[string][]string)
	if n.cl == nil || nc == 0 {
		return held, nil, nil
	}
	key := encodeChunkKey(v, 0)
	for _, p := range n.cl.Members.Members() {
		all := make([]string, 0, nc)
		ok := true
		for from := int64(0); from < nc && ok; from += maxHasRange {
			to := min(nc, from+maxHasRange)
			var part []string
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			err := n.control(actx, p, ctlReq{Op: opHas, Chunk: key, From: from, To: to}, &part)
			cancel()
			if err != nil || int64(len(part)) != to-from {
				ok = false
				break
			}
			all = append(all, part...)
		}
		if !ok {
			unreached = append(unreached, p.String())
			continue
		}
		asked = append(asked, p.String())
		held[p.String()] = all
	}
	return held, asked, unreached
}

// CachedObject is one object of a Cached answer.
type CachedObject struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
	// Here and Cluster are the shares of the object's bytes held by this
	// node and by at least one live member or this node (0..1).
	Here    float64 `json:"cached_here"`
	Cluster float64 `json:"cached_cluster"`
}

// maxCachedListed bounds the objects one Cached answer lists (each costs a
// request to every member).
const maxCachedListed = 1000

// Cached lists the objects under bucket/prefix this node's catalog knows
// (at most maxCachedListed), with the share of each cached here and in the
// cluster (asked live).
func (n *Node) Cached(ctx context.Context, bucket, prefix string) ([]CachedObject, error) {
	var objs []catalog.Object
	if err := n.cat.Objects(ctx, bucket, prefix, func(o catalog.Object) bool {
		objs = append(objs, o)
		return len(objs) < maxCachedListed
	}); err != nil {
		return nil, mapErr("cached", err)
	}
	out := make([]CachedObject, 0, len(objs))
	for _, o := range objs {
		v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
		nc := v.NumChunks()
		here := n.holdsChunks(ctx, v, 0, nc)
		held, _, _ := n.askHolders(ctx, v, nc)
		var hereB, anyB int64
		for i := range nc {
			size := n.request(v, i).len
			any := here[i] != ""
			if any {
				hereB += size
			}
			for _, cids := range held {
				if cids[i] != "" {
					any = true
				}
			}
			if any {
				anyB += size
			}
		}
		co := CachedObject{Key: o.Key, ETag: o.ETag, Size: o.Size}
		if o.Size > 0 {
			co.Here, co.Cluster = float64(hereB)/float64(o.Size), float64(anyB)/float64(o.Size)
		} else {
			co.Here, co.Cluster = 1, 1
		}
		out = append(out, co)
	}
	return out, nil
}

// PeerView is one member as this node sees it.
type PeerView struct {
	ID         string        `json:"id"`
	Addr       string        `json:"addr,omitempty"`
	RTT        time.Duration `json:"rtt_ns"`
	Throughput float64       `json:"throughput_bps"` // measured transfer rate (EWMA), 0: not measured
	InFlight   int           `json:"in_flight"`
	Penalized  bool          `json:"penalized"`
	PenaltyEnd time.Time     `json:"penalized_until,omitzero"`
	// BytesIn and BytesOut are the chunk bytes this node received from the
	// member and sent to it since this node started; ReceiveRate is the
	// rate BytesIn arrived at (bytes/s over the time spent reading them,
	// home fetch-throughs included), 0 if none did.
	BytesIn     int64   `json:"bytes_in"`
	BytesOut    int64   `json:"bytes_out"`
	ReceiveRate float64 `json:"receive_rate_bps"`
	// BlocksHeld and BytesHeld are what the member's store holds (chunks
	// and manifests), asked now; -1 when it did not answer.
	BlocksHeld int64 `json:"blocks_held"`
	BytesHeld  int64 `json:"bytes_held"`
}

// heldAnswer is a member's answer to opHeld.
type heldAnswer struct {
	Blocks int64 `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// maxPeerAsks bounds the members asked at once by Peers.
const maxPeerAsks = 16

// Peers lists the live members with their link and transfer figures, and
// asks each (at most maxPeerAsks at once, each within askTimeout) what its
// store holds.
func (n *Node) Peers(ctx context.Context) ([]PeerView, error) {
	if n.cl == nil {
		return []PeerView{}, nil
	}
	conn, _ := n.cl.Members.(interface {
		Conn(peer.ID) (string, time.Duration)
	})
	info, _ := n.cl.Transfer.(interface {
		Peer(peer.ID) transfer.PeerInfo
	})
	out := []PeerView{}
	members := n.cl.Members.Members()
	held := make([]heldAnswer, len(members))
	var g errgroup.Group
	g.SetLimit(maxPeerAsks)
	for i, p := range members {
		g.Go(func() error {
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			if err := n.control(actx, p, ctlReq{Op: opHeld}, &held[i]); err != nil {
				held[i] = heldAnswer{Blocks: -1, Bytes: -1}
			}
			return nil
		})
	}
	_ = g.Wait()
	for i, p := range members {
		pv := PeerView{ID: p.String(), Penalized: n.cl.Transfer.Penalized(p),
			BlocksHeld: held[i].Blocks, BytesHeld: held[i].Bytes}
		if conn != nil {
			pv.Addr, pv.RTT = conn.Conn(p)
		}
		if info != nil {
			pi := info.Peer(p)
			pv.Throughput, pv.InFlight = pi.Throughput, pi.InFlight
			pv.BytesIn, pv.BytesOut, pv.ReceiveRate = pi.BytesIn, pi.BytesOut, pi.ReceiveRate
			if pi.PenalizedUntil.After(n.now()) {
				pv.PenaltyEnd = pi.PenalizedUntil
			}
		}
		out = append(out, pv)
	}
	return out, ctx.Err()
}

// errNotChunk0 guards the "has" request's version key.
var errNotChunk0 = fmt.Errorf("%w: has request must name chunk 0", ErrBadKey)
