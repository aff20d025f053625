package sim

import (
	"math"
	"testing"

	"github.com/shoal-cache/shoal/node/placement"
)

// TestColdHomesAreTheNodes: the node that reads each chunk from the origin
// in the simulation is the node each member's own placement snapshot
// (what node.Node builds from its member list) names as the chunk's home,
// and every chunk is read from the origin exactly once, as long as no home
// has more requests than its server serves at once (16 nodes: 15 askers of
// at most two chunks a home serves at a time, with the default limit; 37
// nodes without a limit).
func TestColdHomesAreTheNodes(t *testing.T) {
	for _, c := range []struct{ n, limit int }{{3, 0}, {8, 0}, {16, 0}, {37, -1}} {
		n := c.n
		r, err := RunCold(ColdConfig{Nodes: n, Size: 300<<20 + 12345, Fabric: Fabric{NIC: 1e8}, Seed: uint64(n), ServerMaxConcurrent: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		v := r.Version
		for x, id := range r.IDs {
			others := append(r.IDs[:x:x], r.IDs[x+1:]...)
			place := placement.New(id, others, nil)
			for i := range v.NumChunks() {
				if got, want := r.OriginReader[i] == x, place.HomeOf(v, i); got != want {
					t.Fatalf("N=%d chunk %d: node %d read it from the origin %v, its own placement says home %v", n, i, x, got, want)
				}
			}
		}
		for i, c := range r.OriginReads {
			if c != 1 {
				t.Fatalf("N=%d chunk %d read %d times from the origin", n, i, c)
			}
		}
		if r.OriginBytes != float64(v.Size) {
			t.Fatalf("N=%d: %v origin bytes, want %d", n, r.OriginBytes, v.Size)
		}
	}
}

// TestColdHandCases: runs whose time a reader can work out.
func TestColdHandCases(t *testing.T) {
	const S, B = 64 << 20, 1e7
	sb := S / B
	t.Run("one node reads at its link rate", func(t *testing.T) {
		r, err := RunCold(ColdConfig{Nodes: 1, Size: S, Fabric: Fabric{NIC: B}})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Done[0]-sb) > 1e-6*sb {
			t.Fatalf("done at %v, want S/B = %v", r.Done[0], sb)
		}
	})
	t.Run("direct reads share the origin's link", func(t *testing.T) {
		// 4 nodes straight from an origin whose link is B: 4 S/B each,
		// 4 S from the origin.
		r, err := RunCold(ColdConfig{Nodes: 4, Size: S, Direct: true, Fabric: Fabric{NIC: B, OriginLink: B}})
		if err != nil {
			t.Fatal(err)
		}
		for x, d := range r.Done {
			if math.Abs(d-4*sb) > 1e-3*sb {
				t.Fatalf("node %d done at %v, want 4 S/B = %v", x, d, 4*sb)
			}
		}
		if r.OriginBytes != 4*S {
			t.Fatalf("origin bytes %v, want %v", r.OriginBytes, 4*S)
		}
	})
	t.Run("two nodes halve the object and swap halves", func(t *testing.T) {
		// Each node is home of half the chunks: it reads its half from the
		// origin and streams it to the other while it arrives. Downlinks:
		// B shared by its own origin read and the peer's stream, so the
		// object takes S/B. The origin's link (B) is shared too: S/B.
		r, err := RunCold(ColdConfig{Nodes: 2, Size: S, Fabric: Fabric{NIC: B, OriginLink: B}})
		if err != nil {
			t.Fatal(err)
		}
		for x, d := range r.Done {
			if d < sb*(1-1e-9) || d > 1.1*sb {
				t.Fatalf("node %d done at %.3f s, want about S/B = %.3f s", x, d, sb)
			}
		}
	})
	t.Run("a star: each home's uplink serves every other node", func(t *testing.T) {
		// N nodes, N > ReadAhead + 1: a reader's window holds ReadAhead
		// chunks of distinct homes, each streaming to N-1 nodes at
		// B/(N-1): a reader moves at ReadAhead*B/(N-1), so the object takes
		// (N-1)/ReadAhead * S/B (a little more at the start).
		const n, ra = 41, 8
		r, err := RunCold(ColdConfig{Nodes: n, Size: S, ReadAhead: ra, Fabric: Fabric{NIC: B}, ServerMaxConcurrent: -1})
		if err != nil {
			t.Fatal(err)
		}
		want := float64(n-1) / ra * sb
		for x, d := range r.Done {
			if d < want*(1-1e-6) || d > want*1.1 {
				t.Fatalf("node %d done at %.2f s, want about %.2f s", x, d, want)
			}
		}
	})
}

// TestColdBusyHomes: with more askers than a home's server serves at once
// (40 nodes, 39 askers per chunk, 32 served), the askers it turns away
// go to the next candidates, which read the chunk from the origin again:
// every chunk leaves the origin more than once, and servers said Busy.
func TestColdBusyHomes(t *testing.T) {
	r, err := RunCold(ColdConfig{Nodes: 40, Size: 64 << 20, Fabric: Fabric{NIC: 1e8}, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if r.Busy == 0 {
		t.Fatal("no server answered Busy")
	}
	for i, c := range r.OriginReads {
		if c < 2 {
			t.Fatalf("chunk %d read %d times from the origin, want more than once", i, c)
		}
	}
}

func TestColdRejects(t *testing.T) {
	for _, c := range []ColdConfig{
		{Nodes: 0, Size: 1, Fabric: Fabric{NIC: 1}},
		{Nodes: 2, Size: 0, Fabric: Fabric{NIC: 1}},
		{Nodes: 2, Size: 1},
		{Nodes: 2, Size: 1, Fabric: Fabric{NIC: 1, OriginLink: -1}},
	} {
		if _, err := RunCold(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
