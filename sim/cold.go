package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/transfer"
)

// The cold-object scenario (S4, K1 and X1 of the benchmark list): every
// node of the cluster reads the same object, which no node holds, from the
// start, at the same moment.
//
// What is modelled of the read path (node/chunk.go, sources.go,
// readahead.go, reader.go), with the product's own defaults:
//   - each node's reader keeps ReadAhead chunks in flight (16 in a
//     cluster) and moves its window as its lowest chunk arrives;
//   - a chunk's home is the first of placement's ChunkHomes; the home
//     reads the chunk from the origin once (its home flight) and every
//     other node asks the home, which streams what it has (cut-through:
//     a peer never has more of the chunk than the home's origin read);
//   - no node knows a cold version's chunk CIDs (its manifest comes only
//     once a node holds the whole version), so providers are never asked;
//   - a home runs at most placement's OriginShare(OriginStreams) origin
//     reads of the version at once (and at most the fetcher's node-wide
//     slots), lowest chunk index first (the order gate);
//   - a home that served one of its chunks reads its next HomeReadAhead
//     own chunks (placement's OwnChunksAfter) ahead;
//   - a node's transfer server serves at most ServerMaxConcurrent
//     requests at once (transfer's default, 32) and answers the others
//     Busy at once; the asker then asks its next home candidate
//     (placement's ChunkHomes, HomeCandidates of them, up to its own place:
//     placement.Before), which reads the chunk from the origin itself if it
//     does not hold it; when every candidate was busy, the asker reads the
//     chunk from the origin in its own home flight (node/chunk.go).
//
// Left out: latency (RTTs, DHT lookups, ManifestWait), CPU, TCP's unequal
// shares of one link (max-min sharing is ideal), failures, penalties and
// the failover they cause (only a Busy server's is modelled), the order
// gate's settle time. Every reader starts at the same instant, so a busy
// server sees every request of a chunk at once: a worst case.
// Direct is the baseline of S4: every node reads the object straight from
// the origin with a lone node's read-ahead.

// ColdConfig is one cold-object run.
type ColdConfig struct {
	Nodes int
	// Size is the object's size S in bytes.
	Size   int64
	Fabric Fabric
	// Direct: no cluster, every node reads the origin (the baseline).
	Direct bool
	// Seed draws the nodes' identities and the object's name.
	Seed uint64
	// Policy: zero values take the read path's defaults.
	ChunkSize     int64
	ReadAhead     int
	OriginStreams int
	HomeReadAhead int
	OriginSlots   int
	// HomeCandidates and ServerMaxConcurrent: node's and transfer's
	// defaults; ServerMaxConcurrent < 0: no limit.
	HomeCandidates      int
	ServerMaxConcurrent int
}

func (c *ColdConfig) defaults() {
	if c.ChunkSize == 0 {
		c.ChunkSize = node.DefaultChunkSize
	}
	if c.ReadAhead == 0 {
		c.ReadAhead = node.DefaultClusterReadAhead
		if c.Direct {
			c.ReadAhead = node.DefaultReadAhead
		}
	}
	if c.OriginStreams == 0 {
		c.OriginStreams = node.DefaultOriginStreams
	}
	if c.HomeReadAhead == 0 {
		c.HomeReadAhead = node.DefaultHomeReadAhead
	}
	if c.OriginSlots == 0 {
		c.OriginSlots = originfetch.DefaultSlots
	}
	if c.HomeCandidates == 0 {
		c.HomeCandidates = node.DefaultHomeCandidates
	}
	if c.ServerMaxConcurrent == 0 {
		c.ServerMaxConcurrent = transfer.DefaultServerMaxConcurrent
	}
}

// Validate reports a configuration that cannot run.
func (c ColdConfig) Validate() error {
	var errs []error
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("sim: %d nodes", c.Nodes))
	}
	if c.Size < 1 {
		errs = append(errs, fmt.Errorf("sim: object size %d", c.Size))
	}
	if c.ChunkSize < 0 || c.ReadAhead < 0 || c.OriginStreams < 0 || c.HomeReadAhead < 0 || c.OriginSlots < 0 || c.HomeCandidates < 0 {
		errs = append(errs, errors.New("sim: negative policy setting"))
	}
	return errors.Join(append(errs, c.Fabric.Validate())...)
}

// ColdResult is what one cold-object run measured.
type ColdResult struct {
	// Done is, per node, when its read ended (seconds).
	Done []float64
	// OriginBytes left the origin; OriginReads counts origin reads per chunk.
	OriginBytes float64
	OriginReads []int
	// OriginReader is, per chunk, the node that read it from the origin
	// (the last one, if several did; -1 if none).
	OriginReader []int
	// Busy counts requests a server answered Busy.
	Busy int64
	// Uploaded is, per node, the bytes it sent to peers.
	Uploaded []float64
	// SB is S/B, the physical limit (seconds).
	SB    float64
	Steps int64
	// IDs are the nodes' identities, Version the object read.
	IDs     []peer.ID
	Version catalog.Version
}

