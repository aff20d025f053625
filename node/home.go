package node

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
)

// Home nodes. Every chunk (object version ID + index) and every object key
// has a home node chosen by rendezvous (highest-random-weight) hashing over
// this node and its live members: each candidate p gets the weight
// mix(H(seed) xor F(p)), and candidates are tried in decreasing weight.
// Every node with the same member list computes the same order, adding or
// removing a node moves only the seeds it wins or held, and the chunks of one
// object spread over all nodes. H is SHA-256 (seeds are attacker-influenced
// object names), F is FNV-1a of the peer ID bytes, and mix is the
// SplitMix64 finalizer, a bijection that spreads every input bit.

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

// rendezvous returns the k candidates of highest weight for seed among self
// and members, highest first (ties, which need a 64-bit collision, broken by
// peer ID). Duplicates and self among members are ignored.
func rendezvous(seed []byte, self peer.ID, members []peer.ID, k int) []peer.ID {
	type cand struct {
		p peer.ID
		w uint64
	}
	sh := seedHash(seed)
	top := make([]cand, 0, k+1)
	consider := func(p peer.ID) {
		c := cand{p, mix64(sh ^ peerHash(p))}
		i := len(top)
		for i > 0 && (top[i-1].w < c.w || top[i-1].w == c.w && top[i-1].p > c.p) {
			i--
		}
		if i >= k {
			return
		}
		for _, t := range top {
			if t.p == p {
				return
			}
		}
		top = slices.Insert(top, i, c)
		if len(top) > k {
			top = top[:k]
		}
	}
	consider(self)
	for _, p := range members {
		if p != self && p != "" {
			consider(p)
		}
	}
	out := make([]peer.ID, len(top))
	for i, c := range top {
		out[i] = c.p
	}
	return out
}

// chunkHomes returns chunk i of v's first k home candidates now (see
// chunkHomes), penalized members passed over.
func (cl *cluster) chunkHomes(v catalog.Version, i int64, k int) []peer.ID {
	return chunkHomes(v, i, cl.self, cl.Members.Members(), cl.Transfer.Penalized, k)
}

// homeMembers returns the members eligible as home nodes now: the live
// members the transfer client has not penalized. A member that just
// stalled, failed or lied (a hung or partitioned peer keeps its
// connections open, so it stays in the member list) is passed over for the
// penalty as if it had left: the next candidate in rendezvous order takes
// its place, instead of every request for its chunks waiting out a stall
// on it first.
func (cl *cluster) homeMembers() []peer.ID {
	members := cl.Members.Members()
	out := make([]peer.ID, 0, len(members))
	for _, p := range members {
		if !cl.Transfer.Penalized(p) {
			out = append(out, p)
		}
	}
	return out
}

// chunkSeed is a chunk's rendezvous seed: version ID || index (big endian).
func chunkSeed(v catalog.Version, i int64) []byte { return []byte(flightKey(v, i)) }

// Chunk homes are balanced: the chunks of a version are cut into windows
// of n consecutive chunks (n: this node and its distinct members), each
// window's rendezvous order over all n nodes (seed: version ID || 'w' ||
// window) is a permutation, and chunk i's candidates start at position
// i mod n of its window's order and walk on cyclically. So every node is
// the first home of exactly one chunk per window, consecutive chunks of
// a read have distinct homes, and no home carries several times the
// uploads of another (per-chunk rendezvous gave the busiest of 8 homes
// 12-13 of 64 chunks, each sent to 7 peers through one uplink). Members
// the caller skips (penalized) are passed over in place, so their chunks
// move to the next node of the order and no other chunk moves. A change of
// the member count re-cuts the windows (nodes then fetch through the new
// homes; a version's completed chunks are found through its manifest).

// windowSeed is the rendezvous seed of window w of v's chunks.
func windowSeed(v catalog.Version, w int64) []byte {
	id := v.ID()
	b := append(id[:], 'w')
	return binary.BigEndian.AppendUint64(b, uint64(w))
}

