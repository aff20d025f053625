package sim

import (
	"container/list"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/transfer"
)

// The P2P-cache scenario (the seed PR's design as the issue states it): a
// model of ModelBytes in Keys objects of equal size, every node with a
// cache of CacheFraction of the model, and every node reading whole
// objects drawn from a Zipf popularity, over and over.
//
// What is modelled of the read path, with the product's defaults:
//   - a node that holds an object reads it locally (its cache is an LRU
//     of objects under its byte budget; what it evicts it stops
//     announcing, as the store's removals feed does);
//   - a chunk the node lacks, whose CID is known (the object was read in
//     the cluster before: its manifest is in the DHT), is pulled from its
//     providers: FindProviders returns up to Providers holders (drawn at
//     random: kad-dht returns the first that answer, in no order), the
//     transfer client pulls from up to MaxParallel of them, splitting the
//     chunk into SubRange pieces dealt round-robin;
//   - a chunk no node holds goes to its home (placement's first
//     ChunkHomes), which reads it from the origin once, keeps it, and
//     serves it; the home's copy counts against its budget;
//   - HomeOnly is the naive design this is compared with: every miss is
//     served by the chunk's home (a designated node per chunk, no
//     provider spreading).
//
// Left out: time (this scenario counts bytes, not seconds: the requests
// run one after another), the memory/SSD tiers' own eviction order (S3-FIFO
// and the tiered store, here an LRU of whole objects), pins, failures.
// ChunkSize defaults to 64 MiB here (a valid --chunk-size) to keep the
// per-chunk work of 10,000 nodes reading hundreds of GB each tractable;
// provider spreading is per chunk either way.

// CacheConfig is one run of the cache scenario.
type CacheConfig struct {
	Nodes      int
	ModelBytes int64
	Keys       int
	// CacheFraction of ModelBytes is every node's cache budget.
	CacheFraction float64
	// Zipf is the popularity exponent s (> 1, math/rand's Zipf).
	Zipf float64
	// Requests: objects each node reads.
	Requests int
	HomeOnly bool
	Seed     uint64
	// Policy: zero values take the defaults.
	ChunkSize   int64 // 64 MiB
	Providers   int   // node.DefaultProviders
	MaxParallel int   // transfer.DefaultMaxParallel
	SubRange    int64 // transfer.DefaultSubRangeSize
}

// DefaultCacheChunkSize is the cache scenario's chunk size (see above).
const DefaultCacheChunkSize = 64 << 20

func (c *CacheConfig) defaults() {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultCacheChunkSize
	}
	if c.Providers == 0 {
		c.Providers = node.DefaultProviders
	}
	if c.MaxParallel == 0 {
		c.MaxParallel = transfer.DefaultMaxParallel
	}
	if c.SubRange == 0 {
		c.SubRange = transfer.DefaultSubRangeSize
	}
}

// Validate reports a configuration that cannot run.
func (c CacheConfig) Validate() error {
	var errs []error
	if c.Nodes < 2 || c.Keys < 1 || c.ModelBytes < int64(c.Keys) || c.Requests < 1 {
		errs = append(errs, fmt.Errorf("sim: cache scenario needs >= 2 nodes, >= 1 key, >= 1 request, a model of >= 1 byte per key (have %d nodes, %d keys, %d requests, %d bytes)",
			c.Nodes, c.Keys, c.Requests, c.ModelBytes))
	}
	if !(c.CacheFraction > 0 && c.CacheFraction <= 1) {
		errs = append(errs, fmt.Errorf("sim: cache fraction %v not in (0, 1]", c.CacheFraction))
	}
	if !(c.Zipf > 1) {
		errs = append(errs, fmt.Errorf("sim: Zipf exponent %v must be > 1", c.Zipf))
	}
	if c.ChunkSize < 0 || c.Providers < 0 || c.MaxParallel < 0 || c.SubRange < 0 {
		errs = append(errs, errors.New("sim: negative policy setting"))
	}
	return errors.Join(errs...)
}

