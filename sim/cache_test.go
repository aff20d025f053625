package sim

import (
	"math"
	"testing"
)

// TestCacheCounts: byte counts a reader can work out.
func TestCacheCounts(t *testing.T) {
	const key = 256 << 20
	t.Run("every node reads one object once", func(t *testing.T) {
		// One object, 9 nodes, each reads it once: it leaves the origin
		// once, and every node but the one that read it from the origin
		// gets it from peers exactly once (8 objects served in all).
		for _, homeOnly := range []bool{false, true} {
			r, err := RunCache(CacheConfig{Nodes: 9, ModelBytes: key, Keys: 1, CacheFraction: 1, Zipf: 2, Requests: 1, HomeOnly: homeOnly, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			var served float64
			for _, b := range r.Served {
				served += b
			}
			if r.OriginBytes != key || r.UniqueBytes != key || r.OriginReadsPerChunk != 1 {
				t.Fatalf("homeOnly=%v: origin %v, unique %v, reads/chunk %v; want %d, %d, 1", homeOnly, r.OriginBytes, r.UniqueBytes, r.OriginReadsPerChunk, key, key)
			}
			if served != 8*key {
				t.Fatalf("homeOnly=%v: %v bytes served, want %d", homeOnly, served, 8*key)
			}
			if r.Copies != 9 || r.LocalHits != 0 {
				t.Fatalf("homeOnly=%v: copies %v, hits %v; want 9 and 0", homeOnly, r.Copies, r.LocalHits)
			}
		}
	})
	t.Run("providers spread what homes concentrate", func(t *testing.T) {
		// One chunk, 50 nodes: home-only, the home serves all 49 others;
		// with providers, the later readers pull from earlier ones.
		worst := func(homeOnly bool) float64 {
			r, err := RunCache(CacheConfig{Nodes: 50, ModelBytes: 4 << 20, Keys: 1, CacheFraction: 1, Zipf: 2, Requests: 1, HomeOnly: homeOnly, Seed: 5, ChunkSize: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			var m float64
			for _, b := range r.Served {
				m = math.Max(m, b)
			}
			return m
		}
		if w := worst(true); w != 49*(4<<20) {
			t.Fatalf("home-only: busiest node served %v, want all 49 copies %v", w, 49*(4<<20))
		}
		if w := worst(false); w >= 10*(4<<20) {
			t.Fatalf("with providers: busiest node served %v bytes, want well under the home-only 49 copies", w)
		}
	})
	t.Run("a budget of one object evicts the last", func(t *testing.T) {
		// Two objects, each node holds one: reading both in turn, over and
		// over, always misses locally.
		r, err := RunCache(CacheConfig{Nodes: 2, ModelBytes: 2 * key, Keys: 2, CacheFraction: 0.5, Zipf: 1.01, Requests: 50, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		if r.LocalHits >= 1 || r.OriginBytes < r.UniqueBytes {
			t.Fatalf("hits %v, origin %v of unique %v", r.LocalHits, r.OriginBytes, r.UniqueBytes)
		}
	})
}

func TestCacheRejects(t *testing.T) {
	ok := CacheConfig{Nodes: 2, ModelBytes: 1 << 20, Keys: 1, CacheFraction: 0.5, Zipf: 1.1, Requests: 1}
	for _, bad := range []func(*CacheConfig){
		func(c *CacheConfig) { c.Nodes = 1 },
		func(c *CacheConfig) { c.Keys = 0 },
		func(c *CacheConfig) { c.CacheFraction = 0 },
		func(c *CacheConfig) { c.CacheFraction = 1.5 },
		func(c *CacheConfig) { c.Zipf = 1 },
		func(c *CacheConfig) { c.Requests = 0 },
	} {
		c := ok
		bad(&c)
		if _, err := RunCache(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := RunCache(ok); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}