// chunkHomes returns up to k home candidates of chunk i of v, best first,
// among self and members, leaving out the members skip reports (self is
// never skipped; skip may be nil).
func chunkHomes(v catalog.Version, i int64, self peer.ID, members []peer.ID, skip func(peer.ID) bool, k int) []peer.ID {
	n := 1
	seen := make(map[peer.ID]bool, len(members)+1)
	seen[self] = true
	for _, p := range members {
		if p != "" && !seen[p] {
			seen[p] = true
			n++
		}
	}
	order := rendezvous(windowSeed(v, i/int64(n)), self, members, n)
	out := make([]peer.ID, 0, min(k, n))
	for j := range n {
		if len(out) >= k {
			break
		}
		p := order[(int(i%int64(n))+j)%n]
		if p != self && skip != nil && skip(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// metaSeed is an object key's rendezvous seed.
func metaSeed(bucket, key string) []byte {
	b := make([]byte, 0, 2+len(bucket)+len(key))
	b = append(b, 'm', 0)
	b = append(b, bucket...)
	b = append(b, 0)
	return append(b, key...)
}

// Home request keys (the opaque keys of transfer Fetch and Meta).
//
// Chunk key (integers unsigned minimal varints, strings length-prefixed):
//
//	0x01 bucket key etag size chunkSize hash index
//
// Meta key:
//
//	0x02 bucket key
const (
	chunkKeyTag byte = 1
	metaKeyTag  byte = 2
)

// ErrBadKey: a home request key failed to decode or validate.
var ErrBadKey = errors.New("node: bad home request key")

// encodeChunkKey encodes the home request for chunk i of v.
func encodeChunkKey(v catalog.Version, i int64) []byte {
	b := make([]byte, 0, 1+len(v.Bucket)+len(v.Key)+len(v.ETag)+len(v.Hash)+8*binary.MaxVarintLen64)
	b = append(b, chunkKeyTag)
	for _, s := range []string{v.Bucket, v.Key, v.ETag} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(v.Size))
	b = binary.AppendUvarint(b, uint64(v.ChunkSize))
	b = binary.AppendUvarint(b, uint64(len(v.Hash)))
	b = append(b, v.Hash...)
	return binary.AppendUvarint(b, uint64(i))
}

// keyReader decodes home request keys; the first error sticks.
type keyReader struct {
	b   []byte
	err error
}

func (r *keyReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadKey, fmt.Sprintf(format, a...))
	}
}

func (r *keyReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail("%s: bad varint", what)
		return 0
	case n != uvarintLen(v):
		r.fail("%s: non-minimal varint", what)
		return 0
	case v > max:
		r.fail("%s: %d exceeds %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *keyReader) str(what string, max uint64) string {
	n := r.uvarint(what+" length", max)
	if r.err != nil {
		return ""
	}
	if uint64(len(r.b)) < n {
		r.fail("%s: truncated", what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeChunkKey parses and validates a chunk key: bounded fields, minimal
// varints, a supported hash, a chunk size the node accepts, an index inside
// the version, and nothing trailing.
func decodeChunkKey(b []byte) (catalog.Version, int64, error) {
	if len(b) == 0 || b[0] != chunkKeyTag {
		return catalog.Version{}, 0, fmt.Errorf("%w: not a chunk key", ErrBadKey)
	}
	r := &keyReader{b: b[1:]}
	var v catalog.Version
	v.Bucket = r.str("bucket", maxBucketLen)
	v.Key = r.str("key", maxKeyLen)
	v.ETag = r.str("etag", maxETagLen)
	v.Size = int64(r.uvarint("size", maxManifestChunks*maxManifestChunkSize))
	v.ChunkSize = int64(r.uvarint("chunk size", maxChunkSize))
	v.Hash = r.str("hash", maxHashLen)
	i := int64(r.uvarint("index", maxManifestChunks))
	switch {
	case r.err != nil:
		return catalog.Version{}, 0, r.err
	case len(r.b) != 0:
		return catalog.Version{}, 0, fmt.Errorf("%w: %d trailing bytes", ErrBadKey, len(r.b))
	case v.Bucket == "":
		return catalog.Version{}, 0, fmt.Errorf("%w: empty bucket", ErrBadKey)
	case v.ChunkSize < minChunkSize:
		return catalog.Version{}, 0, fmt.Errorf("%w: chunk size %d below %d", ErrBadKey, v.ChunkSize, minChunkSize)
	case i >= v.NumChunks():
		return catalog.Version{}, 0, fmt.Errorf("%w: chunk %d of %d", ErrBadKey, i, v.NumChunks())
	}
	if _, err := content.ParseHash(v.Hash); err != nil {
		return catalog.Version{}, 0, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return v, i, nil
}

// encodeMetaKey encodes the home request for bucket/key's metadata.
func encodeMetaKey(bucket, key string) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(bucket)+len(key))
	b = append(b, metaKeyTag)
	b = binary.AppendUvarint(b, uint64(len(bucket)))
	b = append(b, bucket...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

func decodeMetaKey(b []byte) (bucket, key string, err error) {
	if len(b) == 0 || b[0] != metaKeyTag {
		return "", "", fmt.Errorf("%w: not a meta key", ErrBadKey)
	}
	r := &keyReader{b: b[1:]}
	bucket = r.str("bucket", maxBucketLen)
	key = r.str("key", maxKeyLen)
	switch {
	case r.err != nil:
		return "", "", r.err
	case len(r.b) != 0:
		return "", "", fmt.Errorf("%w: %d trailing bytes", ErrBadKey, len(r.b))
	case bucket == "":
		return "", "", fmt.Errorf("%w: empty bucket", ErrBadKey)
	}
	return bucket, key, nil
}
