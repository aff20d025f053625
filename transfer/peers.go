package transfer

import (
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ewmaWeight is the weight of a new throughput sample: about the last five
// sub-ranges dominate, so a provider that slows down loses rank within one
// or two chunks.
const ewmaWeight = 0.3

// maxTrackedPeers bounds the peer table; above it, entries idle for
// peerIdleForget are dropped.
const (
	maxTrackedPeers = 4096
	peerIdleForget  = time.Hour
)

// PeerInfo is what the client knows about a provider.
type PeerInfo struct {
	// Throughput is the EWMA of measured bytes/s, 0 if never measured.
	Throughput float64
	// InFlight is the number of sub-range requests to it now.
	InFlight int
	// PenalizedUntil is when it leaves the penalty box (zero: not in it).
	PenalizedUntil time.Time
	// BytesIn and BytesOut are the chunk bytes received from it and sent to
	// it (BytesOut only when the Client shares its Traffic with the Server).
	BytesIn, BytesOut int64
	// ReceiveRate is the rate its bytes arrived at, over every request
	// (see PeerTraffic.InRate), 0 if none did.
	ReceiveRate float64
}

type peerStat struct {
	ewma     float64 // bytes/s; 0 = unknown
	inflight int
	penalty  time.Time
	lastUsed time.Time
}

// peerTable holds per-peer measurements shared by all fetches of a client.
type peerTable struct {
	prior float64

	mu    sync.Mutex // guards peers
	peers map[peer.ID]*peerStat
}

func newPeerTable(prior float64) *peerTable {
	return &peerTable{prior: prior, peers: make(map[peer.ID]*peerStat)}
}

// get returns p's entry; t.mu must be held.
func (t *peerTable) get(p peer.ID, now time.Time) *peerStat {
	st := t.peers[p]
	if st == nil {
		if len(t.peers) >= maxTrackedPeers {
			for id, o := range t.peers {
				if o.inflight == 0 && now.Sub(o.lastUsed) > peerIdleForget && now.After(o.penalty) {
					delete(t.peers, id)
				}
			}
		}
		st = &peerStat{}
		t.peers[p] = st
	}
	st.lastUsed = now
	return st
}

func (t *peerTable) info(p peer.ID) PeerInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.peers[p]
	if st == nil {
		return PeerInfo{}
	}
	pi := PeerInfo{Throughput: st.ewma, InFlight: st.inflight}
	if time.Now().Before(st.penalty) {
		pi.PenalizedUntil = st.penalty
	}
	return pi
}

// rank returns the candidates that are not in the penalty box, best first:
// by expected throughput (EWMA, or the optimistic prior if unmeasured)
// divided by one plus the requests already in flight to them. Ties keep the
// caller's order.
func (t *peerTable) rank(cands []peer.ID) []peer.ID {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	type scored struct {
		id    peer.ID
		score float64
	}
	out := make([]scored, 0, len(cands))
	for _, p := range cands {
		st := t.peers[p]
		tp, load := t.prior, 0
		if st != nil {
			if now.Before(st.penalty) {
				continue
			}
			if st.ewma > 0 {
				tp = st.ewma
			}
			load = st.inflight
		}
		out = append(out, scored{p, tp / float64(1+load)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].score > out[j].score })
	ids := make([]peer.ID, len(out))
	for i, s := range out {
		ids[i] = s.id
	}
	return ids
}

func (t *peerTable) start(p peer.ID) {
	t.mu.Lock()
	t.get(p, time.Now()).inflight++
	t.mu.Unlock()
}

// done ends one request to p; n bytes took d. Samples below minSample
// bytes are not used for throughput (too noisy).
func (t *peerTable) done(p peer.ID, n int64, d time.Duration) {
	const minSample = 64 << 10
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.get(p, time.Now())
	st.inflight--
	if n < minSample || d <= 0 {
		return
	}
	sample := float64(n) / d.Seconds()
	if st.ewma == 0 {
		st.ewma = sample
	} else {
		st.ewma = ewmaWeight*sample + (1-ewmaWeight)*st.ewma
	}
}

func (t *peerTable) penalize(p peer.ID, d time.Duration) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.get(p, now)
	if until := now.Add(d); until.After(st.penalty) {
		st.penalty = until
	}
	// A penalized peer's old speed says little about it when it returns.
	st.ewma = 0
}
