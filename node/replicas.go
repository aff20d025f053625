package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/origin"
)

// Replica targets. A prefix pinned with Replicas N (every member records
// it: the pin is broadcast when the job starts) must have N copies of each
// of its chunks in the cluster: at the chunk's first N home candidates of
// the read path's placement (package placement), so every node computes
// the same holders without a coordinator. Each node repairs its own share:
// for every chunk of which it is one of the first N candidates now, it
// holds and pins a copy, fetching a missing one through its read path
// (providers of the CID, checked by fetching, never trusted from a stale
// record; then the homes; the origin last).
//
// A holder that leaves or is killed drops out of the live member list
// (its connections close), so the placement moves its chunks to the next
// candidates, which see the change and copy them: the pass runs as soon
// as the member list changes, and every repairInterval besides. Copies
// are made at most Config.RepairRate bytes per second.

// Repair pacing.
const (
	// repairWatch is how often the member list is compared with the last
	// pass's: the time from a holder's disappearance to its repair start.
	repairWatch = time.Second
	// repairInterval is the pass every node makes even when nothing
	// changed (a pin that arrived while a member was away, a copy that was
	// evicted before its pin): each pass lists the pinned prefixes at the
	// origin, so it is not frequent.
	repairInterval = time.Minute
	// repairBurst is the rate limiter's bucket: one 16 MiB chunk at most
	// per wait.
	repairBurst = 16 << 20
	// repairRetry is the wait before another pass when copies failed.
	repairRetry = 5 * time.Second
)

// repairer is the node's replica repair state.
type repairer struct {
	limit *rate.Limiter // nil: no bound
	kick  chan struct{}

	mu            sync.Mutex // guards the fields below
	deficit       int64      // chunks this node should hold and did not, at the last pass, minus those repaired since
	deficitBytes  int64
	repaired      int64 // chunks copied to restore a target, since start
	repairedBytes int64
	lastPass      time.Time
	lastPassTook  time.Duration
}

func newRepairer(bps int64) *repairer {
	r := &repairer{kick: make(chan struct{}, 1)}
	if bps > 0 {
		r.limit = rate.NewLimiter(rate.Limit(bps), max(int(bps), repairBurst))
	}
	return r
}

// kickRepair asks for a repair pass soon (a pin arrived).
func (n *Node) kickRepair() {
	select {
	case n.repair.kick <- struct{}{}:
	default:
	}
}

// ReplicaStatus is the replica section of Status.
type ReplicaStatus struct {
	// Deficit is the number of chunks (and their bytes) this node should
	// hold for a replica target and does not yet.
	Deficit       int64
	DeficitBytes  int64
	Repaired      int64 // chunks copied to restore replica targets since start
	RepairedBytes int64
	LastPass      time.Time `json:",omitzero"`
	LastPassTook  time.Duration
}

func (n *Node) replicaStatus() ReplicaStatus {
	r := n.repair
	r.mu.Lock()
	defer r.mu.Unlock()
	return ReplicaStatus{Deficit: r.deficit, DeficitBytes: r.deficitBytes, Repaired: r.repaired,
		RepairedBytes: r.repairedBytes, LastPass: r.lastPass, LastPassTook: r.lastPassTook}
}

func (n *Node) repairLoop(ctx context.Context) {
	// A node without a replica target has nothing to watch: it waits for
	// the first pin with one.
	for !n.hasReplicaPins(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-n.repair.kick:
		}
	}
	t := time.NewTicker(repairWatch)
	defer t.Stop()
	var last []peer.ID
	var lastPass time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.repair.kick:
			last = nil
		}
		ms := slices.Clone(n.cl.Members.Members())
		slices.Sort(ms)
		if last != nil && slices.Equal(ms, last) && n.now().Sub(lastPass) < repairInterval {
			continue
		}
		pins, err := n.cat.Pins(ctx)
		if err != nil {
			continue
		}
		last, lastPass = ms, n.now()
		if !slices.ContainsFunc(pins, func(p catalog.Pin) bool { return p.Replicas > 0 }) {
			continue
		}
		if left := n.repairPass(ctx, pins); left > 0 {
			// Some copies failed (their source was away too): try again
			// soon rather than at the next interval.
			lastPass = n.now().Add(repairRetry - repairInterval)
		}
	}
}

