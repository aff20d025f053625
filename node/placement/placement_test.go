package placement

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
)

const cs = 1 << 20

func testPeers(n int) []peer.ID {
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = peer.ID(fmt.Sprintf("peer-%03d", i))
	}
	return out
}

// chunkHomes is New(self, members, skip).ChunkHomes(v, i, k).
func chunkHomes(v catalog.Version, i int64, self peer.ID, members []peer.ID, skip func(peer.ID) bool, k int) []peer.ID {
	return New(self, members, skip).ChunkHomes(v, i, k)
}

// rendezvous is the first k of seed's order over self and members.
func rendezvous(seed []byte, self peer.ID, members []peer.ID, k int) []peer.ID {
	o := New(self, members, nil).Order(seed)
	return o[:min(k, len(o))]
}

// chunkSeed is a per-chunk seed (version ID || index), the placement before
// balanced windows: TestRendezvousBalanced compares with it.
func chunkSeed(v catalog.Version, i int64) []byte {
	id := v.ID()
	return binary.BigEndian.AppendUint64(id[:], uint64(i))
}

// TestRendezvousStable: the order does not depend on member list order,
// self is just another candidate, and removing a member only moves the
// seeds it was first for.
func TestRendezvousStable(t *testing.T) {
	ps := testPeers(20)
	rev := slices.Clone(ps)
	slices.Reverse(rev)
	for i := range 200 {
		seed := fmt.Appendf(nil, "seed-%d", i)
		a := rendezvous(seed, ps[0], ps[1:], 5)
		b := rendezvous(seed, ps[19], rev[1:], 5)
		c := rendezvous(seed, ps[0], append(slices.Clone(ps), ps...), 5) // duplicates and self listed
		if len(a) != 5 || !slices.Equal(a, b) || !slices.Equal(a, c) {
			t.Fatalf("seed %d: orders differ: %v %v %v", i, a, b, c)
		}
		full := rendezvous(seed, ps[0], ps[1:], 20)
		if !slices.Equal(full[:5], a) {
			t.Fatalf("top 5 is not a prefix of the full order")
		}
		// Remove the member ranked third: the others keep their order.
		without := slices.DeleteFunc(slices.Clone(ps[1:]), func(p peer.ID) bool { return p == full[2] })
		if full[2] == ps[0] {
			continue
		}
		got := rendezvous(seed, ps[0], without, 19)
		want := slices.Delete(slices.Clone(full), 2, 3)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: removing a member reordered the rest", i)
		}
	}
	if got := rendezvous([]byte("x"), "self", nil, 3); !slices.Equal(got, []peer.ID{"self"}) {
		t.Errorf("alone: %v", got)
	}
}

// TestRendezvousBalanced: chunk homes spread evenly over the members.
func TestRendezvousBalanced(t *testing.T) {
	ps := testPeers(10)
	const chunks = 20000
	v := catalog.Version{Bucket: "b", Key: "big", ETag: `"e"`, Size: chunks * cs, ChunkSize: cs, Hash: "sha2-256"}
	count := map[peer.ID]int{}
	for i := range int64(chunks) {
		count[rendezvous(chunkSeed(v, i), ps[0], ps[1:], 1)[0]]++
	}
	mean := float64(chunks) / float64(len(ps))
	for _, p := range ps {
		// Binomial(20000, 0.1): sd ~42; allow 6 sd.
		if d := math.Abs(float64(count[p]) - mean); d > 6*math.Sqrt(mean*0.9) {
			t.Errorf("%s is home of %d chunks, mean %.0f", p, count[p], mean)
		}
	}
}

