// Package placement owns "who is home": for every chunk of an object
// version and every object key, the order in which the nodes of a cluster
// are its home candidates. The read path asks it, and so does anything
// that must agree with the read path on where a chunk belongs (replica
// targets, warm-up jobs, the scale simulation): they import it rather than
// compute homes their own way.
package placement

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
)

// Placement: who is the home of a chunk or an object key.
//
// Every chunk (object version ID + index) and every object key has a home
// node chosen by rendezvous (highest-random-weight) hashing over this node
// and its live members: each candidate p gets the weight
// mix(H(seed) xor F(p)), and candidates are tried in decreasing weight.
// Every node with the same member list computes the same order, adding or
// removing a node moves only the seeds it wins or held. H is SHA-256
// (seeds are attacker-influenced object names), F is FNV-1a of the peer ID
// bytes, and mix is the SplitMix64 finalizer, a bijection that spreads
// every input bit.
//
// Chunk homes are balanced: the chunks of a version are cut into windows
// of n consecutive chunks (n: this node and its distinct members), each
// window's rendezvous order over all n nodes (seed: version ID || 'w' ||
// window) is a permutation, and chunk i's candidates start at position
// i mod n of its window's order and walk on cyclically. So every node is
// the first home of exactly one chunk per window, consecutive chunks of a
// read have distinct homes, and no home carries several times the uploads
// of another (per-chunk rendezvous gave the busiest of 8 homes 12-13 of 64
// chunks, each sent to 7 peers through one uplink). A change of the member
// count re-cuts the windows (nodes then fetch through the new homes; a
// version's completed chunks are found through its manifest).
//
// Penalized members (they recently stalled, failed or lied: a hung or
// partitioned peer keeps its connections open, so it stays in the member
// list) are passed over in place, as if they had left: their chunks move
// to the next node of the order and no other chunk moves. This node is
// never passed over in its own placement.
//
// A Placement is a snapshot: one read of a chunk takes one and asks it
// every question ("am I home", "who comes next"), so the answers agree
// with each other even while members come and go.
type Placement struct {
	self  peer.ID
	nodes []candidate // self and the distinct live members, sorted by ID
	// skipped: the penalized members, passed over as homes.
	skipped map[peer.ID]bool
}

type candidate struct {
	id peer.ID
	h  uint64 // peerHash(id)
}

// New takes a snapshot over self and members; penalized (may be
// nil) reports the members to pass over.
func New(self peer.ID, members []peer.ID, penalized func(peer.ID) bool) Placement {
	p := Placement{self: self, nodes: make([]candidate, 0, len(members)+1)}
	p.nodes = append(p.nodes, candidate{self, peerHash(self)})
	for _, m := range members {
		if m == "" || m == self {
			continue
		}
		p.nodes = append(p.nodes, candidate{m, peerHash(m)})
		if penalized != nil && penalized(m) {
			if p.skipped == nil {
				p.skipped = make(map[peer.ID]bool)
			}
			p.skipped[m] = true
		}
	}
	slices.SortFunc(p.nodes, func(a, b candidate) int { return cmp.Compare(a.id, b.id) })
	p.nodes = slices.CompactFunc(p.nodes, func(a, b candidate) bool { return a.id == b.id })
	return p
}

// Self is the node the snapshot was taken for.
func (p Placement) Self() peer.ID { return p.self }

// Alone reports a placement with no other node: this node is the home of
// everything.
func (p Placement) Alone() bool { return len(p.nodes) <= 1 }

// Size is the number of nodes, penalized ones included.
func (p Placement) Size() int { return len(p.nodes) }

// Order returns every node in decreasing rendezvous weight for seed (ties,
// which need a 64-bit collision, broken by peer ID).
func (p Placement) Order(seed []byte) []peer.ID {
	sh := seedHash(seed)
	type cand struct {
		p peer.ID
		w uint64
	}
	cs := make([]cand, len(p.nodes))
	for i, n := range p.nodes {
		cs[i] = cand{n.id, mix64(sh ^ n.h)}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return cmp.Compare(a.p, b.p)
	})
	out := make([]peer.ID, len(cs))
	for i, c := range cs {
		out[i] = c.p
	}
	return out
}

func (p Placement) passedOver(id peer.ID) bool { return id != p.self && p.skipped[id] }

// ChunkHomes returns up to k home candidates of chunk i of v, best first,
// penalized members passed over.
func (p Placement) ChunkHomes(v catalog.Version, i int64, k int) []peer.ID {
	n := int64(len(p.nodes))
	return p.homesAt(p.Order(WindowSeed(v, i/n)), i%n, k)
}

// WindowHomes returns ChunkHomes(v, i, k) for every chunk i of window w
// (chunks w*n .. w*n+n-1, n the placement's size; entry j is chunk w*n+j,
// whether or not v has that many chunks), from one computation of the
// window's order. Callers that need the homes of many chunks (the scale
// simulation, over thousands of nodes) use it instead of sorting the
// nodes once per chunk.
func (p Placement) WindowHomes(v catalog.Version, w int64, k int) [][]peer.ID {
	n := int64(len(p.nodes))
	order := p.Order(WindowSeed(v, w))
	out := make([][]peer.ID, n)
	for pos := range n {
		out[pos] = p.homesAt(order, pos, k)
	}
	return out
}