// copyFromHolder fetches chunk i of v from a member that holds it (held:
// peer -> CID per chunk, from askHolders), verified against that CID, and
// keeps and pins it.
func (n *Node) copyFromHolder(ctx context.Context, v catalog.Version, i int64, held map[string][]string) error {
	for p, cids := range held {
		if int64(len(cids)) <= i || cids[i] == "" {
			continue
		}
		c, err := cid.Decode(cids[i])
		if err != nil {
			continue
		}
		pid, err := peer.Decode(p)
		if err != nil {
			continue
		}
		blk, err := n.cl.Transfer.GetVerified(ctx, c, []peer.AddrInfo{{ID: pid}})
		if err != nil || int64(len(blk.Data())) != n.request(v, i).len {
			continue
		}
		n.land(ctx, n.request(v, i), blk, pid)
		if err := n.store.Pin(ctx, blk.CID()); err != nil {
			return err
		}
		n.notePinned(ctx, v)
		return nil
	}
	return errNoHolder
}

var errNoHolder = errors.New("node: no member holds the chunk")

func (n *Node) hasReplicaPins(ctx context.Context) bool {
	pins, err := n.cat.Pins(ctx)
	return err == nil && slices.ContainsFunc(pins, func(p catalog.Pin) bool { return p.Replicas > 0 })
}

// repairPass makes this node hold its share of every replica target.
// It returns the chunks still missing.
func (n *Node) repairPass(ctx context.Context, pins []catalog.Pin) int64 {
	start := n.now()
	place := n.snapshot()
	self := place.Self()
	type todo struct {
		v catalog.Version
		i int64
	}
	var missing []todo
	var missingBytes int64
	for _, p := range pins {
		if p.Replicas <= 0 {
			continue
		}
		err := n.listAll(ctx, p.Bucket, p.Prefix, func(le origin.ListEntry) error {
			v := n.version(p.Bucket, le.Key, le.ETag, le.Size)
			for i := range v.NumChunks() {
				if !slices.Contains(place.ChunkHomes(v, i, p.Replicas), self) {
					continue
				}
				req := n.request(v, i)
				if c := n.knownCID(ctx, req); c.Defined() {
					if ok, _ := n.store.Has(ctx, c); ok {
						_ = n.store.Pin(ctx, c)
						continue
					}
				}
				missing = append(missing, todo{v, i})
				missingBytes += req.len
			}
			return ctx.Err()
		})
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("replica pass: listing failed", "bucket", p.Bucket, "prefix", p.Prefix, "err", err)
			}
			continue
		}
	}
	r := n.repair
	r.mu.Lock()
	r.deficit, r.deficitBytes = int64(len(missing)), missingBytes
	r.mu.Unlock()
	if len(missing) > 0 {
		n.log.Info("replica repair", "chunks", len(missing), "bytes", missingBytes, "members", place.Size()-1)
	}
	// Who holds the missing chunks now, asked live (one request per
	// member and version): a holder's copy is fetched by its CID and
	// verified; a chunk no member holds is read through the read path.
	holders := make(map[string]map[string][]string) // version id -> peer -> CID per chunk
	for _, m := range missing {
		size := n.request(m.v, m.i).len
		if r.limit != nil {
			if err := r.limit.WaitN(ctx, int(min(size, int64(r.limit.Burst())))); err != nil {
				return int64(len(missing))
			}
		}
		id := m.v.ID()
		h, ok := holders[string(id[:])]
		if !ok {
			h, _, _ = n.askHolders(ctx, m.v, m.v.NumChunks())
			holders[string(id[:])] = h
		}
		err := n.copyFromHolder(ctx, m.v, m.i, h)
		if err != nil {
			_, err = n.warmHere(ctx, m.v, m.i, true, false)
		}
		if err != nil {
			if ctx.Err() != nil {
				return int64(len(missing))
			}
			n.log.Warn("replica repair of a chunk failed", "bucket", m.v.Bucket, "key", m.v.Key, "chunk", m.i, "err", err)
			continue
		}
		r.mu.Lock()
		r.deficit--
		r.deficitBytes -= size
		r.repaired++
		r.repairedBytes += size
		r.mu.Unlock()
		n.m.repairedBytes.Add(size)
	}
	r.mu.Lock()
	r.lastPass, r.lastPassTook = n.now(), n.now().Sub(start)
	left := r.deficit
	r.mu.Unlock()
	return left
}