// CacheResult is what one run counted.
type CacheResult struct {
	// Served is, per node, the bytes it sent to peers.
	Served []float64
	// OriginBytes left the origin; UniqueBytes is the size of the
	// distinct objects read (what an ideal cluster reads from the origin).
	OriginBytes, UniqueBytes float64
	// OriginReadsPerChunk: origin reads per chunk of the objects read.
	OriginReadsPerChunk float64
	// Copies per chunk at the end (mean over the chunks of the objects
	// read), and of the most popular object.
	Copies, HotCopies float64
	// LocalHits: the fraction of requests served from the node's own cache.
	LocalHits float64
}

type cacheEntry struct {
	key   int
	have  []bool // chunk -> held
	bytes int64
}

type cacheNode struct {
	lru   *list.List      // front: most recent
	byKey []*list.Element // key -> entry, nil if none
	used  int64
}

type cacheSim struct {
	cfg     CacheConfig
	rng     *rand.Rand
	keySize int64
	nChunks int64
	budget  int64
	nodes   []cacheNode
	holders []holderSet // key -> nodes with an entry
	homes   [][]int     // key -> chunk -> home
	res     CacheResult
	reads   []int // key*nChunks+chunk -> origin reads
}

// RunCache runs the cache scenario.
func RunCache(cfg CacheConfig) (CacheResult, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return CacheResult{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xcace))
	ids, err := peerIDs(rng, cfg.Nodes)
	if err != nil {
		return CacheResult{}, err
	}
	index := make(map[peer.ID]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	s := &cacheSim{cfg: cfg, rng: rng, keySize: cfg.ModelBytes / int64(cfg.Keys)}
	s.nChunks = (s.keySize + cfg.ChunkSize - 1) / cfg.ChunkSize
	s.budget = int64(cfg.CacheFraction * float64(cfg.ModelBytes))
	s.nodes = make([]cacheNode, cfg.Nodes)
	for i := range s.nodes {
		s.nodes[i] = cacheNode{lru: list.New(), byKey: make([]*list.Element, cfg.Keys)}
	}
	s.holders = make([]holderSet, cfg.Keys)
	s.homes = make([][]int, cfg.Keys)
	place := placement.New(ids[0], ids[1:], nil)
	tag := rng.Uint64()
	for k := range cfg.Keys {
		s.holders[k] = holderSet{pos: map[int]int{}}
		v := catalog.Version{Bucket: "model", Key: fmt.Sprintf("shard-%05d", k), ETag: fmt.Sprintf("%016x-%d", tag, k),
			Size: s.keySize, ChunkSize: cfg.ChunkSize, Hash: "sha2-256"}
		s.homes[k] = homes(place, v, index)
	}
	s.reads = make([]int, cfg.Keys*int(s.nChunks))
	s.res.Served = make([]float64, cfg.Nodes)
	zipf := rand.NewZipf(rng, cfg.Zipf, 1, uint64(cfg.Keys-1))
	seen := make([]bool, cfg.Keys)
	order := rng.Perm(cfg.Nodes)
	hits := 0
	for range cfg.Requests {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, x := range order {
			k := int(zipf.Uint64())
			seen[k] = true
			if s.read(x, k) {
				hits++
			}
		}
	}
	var requested, copies, origin float64
	for k := range cfg.Keys {
		if !seen[k] {
			continue
		}
		requested++
		for i := range s.nChunks {
			c := s.copies(k, i)
			copies += float64(c)
			if k == 0 {
				s.res.HotCopies += float64(c) / float64(s.nChunks)
			}
			origin += float64(s.reads[k*int(s.nChunks)+int(i)])
		}
	}
	s.res.UniqueBytes = requested * float64(s.keySize)
	s.res.Copies = copies / (requested * float64(s.nChunks))
	s.res.OriginReadsPerChunk = origin / (requested * float64(s.nChunks))
	s.res.LocalHits = float64(hits) / float64(cfg.Requests*cfg.Nodes)
	return s.res, nil
}

func (s *cacheSim) chunkLen(i int64) int64 {
	return min(s.cfg.ChunkSize, s.keySize-i*s.cfg.ChunkSize)
}

func (s *cacheSim) holds(x, k int, i int64) bool {
	e := s.nodes[x].byKey[k]
	return e != nil && e.Value.(*cacheEntry).have[i]
}

func (s *cacheSim) copies(k int, i int64) int {
	c := 0
	for _, x := range s.holders[k].list {
		if s.holds(x, k, i) {
			c++
		}
	}
	return c
}

