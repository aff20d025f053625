package transfer

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Traffic counts the chunk bytes exchanged with each peer: those a Client
// received from it and those a Server sent to it. A Client and a Server
// given the same Traffic (WithTraffic) report both directions in
// Client.Peer. It keeps at most maxTrackedPeers peers: a new peer beyond
// that replaces the one heard from least recently, so a churning swarm
// cannot grow it. It is safe for concurrent use.
//
// The counts are per node and per peer, for introspection (shoal peers);
// they are never exported as metric labels.
type Traffic struct {
	mu    sync.Mutex // guards peers and tick
	peers map[peer.ID]*peerTraffic
	tick  uint64 // counts adds; a peer's last is the tick of its latest
}

type peerTraffic struct {
	in, out int64
	inTime  time.Duration // time spent reading the bodies counted in in
	last    uint64
}

// NewTraffic returns an empty Traffic.
func NewTraffic() *Traffic { return &Traffic{peers: make(map[peer.ID]*peerTraffic)} }

// PeerTraffic is what a Traffic knows about one peer.
type PeerTraffic struct {
	// In and Out are the chunk bytes received from and sent to it.
	In, Out int64
	// InRate is In divided by the time spent reading those bytes (from a
	// body's first read to its last, on every kind of request, a home's
	// fetch-through included, so a home's wait for its origin counts): the
	// rate this node has seen from the peer, 0 if nothing was received.
	// Unlike the client's EWMA it does not rank providers.
	InRate float64
}

// Peer returns what is known about p (zero if p is not tracked).
func (t *Traffic) Peer(p peer.ID) PeerTraffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.peers[p]
	if pt == nil {
		return PeerTraffic{}
	}
	r := PeerTraffic{In: pt.in, Out: pt.out}
	if pt.in > 0 && pt.inTime > 0 {
		r.InRate = float64(pt.in) / pt.inTime.Seconds()
	}
	return r
}

// Len returns the number of peers tracked.
func (t *Traffic) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.peers)
}

// received counts n bytes from p that took d to read.
func (t *Traffic) received(p peer.ID, n int, d time.Duration) { t.add(p, int64(n), 0, d) }

// sent counts n bytes sent to p.
func (t *Traffic) sent(p peer.ID, n int) { t.add(p, 0, int64(n), 0) }

func (t *Traffic) add(p peer.ID, in, out int64, d time.Duration) {
	if in <= 0 && out <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	pt := t.peers[p]
	if pt == nil {
		if len(t.peers) >= maxTrackedPeers {
			t.dropOldestLocked()
		}
		pt = &peerTraffic{}
		t.peers[p] = pt
	}
	pt.in += in
	pt.out += out
	if in > 0 {
		pt.inTime += max(d, 0)
	}
	t.tick++
	pt.last = t.tick
}

// dropOldestLocked forgets the peer heard from least recently; t.mu must
// be held. It scans the table, which happens only when a new peer arrives
// at a full table.
func (t *Traffic) dropOldestLocked() {
	var (
		oldest peer.ID
		at     uint64
		found  bool
	)
	for id, pt := range t.peers {
		if !found || pt.last < at {
			oldest, at, found = id, pt.last, true
		}
	}
	if found {
		delete(t.peers, oldest)
	}
}
