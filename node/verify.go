package node

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/internal/integrity"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/origin"
)

// Tying versions learned from peers to the origin.
//
// A member of the cluster holds the swarm key and can lie: publish a
// manifest record naming chunks it made up, or, as a chunk's home, send
// bytes the origin never had under a CID it names itself. Content
// addressing alone cannot catch that (the bytes do match the CID the liar
// chose), so wherever the origin offers integrity data the node checks the
// version against it:
//
//   - S3's full-object CRCs (CRC64NVME, CRC32C, CRC32) combine across
//     chunks. A node records each chunk's CRC when it lands, and once it
//     knows them all checks that they combine to the origin's value; a
//     manifest learned from a peer carries its chunks' CRCs and is checked
//     the same way before any chunk is fetched through it, and every chunk
//     then received is checked against its CRC. So no forged manifest is
//     used, and a chunk forged under a true-looking manifest is refused.
//   - A full-object read of a version not verified yet is checked as the
//     chunks stream (the CRC, or an MD5 ETag of a single-part upload): the
//     last chunk is released to the client only if the whole matches, so a
//     client never gets complete wrong bytes; it gets a failed transfer.
//   - Where the origin offers nothing (and for ranged reads, which no
//     full-object checksum can check), a chunk of a version not verified
//     yet received from a peer is
//     re-read from the origin with probability SpotCheckRate by the node
//     that comes second in the chunk's placement (its auditor, so the
//     cluster re-reads a fraction SpotCheckRate of such chunks once, not
//     once per node), which makes a lie detectable.
//
// A version proven false is dropped from the store and the catalog, no
// manifest of it is published, the node reads it from the origin for a
// while (distrust), and whoever made the claim is penalized: the
// publisher of the manifest used, or, found while the origin is read again,
// each home whose chunk differs from the origin's.

// Integrity settings.
const (
	// DefaultSpotCheckRate: the fraction of chunks received from peers,
	// of versions not verified yet, that their auditor re-reads from the
	// origin. 1% adds 1% to the origin's bytes
	// (within the 1.02x origin amplification target) and catches a lie
	// about k chunks with probability 1-0.99^k: 92% for a forged 1 GiB
	// object of 256 chunks, 40% for a single forged chunk.
	DefaultSpotCheckRate = 0.01
	// distrustTTL: how long a node reads a version proven false straight
	// from the origin, trusting no peer for it.
	distrustTTL = time.Hour
	// maxSuspects bounds the versions whose chunk suppliers are remembered.
	maxSuspects = 4096
)

// originCheck is what the origin says a version's bytes hash to.
type originCheck struct {
	alg byte   // SumCRC64NVME, SumCRC32C, SumCRC32, or SumNone
	crc uint64 // the full-object CRC under alg
	md5 []byte // the MD5 of a single-part upload's ETag, or nil
}

func (c originCheck) any() bool { return c.alg != SumNone || c.md5 != nil }