// read: node x reads object k whole; it reports a local hit.
func (s *cacheSim) read(x, k int) bool {
	nd := &s.nodes[x]
	if el := nd.byKey[k]; el != nil {
		nd.lru.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		if e.bytes == s.keySize {
			return true
		}
	}
	for i := range s.nChunks {
		if s.holds(x, k, i) {
			continue
		}
		if s.cfg.HomeOnly || !s.fromProviders(x, k, i) {
			s.fromHome(x, k, i)
		}
		s.keep(x, k, i)
	}
	return false
}

// fromProviders pulls chunk i of k from up to MaxParallel of up to
// Providers random holders; it reports false when there are none.
func (s *cacheSim) fromProviders(x, k int, i int64) bool {
	cands := s.holders[k].sample(s.rng, s.cfg.Providers, func(p int) bool { return p != x && s.holds(p, k, i) })
	if len(cands) == 0 {
		return false
	}
	found := cands[:min(len(cands), s.cfg.Providers)]
	use := found[:min(len(found), s.cfg.MaxParallel)]
	n := s.chunkLen(i)
	for j, off := 0, int64(0); off < n; j, off = j+1, off+s.cfg.SubRange {
		s.res.Served[use[j%len(use)]] += float64(min(s.cfg.SubRange, n-off))
	}
	return true
}

// fromHome has chunk i of k served by its home (which reads the origin
// once and keeps the chunk), or read from the origin when x is the home.
func (s *cacheSim) fromHome(x, k int, i int64) {
	h := s.homes[k][i]
	n := s.chunkLen(i)
	if !s.holds(h, k, i) {
		s.res.OriginBytes += float64(n)
		s.reads[k*int(s.nChunks)+int(i)]++
		if h == x {
			return // x keeps it (read)
		}
		s.keep(h, k, i)
	}
	if h != x {
		s.res.Served[h] += float64(n)
	}
}

// keep stores chunk i of k at node x, evicting its least recent objects
// (never the one it is storing) to stay under budget.
func (s *cacheSim) keep(x, k int, i int64) {
	nd := &s.nodes[x]
	el := nd.byKey[k]
	if el == nil {
		el = nd.lru.PushFront(&cacheEntry{key: k, have: make([]bool, s.nChunks)})
		nd.byKey[k] = el
		s.holders[k].add(x)
	}
	nd.lru.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	if e.have[i] {
		return
	}
	e.have[i] = true
	n := s.chunkLen(i)
	e.bytes += n
	nd.used += n
	for nd.used > s.budget {
		back := nd.lru.Back()
		if back == el {
			break
		}
		old := back.Value.(*cacheEntry)
		nd.lru.Remove(back)
		nd.byKey[old.key] = nil
		s.holders[old.key].remove(x)
		nd.used -= old.bytes
	}
}

// holderSet is the nodes with an entry for one object.
type holderSet struct {
	list []int
	pos  map[int]int // node -> index in list
}

func (h *holderSet) add(x int) {
	if _, ok := h.pos[x]; !ok {
		h.pos[x] = len(h.list)
		h.list = append(h.list, x)
	}
}

func (h *holderSet) remove(x int) {
	i, ok := h.pos[x]
	if !ok {
		return
	}
	last := h.list[len(h.list)-1]
	h.list[i] = last
	h.pos[last] = i
	h.list = h.list[:len(h.list)-1]
	delete(h.pos, x)
}

// sample returns up to n distinct members for which ok holds, drawn
// uniformly at random.
func (h *holderSet) sample(rng *rand.Rand, n int, ok func(int) bool) []int {
	if len(h.list) <= 4*n {
		var out []int
		for _, x := range h.list {
			if ok(x) {
				out = append(out, x)
			}
		}
		rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
		return out[:min(len(out), n)]
	}
	// Many members: draw at random; a bounded number of misses, then
	// scan (few members hold the chunk).
	out := make([]int, 0, n)
	for tries := 0; len(out) < n && tries < 16*n; tries++ {
		x := h.list[rng.IntN(len(h.list))]
		if ok(x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	if len(out) < n {
		for _, x := range h.list {
			if len(out) == n {
				break
			}
			if ok(x) && !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}
