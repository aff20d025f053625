package routing

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// membersCacheTTL bounds how stale a Members answer may be. The node asks
// for members once per chunk it misses; scanning the peerstore for every
// 4 MiB chunk of a fast stream is wasted work, and a peer that died within
// the last second is handled by the caller's fallback to the next candidate
// anyway.
const membersCacheTTL = time.Second

// Members answers "who is in the cluster right now": the peers this host is
// connected to whose peerstore entry says they speak a given protocol (the
// chunk transfer protocol, so that only Shoal nodes able to serve chunks
// count). Membership itself is enforced by the host (swarm key); Members
// only reads the host's view. It is safe for concurrent use.
type Members struct {
	h     host.Host
	proto protocol.ID
	now   func() time.Time

	mu     sync.Mutex // guards cached and at
	cached []peer.ID  // sorted; nil until the first call
	at     time.Time  // when cached was computed
}

// NewMembers returns the membership view of h: connected peers that
// support proto.
func NewMembers(h host.Host, proto protocol.ID) *Members {
	return &Members{h: h, proto: proto, now: time.Now}
}

// Self is this host's peer ID.
func (m *Members) Self() peer.ID { return m.h.ID() }

// Members returns the live members other than self, sorted by peer ID. The
// answer is cached for about a second. The caller may modify the slice.
func (m *Members) Members() []peer.ID {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cached == nil || now.Sub(m.at) >= membersCacheTTL || now.Before(m.at) {
		m.cached = m.scan()
		m.at = now
	}
	return slices.Clone(m.cached)
}

func (m *Members) scan() []peer.ID {
	self := m.h.ID()
	ps := m.h.Peerstore()
	out := make([]peer.ID, 0, len(m.h.Network().Peers()))
	for _, p := range m.h.Network().Peers() {
		if p == self || m.h.Network().Connectedness(p) != network.Connected {
			continue
		}
		if ok, err := ps.SupportsProtocols(p, m.proto); err != nil || len(ok) == 0 {
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Conn describes this host's link to p: the remote address of its first
// open connection ("" when none) and the peerstore's round-trip estimate
// (0: not measured yet).
func (m *Members) Conn(p peer.ID) (addr string, rtt time.Duration) {
	for _, c := range m.h.Network().ConnsToPeer(p) {
		addr = c.RemoteMultiaddr().String()
		break
	}
	return addr, m.h.Peerstore().LatencyEWMA(p)
}