// cold is the state of one run.
type cold struct {
	cfg   ColdConfig
	net   *Network
	top   *topology
	v     catalog.Version
	k     int64
	ids   []peer.ID
	place placement.Placement
	home  []int       // chunk -> its home
	cands [][]peer.ID // chunk -> its home candidates
	index map[peer.ID]int

	has [][]bool // node -> chunk -> held
	rd  []reader
	fl  map[int64]*flight // node*k+chunk: that node's home flight of the chunk
	gt  []gate            // per node
	srv []int             // per node: requests its server is serving

	share  int
	served map[int64]bool // node*k+chunk: served once (read-ahead ran)
	res    ColdResult
}

type reader struct{ head, next int64 }

type flight struct {
	asked   bool
	origin  *Flow
	waiters []int // nodes waiting for the origin read to start
}

type gate struct {
	active int
	queue  chunkHeap
}

// RunCold runs one cold-object read by every node.
func RunCold(cfg ColdConfig) (ColdResult, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return ColdResult{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5107))
	ids, err := peerIDs(rng, cfg.Nodes)
	if err != nil {
		return ColdResult{}, err
	}
	s := &cold{cfg: cfg, net: &Network{}, ids: ids, index: make(map[peer.ID]int, len(ids))}
	for i, id := range ids {
		s.index[id] = i
	}
	s.net.Quantum = float64(cfg.ChunkSize) / cfg.Fabric.NIC / 1000
	s.top = buildTopology(s.net, cfg.Fabric, cfg.Nodes)
	s.v = catalog.Version{Bucket: "sim", Key: fmt.Sprintf("cold-%d", cfg.Seed), ETag: fmt.Sprintf("%016x", rng.Uint64()),
		Size: cfg.Size, ChunkSize: cfg.ChunkSize, Hash: "sha2-256"}
	s.k = s.v.NumChunks()
	s.place = placement.New(ids[0], ids[1:], nil)
	s.cands = candidates(s.place, s.v, cfg.HomeCandidates)
	s.home = make([]int, s.k)
	for i, c := range s.cands {
		s.home[i] = s.index[c[0]]
	}
	s.share = min(s.place.OriginShare(cfg.OriginStreams), cfg.OriginSlots)
	s.has = make([][]bool, cfg.Nodes)
	for i := range s.has {
		s.has[i] = make([]bool, s.k)
	}
	s.rd = make([]reader, cfg.Nodes)
	s.fl = make(map[int64]*flight)
	s.gt = make([]gate, cfg.Nodes)
	s.srv = make([]int, cfg.Nodes)
	s.served = make(map[int64]bool)
	s.res = ColdResult{Done: make([]float64, cfg.Nodes), OriginReads: make([]int, s.k), OriginReader: make([]int, s.k),
		Uploaded: make([]float64, cfg.Nodes), SB: float64(cfg.Size) / cfg.Fabric.NIC}
	for i := range s.res.OriginReader {
		s.res.OriginReader[i] = -1
	}
	for x := range cfg.Nodes {
		s.fill(x)
	}
	if err := s.net.Run(); err != nil {
		return ColdResult{}, err
	}
	for x := range cfg.Nodes {
		if s.rd[x].head < s.k {
			return ColdResult{}, fmt.Errorf("sim: node %d ended its run at chunk %d of %d", x, s.rd[x].head, s.k)
		}
	}
	s.res.Steps = s.net.Steps()
	s.res.IDs = ids
	s.res.Version = s.v
	return s.res, nil
}

// homes is the first home of every chunk of v, from the placement's windows.
func homes(p placement.Placement, v catalog.Version, index map[peer.ID]int) []int {
	k, n := v.NumChunks(), int64(p.Size())
	out := make([]int, k)
	for w := int64(0); w*n < k; w++ {
		for j, c := range p.WindowHomes(v, w, 1) {
			if i := w*n + int64(j); i < k {
				out[i] = index[c[0]]
			}
		}
	}
	return out
}

// candidates is every chunk's first k home candidates.
func candidates(p placement.Placement, v catalog.Version, k int) [][]peer.ID {
	nc, n := v.NumChunks(), int64(p.Size())
	out := make([][]peer.ID, nc)
	for w := int64(0); w*n < nc; w++ {
		for j, c := range p.WindowHomes(v, w, k) {
			if i := w*n + int64(j); i < nc {
				out[i] = c
			}
		}
	}
	return out
}

func (s *cold) chunkLen(i int64) float64 {
	return float64(min(s.v.ChunkSize, s.v.Size-i*s.v.ChunkSize))
}

// fill keeps node x's read-ahead window full.
func (s *cold) fill(x int) {
	r := &s.rd[x]
	for r.next < s.k && r.next-r.head < int64(s.cfg.ReadAhead) {
		i := r.next
		r.next++
		s.request(x, i)
	}
}