// TestChunkHomesBalanced: every node is the first home of exactly one
// chunk in each window of n consecutive chunks, whichever node computes
// it and in whatever order it lists its members; the candidates of a chunk
// are distinct; a skipped member's chunks move to the next candidate and
// no other chunk moves.
func TestChunkHomesBalanced(t *testing.T) {
	ps := testPeers(8)
	rev := slices.Clone(ps)
	slices.Reverse(rev)
	const chunks = 64
	v := catalog.Version{Bucket: "b", Key: "obj", ETag: `"e"`, Size: chunks * cs, ChunkSize: cs, Hash: "sha2-256"}
	count := map[peer.ID]int{}
	for i := range int64(chunks) {
		a := chunkHomes(v, i, ps[0], ps[1:], nil, 3)
		b := chunkHomes(v, i, ps[7], append(slices.Clone(rev[1:]), ps[3]), nil, 3) // other self, order, a duplicate
		if !slices.Equal(a, b) {
			t.Fatalf("chunk %d: homes %v seen from one node, %v from another", i, a, b)
		}
		if len(a) != 3 || a[0] == a[1] || a[1] == a[2] || a[0] == a[2] {
			t.Fatalf("chunk %d: candidates %v", i, a)
		}
		if i > 0 && i%8 != 0 && a[0] == chunkHomes(v, i-1, ps[0], ps[1:], nil, 1)[0] {
			t.Errorf("chunks %d and %d share a home", i-1, i)
		}
		count[a[0]]++
	}
	for _, p := range ps {
		if count[p] != chunks/len(ps) {
			t.Errorf("%s is home of %d chunks, want %d", p, count[p], chunks/len(ps))
		}
	}
	skipped := ps[2]
	skip := func(p peer.ID) bool { return p == skipped }
	moved := 0
	for i := range int64(chunks) {
		full := chunkHomes(v, i, ps[0], ps[1:], nil, 3)
		got := chunkHomes(v, i, ps[0], ps[1:], skip, 2)
		want := slices.DeleteFunc(slices.Clone(full), skip)[:2]
		if !slices.Equal(got, want) {
			t.Errorf("chunk %d: with %s skipped got %v, want %v", i, skipped, got, want)
		}
		if got[0] != full[0] {
			moved++
		}
	}
	if moved != count[skipped] {
		t.Errorf("%d chunks moved, want the %d of the skipped member", moved, count[skipped])
	}
	// Self is never skipped, and a lone node is its own home.
	if got := chunkHomes(v, 3, ps[0], ps[1:], func(peer.ID) bool { return true }, 8); !slices.Equal(got, []peer.ID{ps[0]}) {
		t.Errorf("all members skipped: %v", got)
	}
	if got := chunkHomes(v, 3, ps[0], nil, nil, 3); !slices.Equal(got, []peer.ID{ps[0]}) {
		t.Errorf("alone: %v", got)
	}
}

// TestWindowHomesAndAs: WindowHomes gives every chunk of a window the
// candidates ChunkHomes gives it, and As(m) of one node's snapshot answers
// exactly as m's own snapshot over the same members, penalties included.
func TestWindowHomesAndAs(t *testing.T) {
	ps := testPeers(13)
	skip := func(p peer.ID) bool { return p == ps[4] || p == ps[9] }
	v := catalog.Version{Bucket: "b", Key: "k", ETag: "e", Size: 100 * cs, ChunkSize: cs, Hash: "sha2-256"}
	base := New(ps[0], ps[1:], skip)
	for w := range int64(3) {
		wh := base.WindowHomes(v, w, 3)
		if len(wh) != 13 {
			t.Fatalf("window %d: %d entries, want 13", w, len(wh))
		}
		for j, got := range wh {
			i := w*13 + int64(j)
			if want := base.ChunkHomes(v, i, 3); !slices.Equal(got, want) {
				t.Fatalf("chunk %d: WindowHomes %v, ChunkHomes %v", i, got, want)
			}
		}
	}
	for _, m := range ps {
		as, ok := base.As(m)
		if !ok {
			t.Fatalf("As(%s): not a node", m)
		}
		// m's own snapshot: m is never passed over in its own placement.
		own := New(m, ps, func(p peer.ID) bool { return p != m && skip(p) })
		for i := range v.NumChunks() {
			if a, b := as.ChunkHomes(v, i, 3), own.ChunkHomes(v, i, 3); !slices.Equal(a, b) {
				t.Fatalf("As(%s) chunk %d: %v, own snapshot %v", m, i, a, b)
			}
			if as.HomeOf(v, i) != own.HomeOf(v, i) {
				t.Fatalf("As(%s) chunk %d: HomeOf differs", m, i)
			}
		}
		if a, b := as.OwnChunksAfter(v, 5, 2), own.OwnChunksAfter(v, 5, 2); !slices.Equal(a, b) {
			t.Fatalf("As(%s): OwnChunksAfter %v, own %v", m, a, b)
		}
	}
	if _, ok := base.As("stranger"); ok {
		t.Fatal("As of a non-member reported ok")
	}
}
