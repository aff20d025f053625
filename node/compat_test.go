package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/node/placement"
)

// noHedge turns origin hedging and resuming off, for tests whose fake
// origins hold answers on purpose (gates, stepped bodies) for as long as a
// test takes to look: hedges and resumes have tests of their own
// (originfetch) and must not add origin reads to the counts checked.
var noHedge = FetchPolicy{Origin: originfetch.Policy{Stall: -1}}

// Test shorthands over the placement snapshot.

// chunkHomes is placement.New(self, members, skip).ChunkHomes(v, i, k).
func chunkHomes(v catalog.Version, i int64, self peer.ID, members []peer.ID, skip func(peer.ID) bool, k int) []peer.ID {
	return placement.New(self, members, skip).ChunkHomes(v, i, k)
}

// rendezvous is the first k of seed's rendezvous order over self and
// members.
func rendezvous(seed []byte, self peer.ID, members []peer.ID, k int) []peer.ID {
	o := placement.New(self, members, nil).Order(seed)
	return o[:min(k, len(o))]
}

// homeFlightKey is the key of chunk i's home flight (a node alone is the
// home of every chunk).
func homeFlightKey(v catalog.Version, i int64) string { return chunkFlightKey(v, i, true) }