// arrive: node x holds chunk i.
func (s *cold) arrive(x int, i int64) {
	s.has[x][i] = true
	r := &s.rd[x]
	if i < r.head || i >= r.next {
		return // read ahead of the reader (a home's read-ahead)
	}
	for r.head < r.next && s.has[x][r.head] {
		r.head++
	}
	if r.head == s.k {
		s.res.Done[x] = s.net.Now()
		return
	}
	s.fill(x)
}

// request: node x's reader asks for chunk i.
func (s *cold) request(x int, i int64) {
	if s.has[x][i] {
		if !s.cfg.Direct && s.home[i] == x {
			s.servedBy(x, i) // a local hit of a home's own chunk
		}
		s.arrive(x, i)
		return
	}
	if s.cfg.Direct {
		s.net.Start(&Flow{Links: s.top.originPath(x), Size: s.chunkLen(i), Done: func(float64) {
			s.res.OriginBytes += s.chunkLen(i)
			s.res.OriginReads[i]++
			s.res.OriginReader[i] = x
			s.arrive(x, i)
		}})
		return
	}
	// The homes before this node's own place, in order; a Busy one is
	// passed for the next.
	for _, c := range placement.Before(s.cands[i], s.ids[x]) {
		h := s.index[c]
		if s.cfg.ServerMaxConcurrent > 0 && s.srv[h] >= s.cfg.ServerMaxConcurrent {
			s.res.Busy++
			continue
		}
		s.srv[h]++
		if s.has[h][i] {
			s.servedBy(h, i)
			s.send(h, x, i, nil)
			return
		}
		f := s.startFlight(h, i, true)
		if f.origin != nil {
			s.send(h, x, i, f.origin)
		} else {
			f.waiters = append(f.waiters, x)
		}
		return
	}
	// This node's own place: its own home flight (a home's own read
	// starts its read-ahead; a forwarder's fallback does not).
	s.startFlight(x, i, s.home[i] == x)
}

// send streams chunk i from h to x (following lead, h's origin read, if
// it is still in progress); h's server holds the request until the end.
func (s *cold) send(h, x int, i int64, lead *Flow) {
	if lead != nil && lead.Finished() {
		lead = nil
	}
	s.res.Uploaded[h] += s.chunkLen(i)
	s.net.Start(&Flow{Links: s.top.peerPath(h, x), Size: s.chunkLen(i), Follow: lead, Done: func(float64) {
		s.srv[h]--
		s.arrive(x, i)
	}})
}

// startFlight returns node h's home flight of chunk i, started (queued at
// h's order gate) if it was not running and h does not hold the chunk.
// asked: a reader or peer waits for it.
func (s *cold) startFlight(h int, i int64, asked bool) *flight {
	key := int64(h)*s.k + i
	f := s.fl[key]
	if f == nil {
		f = &flight{}
		if !s.has[h][i] {
			s.fl[key] = f
			heap.Push(&s.gt[h].queue, i)
		}
	}
	f.asked = f.asked || asked
	s.admit(h)
	return f
}

// admit starts node h's queued origin reads, lowest chunk first, up to
// its share.
func (s *cold) admit(h int) {
	g := &s.gt[h]
	for g.active < s.share && g.queue.Len() > 0 {
		i := heap.Pop(&g.queue).(int64)
		key := int64(h)*s.k + i
		f := s.fl[key]
		g.active++
		f.origin = &Flow{Links: s.top.originPath(h), Size: s.chunkLen(i)}
		f.origin.Done = func(float64) {
			g.active--
			delete(s.fl, key)
			s.res.OriginBytes += s.chunkLen(i)
			s.res.OriginReads[i]++
			s.res.OriginReader[i] = h
			if f.asked {
				s.servedBy(h, i)
			}
			s.arrive(h, i)
			s.admit(h)
		}
		s.net.Start(f.origin)
		for _, x := range f.waiters {
			s.send(h, x, i, f.origin)
		}
		f.waiters = nil
	}
}

// servedBy: node h served chunk i as its home (once it held all of it):
// the home's read-ahead (node/readahead.go) reads its next own chunks.
func (s *cold) servedBy(h int, i int64) {
	key := int64(h)*s.k + i
	if s.served[key] || s.cfg.HomeReadAhead < 0 {
		return
	}
	s.served[key] = true
	place, _ := s.place.As(s.ids[h])
	if place.Alone() {
		return
	}
	if i >= int64(place.Size()) {
		prev := place.OwnChunkBefore(s.v, i)
		if prev < 0 || !s.has[h][prev] {
			return
		}
	}
	for _, j := range place.OwnChunksAfter(s.v, i, s.cfg.HomeReadAhead) {
		s.startFlight(h, j, false)
	}
}

type chunkHeap []int64

func (h chunkHeap) Len() int           { return len(h) }
func (h chunkHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h chunkHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *chunkHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *chunkHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