// checkOf reads the integrity data of an origin's description of a
// version: a full-object CRC (not a composite one, which needs the part
// boundaries) and an MD5 ETag.
func checkOf(o origin.ObjectInfo) originCheck {
	var c originCheck
	ck := o.Checksums
	if ck.Type == "" || ck.Type == origin.ChecksumFullObject {
		for _, x := range []struct {
			alg byte
			val string
			n   int
		}{{SumCRC64NVME, ck.CRC64NVME, 8}, {SumCRC32C, ck.CRC32C, 4}, {SumCRC32, ck.CRC32, 4}} {
			if x.val == "" || strings.Contains(x.val, "-") {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(x.val)
			if err != nil || len(b) != x.n {
				continue
			}
			if x.n == 8 {
				c.crc = binary.BigEndian.Uint64(b)
			} else {
				c.crc = uint64(binary.BigEndian.Uint32(b))
			}
			c.alg = x.alg
			break
		}
	}
	if o.ETagIsMD5 {
		if b, err := hex.DecodeString(strings.Trim(o.ETag, `"`)); err == nil && len(b) == md5.Size {
			c.md5 = b
		}
	}
	return c
}

// chunkSum is data's checksum under alg.
func chunkSum(alg byte, data []byte) uint64 {
	switch alg {
	case SumCRC64NVME:
		return integrity.ChecksumCRC64NVME(data)
	case SumCRC32C:
		return uint64(integrity.ChecksumCRC32C(data))
	case SumCRC32:
		return uint64(crc32.ChecksumIEEE(data))
	}
	return 0
}

// combineSums is the checksum of a's bytes followed by b's (len2 bytes).
func combineSums(alg byte, a, b uint64, len2 int64) uint64 {
	switch alg {
	case SumCRC64NVME:
		return integrity.CombineCRC64NVME(a, b, len2)
	case SumCRC32C:
		return uint64(integrity.CombineCRC32C(uint32(a), uint32(b), len2))
	case SumCRC32:
		return uint64(integrity.CombineCRC32(uint32(a), uint32(b), len2))
	}
	return 0
}

// sumsConfirm reports whether v's chunk checksums combine to the origin's
// full-object CRC.
func (c originCheck) sumsConfirm(v catalog.Version, sums []uint64) bool {
	if c.alg == SumNone || int64(len(sums)) != v.NumChunks() {
		return false
	}
	var all uint64
	for i, s := range sums {
		n := min(v.ChunkSize, v.Size-int64(i)*v.ChunkSize)
		if i == 0 {
			all = s
			continue
		}
		all = combineSums(c.alg, all, s, n)
	}
	return all == c.crc
}

// originCheckOf is the origin's integrity data for v, from the catalog's
// record of the key (the HEAD that named v), or none.
func (n *Node) originCheckOf(ctx context.Context, v catalog.Version) originCheck {
	o, err := n.cat.GetObject(ctx, v.Bucket, v.Key)
	if err != nil || o.ETag != v.ETag || o.Size != v.Size {
		return originCheck{}
	}
	return checkOf(o.ObjectInfo)
}

// trust is what the node remembers about versions whose bytes came from
// peers and are not verified yet.
type trust struct {
	mu sync.Mutex // guards the maps
	// suppliers: per version, the peer each chunk came from (homes; the
	// manifest publisher for chunks named by a manifest).
	suppliers map[[16]byte]map[int64]peer.ID
	// poisoned: per version proven false, the chunks peers had supplied
	// for it, to find the liars when the origin is read again.
	poisoned map[[16]byte]map[int64]suspect
	// distrusted: versions read from the origin only for now.
	distrusted *ttlCache[struct{}]
	// withheld: manifests this node built but did not publish, waiting
	// for their version to be verified.
	withheld *ttlCache[cid.Cid]
	// liars: peers a claim of which the origin proved false, for
	// distrustTTL: their manifest records are refused. (A peer only
	// penalized for stalling or being unreachable is not one: its signed
	// record names content-addressed blocks, each verified on arrival.)
	liars *ttlCache[struct{}]
}

// suspect is a chunk a peer supplied for a version proven false.
type suspect struct {
	c    cid.Cid
	from peer.ID
}

func newTrust(now func() time.Time) *trust {
	return &trust{
		suppliers:  make(map[[16]byte]map[int64]peer.ID),
		poisoned:   make(map[[16]byte]map[int64]suspect),
		distrusted: newTTLCache[struct{}](distrustTTL, maxSuspects, now),
		liars:      newTTLCache[struct{}](distrustTTL, maxSuspects, now),
		withheld:   newTTLCache[cid.Cid](distrustTTL, maxSuspects, now),
	}
}

// withhold notes manifest c of v, built but not published.
func (t *trust) withhold(v catalog.Version, c cid.Cid) {
	id := v.ID()
	t.withheld.put(string(id[:]), c)
}

// supplied notes that chunk i of v came from p.
func (t *trust) supplied(v catalog.Version, i int64, p peer.ID) {
	id := v.ID()
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.suppliers[id]
	if m == nil {
		if len(t.suppliers) >= maxSuspects {
			for k := range t.suppliers {
				delete(t.suppliers, k)
				break
			}
		}
		m = make(map[int64]peer.ID)
		t.suppliers[id] = m
	}
	m[i] = p
}

// supplierOf is who chunk i of v came from ("" if from the origin or
// unknown).
func (t *trust) supplierOf(v catalog.Version, i int64) peer.ID {
	id := v.ID()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.suppliers[id][i]
}

func (t *trust) isDistrusted(v catalog.Version) bool {
	id := v.ID()
	_, ok := t.distrusted.get(string(id[:]))
	return ok
}

// versionVerified reports whether v was checked whole on this node.
func (n *Node) versionVerified(ctx context.Context, v catalog.Version) bool {
	ok, err := n.cat.Verified(ctx, v)
	return err == nil && ok
}

// completed runs when this node knows every chunk of v: with an origin
// CRC it checks the chunks' checksums against it, then builds and
// publishes the manifest unless v proved false.
func (n *Node) completed(ctx context.Context, v catalog.Version) {
	check := n.originCheckOf(ctx, v)
	if check.alg != SumNone {
		sums, err := n.cat.ChunkSums(ctx, v)
		if err == nil {
			vals, ok := sumValues(sums, check.alg)
			switch {
			case ok && check.sumsConfirm(v, vals):
				n.verified(ctx, v)
			case ok:
				n.poison(ctx, v, "chunk checksums do not combine to the origin's full-object checksum", "")
				return
			}
		}
	}
	if _, err := n.ensureManifest(ctx, v); err != nil {
		n.log.Warn("building manifest failed", "bucket", v.Bucket, "key", v.Key, "err", err)
	}
}

// verified records that v was checked whole against the origin and
// publishes the manifest this node withheld until then, if any.
func (n *Node) verified(ctx context.Context, v catalog.Version) {
	if err := n.cat.SetVerified(ctx, v); err != nil {
		n.log.Warn("recording verification failed", "bucket", v.Bucket, "key", v.Key, "err", err)
		return
	}
	n.m.versionsVerified.Add(1)
	id := v.ID()
	if c, ok := n.trust.withheld.get(string(id[:])); ok {
		n.trust.withheld.delete(string(id[:]))
		n.publishManifest(v, c)
	}
}

// sumValues returns the checksum values if every chunk has one under alg.
func sumValues(sums []catalog.Sum, alg byte) ([]uint64, bool) {
	out := make([]uint64, len(sums))
	for i, s := range sums {
		if s.Alg != alg {
			return nil, false
		}
		out[i] = s.Value
	}
	return out, true
}

// poison drops v, proven false (why): its blocks leave the store and its
// index the catalog, this node reads it from the origin for distrustTTL,
// and liar (if known: a manifest's publisher) is penalized. The homes that
// supplied chunks are judged when the origin is read again (landed).
func (n *Node) poison(ctx context.Context, v catalog.Version, why string, liar peer.ID) {
	ctx = context.WithoutCancel(ctx)
	if n.trust.isDistrusted(v) {
		return // dropped already: what is read now comes from the origin
	}
	n.m.forgeries.Add(1)
	n.log.Error("version from peers proven false; dropping it and reading it from the origin",
		"bucket", v.Bucket, "key", v.Key, "etag", v.ETag, "why", why, "liar", liar)
	id := v.ID()
	chunks, _ := n.cat.Chunks(ctx, v)
	mc, merr := n.cat.Manifest(ctx, v)
	t := n.trust
	t.mu.Lock()
	held := make(map[int64]suspect, len(chunks))
	for i, c := range chunks {
		if from := t.suppliers[id][int64(i)]; c.Defined() && from != "" {
			held[int64(i)] = suspect{c, from}
		}
	}
	if len(t.poisoned) >= maxSuspects {
		for k := range t.poisoned {
			delete(t.poisoned, k)
			break
		}
	}
	t.poisoned[id] = held
	delete(t.suppliers, id)
	t.mu.Unlock()
	t.distrusted.put(string(id[:]), struct{}{})
	if err := n.cat.DropVersion(ctx, v); err != nil {
		n.log.Warn("dropping a false version failed", "err", err)
	}
	for _, c := range chunks {
		if c.Defined() {
			_ = n.store.Delete(ctx, c)
		}
	}
	if merr == nil {
		_ = n.store.Delete(ctx, mc)
	}
	if liar != "" {
		n.penalize(liar, why)
	}
}

// penalize reports a proven lie of p to the transfer client and
// remembers p as a liar (its manifest records are refused).
func (n *Node) penalize(p peer.ID, why string) {
	if n.cl != nil && p != "" && p != n.cl.self {
		n.trust.liars.put(string(p), struct{}{})
		n.m.liesPenalized.Add(1)
		n.cl.Transfer.PenalizeLiar(p, why)
	}
}

// judgeAgainstOrigin runs when this node read chunk i of a version proven
// false from the origin: a peer that had supplied another CID for it lied.
func (n *Node) judgeAgainstOrigin(v catalog.Version, i int64, got cid.Cid) {
	id := v.ID()
	n.trust.mu.Lock()
	old, ok := n.trust.poisoned[id][i]
	if ok {
		delete(n.trust.poisoned[id], i)
		if len(n.trust.poisoned[id]) == 0 {
			delete(n.trust.poisoned, id)
		}
	}
	n.trust.mu.Unlock()
	if ok && !old.c.Equals(got) {
		n.penalize(old.from, fmt.Sprintf("chunk %d of %s/%s differs from the origin's", i, v.Bucket, v.Key))
	}
}

// spotCheck re-reads chunk i of v from the origin (a background task) when
// this node is its auditor and the dice say so; a chunk that differs
// proves its supplier lied.
func (n *Node) spotCheck(place placement.Placement, req chunkReq, got cid.Cid, supplier peer.ID) {
	rate := n.cfg.SpotCheckRate
	if n.cl == nil || rate <= 0 || supplier == "" {
		return
	}
	homes := place.ChunkHomes(req.v, req.i, 2)
	if len(homes) < 2 || homes[1] != n.cl.self || rand.Float64() >= rate {
		return
	}
	ok := n.bg.submit(func(ctx context.Context) {
		v := req.v
		if n.versionVerified(ctx, v) {
			return // checked whole against the origin since
		}
		blk, err := n.origin.Fetch(ctx, originfetch.Request{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag,
			Off: req.off, Len: req.len, Hash: n.hashOf(v), Index: req.i}, nil)
		if err != nil {
			n.m.spotChecks.failed.Add(1)
			return
		}
		if !blk.CID().Equals(got) {
			n.poison(ctx, v, fmt.Sprintf("spot check: chunk %d differs from the origin's", req.i), supplier)
			n.m.spotChecks.lies.Add(1)
			return
		}
		n.m.spotChecks.passed.Add(1)
	})
	if !ok {
		n.m.tasksDropped.Add(1)
	}
}

// streamCheck checks a full-object read of a version not verified yet as
// its chunks pass, in order.
type streamCheck struct {
	v     catalog.Version
	check originCheck
	crc   uint64
	md5   hash.Hash
	next  int64 // next chunk expected
	bytes int64
}

// newStreamCheck returns the check for a read of [off, off+length) of v,
// or nil when none is needed (a partial read, no integrity data, or a
// version verified already).
func (n *Node) newStreamCheck(ctx context.Context, v catalog.Version, off, length int64) *streamCheck {
	if n.cl == nil || off != 0 || length != v.Size || v.Size == 0 {
		return nil // a single node reads only the origin: nothing to check
	}
	check := n.originCheckOf(ctx, v)
	if !check.any() || n.versionVerified(ctx, v) {
		return nil
	}
	s := &streamCheck{v: v, check: check}
	if check.alg == SumNone {
		s.md5 = md5.New()
	}
	return s
}

// add takes chunk i's bytes (the whole chunk); on the last chunk it
// reports whether the object matches its origin checksum.
func (s *streamCheck) add(i int64, data []byte) (last, ok bool) {
	if i != s.next {
		return false, false
	}
	s.next++
	if s.md5 != nil {
		s.md5.Write(data)
	} else if i == 0 {
		s.crc = chunkSum(s.check.alg, data)
	} else {
		s.crc = combineSums(s.check.alg, s.crc, chunkSum(s.check.alg, data), int64(len(data)))
	}
	s.bytes += int64(len(data))
	if s.bytes < s.v.Size {
		return false, true
	}
	if s.md5 != nil {
		return true, string(s.md5.Sum(nil)) == string(s.check.md5)
	}
	return true, s.crc == s.check.crc
}

// sumAgrees checks a chunk fetched by a CID a manifest named against the
// checksum the manifest gave for it (checked against the origin's
// full-object CRC when the manifest was accepted). A chunk that disagrees
// proves the manifest false: the version is poisoned and its publisher
// penalized. Without a recorded checksum there is nothing to check.
func (n *Node) sumAgrees(ctx context.Context, req chunkReq, b content.Block) bool {
	if n.trust.isDistrusted(req.v) {
		return false // proven false while this chunk was on its way
	}
	s, err := n.cat.ChunkSum(ctx, req.v, req.i)
	if err != nil || s.Alg == SumNone || chunkSum(s.Alg, b.Data()) == s.Value {
		return true
	}
	n.poison(ctx, req.v, fmt.Sprintf("chunk %d does not match its checksum in the manifest", req.i),
		n.trust.supplierOf(req.v, req.i))
	return false
}