// homesAt walks a window's order cyclically from position pos: up to k
// candidates, penalized members passed over.
func (p Placement) homesAt(order []peer.ID, pos int64, k int) []peer.ID {
	n := int64(len(order))
	out := make([]peer.ID, 0, min(int64(k), n))
	for j := range n {
		if len(out) >= k {
			break
		}
		c := order[(pos+j)%n]
		if !p.passedOver(c) {
			out = append(out, c)
		}
	}
	return out
}

// As returns the same snapshot seen from self, one of its nodes: the same
// order and the same penalized members, but "am I home" answered for self,
// which is never passed over. It reports false (and returns p) when self
// is not one of the snapshot's nodes. Every member of a cluster whose
// views agree takes this snapshot; the scale simulation uses As instead of
// building one snapshot per simulated node.
func (p Placement) As(self peer.ID) (Placement, bool) {
	if _, ok := slices.BinarySearchFunc(p.nodes, self, func(c candidate, id peer.ID) int { return cmp.Compare(c.id, id) }); !ok {
		return p, false
	}
	q := p
	q.self = self
	return q, true
}

// HomeOf reports whether this node is chunk i's home now: first among the
// candidates.
func (p Placement) HomeOf(v catalog.Version, i int64) bool {
	if p.Alone() {
		return true
	}
	return p.ChunkHomes(v, i, 1)[0] == p.self
}

// OwnInWindow returns, in order, the chunks of window w of v (chunks
// w*n .. w*n+n-1, n the placement's size) whose first home is this node.
func (p Placement) OwnInWindow(v catalog.Version, w int64) []int64 {
	n := int64(len(p.nodes))
	order := p.Order(WindowSeed(v, w))
	var out []int64
	for pos := range n {
		for j := range n {
			c := order[(pos+j)%n]
			if p.passedOver(c) {
				continue
			}
			if c == p.self {
				out = append(out, w*n+pos)
			}
			break
		}
	}
	return out
}

// OwnChunkBefore returns the last chunk before i, at most 2n back, whose
// first home is this node, or -1.
func (p Placement) OwnChunkBefore(v catalog.Version, i int64) int64 {
	n := int64(len(p.nodes))
	lo := max(0, i-2*n)
	for w := i / n; w >= lo/n; w-- {
		own := p.OwnInWindow(v, w)
		for k := len(own) - 1; k >= 0; k-- {
			if j := own[k]; j < i && j >= lo {
				return j
			}
		}
	}
	return -1
}

// OwnChunksAfter returns up to k chunks after i, at most 2nk ahead and
// inside v, whose first home is this node, in order.
func (p Placement) OwnChunksAfter(v catalog.Version, i int64, k int) []int64 {
	n := int64(len(p.nodes))
	hi := min(v.NumChunks()-1, i+2*n*int64(k))
	var out []int64
	for w := i / n; w <= hi/n && len(out) < k; w++ {
		for _, j := range p.OwnInWindow(v, w) {
			if j > i && j <= hi && len(out) < k {
				out = append(out, j)
			}
		}
	}
	return out
}

// MetaHomes returns up to k home candidates of bucket/key's metadata, best
// first, penalized members passed over.
func (p Placement) MetaHomes(bucket, key string, k int) []peer.ID {
	out := make([]peer.ID, 0, k)
	for _, c := range p.Order(MetaSeed(bucket, key)) {
		if len(out) >= k {
			break
		}
		if !p.passedOver(c) {
			out = append(out, c)
		}
	}
	return out
}

// MetaHomeOf reports whether this node is bucket/key's metadata home.
func (p Placement) MetaHomeOf(bucket, key string) bool {
	if p.Alone() {
		return true
	}
	return p.MetaHomes(bucket, key, 1)[0] == p.self
}

// Before returns the candidates that come before this node, at most k:
// the homes a node asks before it counts as the home itself.
func Before(cands []peer.ID, self peer.ID) []peer.ID {
	if i := slices.Index(cands, self); i >= 0 {
		return cands[:i]
	}
	return cands
}

// OriginShare is how many origin fetches of one version this node runs at
// once: total shared by the nodes of the cluster, at least one.
func (p Placement) OriginShare(total int) int {
	n := len(p.nodes)
	return max(1, (total+n-1)/n)
}

// seedHash is the first 8 bytes of SHA-256(seed).
func seedHash(seed []byte) uint64 {
	s := sha256.Sum256(seed)
	return binary.BigEndian.Uint64(s[:8])
}

func peerHash(p peer.ID) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// WindowSeed is the rendezvous seed of window w of v's chunks.
func WindowSeed(v catalog.Version, w int64) []byte {
	id := v.ID()
	b := append(id[:], 'w')
	return binary.BigEndian.AppendUint64(b, uint64(w))
}

// MetaSeed is an object key's rendezvous seed.
func MetaSeed(bucket, key string) []byte {
	b := make([]byte, 0, 2+len(bucket)+len(key))
	b = append(b, 'm', 0)
	b = append(b, bucket...)
	b = append(b, 0)
	return append(b, key...)
}
