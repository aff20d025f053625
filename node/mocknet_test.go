package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/routing"
)

// TestMocknetColdRead is K1 (1,000+ real nodes in one process) at a size
// CI affords: real nodes (read path, private kad-dht, transfer protocol,
// tiered stores, catalogs) on libp2p's in-memory network instead of TCP,
// every pair of nodes linked. Every node reads one cold object at once;
// the test checks every node's bytes and that the origin served each chunk
// about once. SHOAL_K1_NODES sets N (default 12); the figures (join to
// ready, time to all, origin reads, heap per node) are logged, not
// asserted. Not exercised: the swarm-key membership proof (mocknet
// connections have no security transport), per-node NIC limits (mocknet
// shapes each link, not each node).
func TestMocknetColdRead(t *testing.T) {
	n := 12
	if v := os.Getenv("SHOAL_K1_NODES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("SHOAL_K1_NODES=%q: want a count >= 2", v)
		}
	}
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	s := &swarm{org: newFakeOrigin(), cfg: Config{ChunkSize: cs, Fetch: noHedge}, tableAtLeast: routing.DefaultBucketSize, newHost: func(t *testing.T, i int) host.Host {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for range n {
		s.members = append(s.members, s.start(t, len(s.members)))
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	s.connect(t, s.members)
	ready := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)

	const chunks = 32
	data := randBytes(chunks*cs-7, 11)
	s.org.set("b", "cold", data)
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, m := range s.members {
		wg.Go(func() {
			got, err := get(t.Context(), m.n, "b", "cold", 0, -1)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("node %d read the wrong bytes", i)
			}
			took[i], errs[i] = time.Since(t0), err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Where the origin reads came from: a node reads a chunk from the
	// origin as its home, or after its homes failed it.
	var readers, most int64
	var homeServed int64
	for i := range s.members {
		st := s.status(t, i)
		if st.ChunkOrigin > 0 {
			readers++
		}
		most = max(most, st.ChunkOrigin)
		homeServed += st.ChunkHome
	}
	t.Logf("K1 N=%d: %d nodes read from the origin (most: %d chunks); %d chunks served by homes", n, readers, most, homeServed)
	// Slack as in TestSwarmColdStampede: member lists that lag by a
	// second can make two nodes disagree on a home for a moment.
	gets := s.org.count("GetRange")
	if gets > chunks+chunks/4 {
		t.Errorf("origin served %d chunk GETs for %d chunks read by %d nodes", gets, chunks, n)
	}
	// Time to findable: one member announces a fresh CID, every other
	// polls FindProviders until it is there. Then FindProviders latency
	// of those CIDs from every member.
	const fresh = 4
	var findable, lookups []time.Duration
	var mu sync.Mutex
	for k := range fresh {
		c := content.Sum(content.SHA256, fmt.Appendf(nil, "fresh-%d", k))
		from := s.members[k%n]
		t1 := time.Now()
		if err := from.r.Provide(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		for _, m := range s.members {
			if m == from {
				continue
			}
			wg.Go(func() {
				deadline := time.Now().Add(time.Minute)
				for time.Now().Before(deadline) {
					ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
					ps, err := m.r.FindProviders(ctx, c, 1)
					cancel()
					if err == nil && len(ps) > 0 {
						mu.Lock()
						findable = append(findable, time.Since(t1))
						mu.Unlock()
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		for _, m := range s.members {
			if m == from {
				continue
			}
			t2 := time.Now()
			ps, err := m.r.FindProviders(t.Context(), c, 1)
			if err != nil || len(ps) == 0 {
				t.Fatalf("a CID found before is not found again: %v", err)
			}
			lookups = append(lookups, time.Since(t2))
		}
	}
	if want := fresh * (n - 1); len(findable) != want {
		t.Fatalf("%d of %d lookups found a fresh CID within a minute", len(findable), want)
	}
	slices.Sort(findable)
	slices.Sort(lookups)
	p99 := func(d []time.Duration) time.Duration { return d[(len(d)*99+99)/100-1].Round(time.Microsecond) }
	t.Logf("K1 N=%d: time to findable (polled every 20 ms) p50 %v p99 %v; FindProviders p50 %v p99 %v (%d lookups)", n,
		findable[len(findable)/2].Round(time.Microsecond), p99(findable), lookups[len(lookups)/2].Round(time.Microsecond), p99(lookups), len(lookups))

	slices.Sort(took)
	t.Logf("K1 N=%d on mocknet: join to ready (all members listed, routing tables of min(N-1, 20), DHT bootstrapped) %v; "+
		"cold %d MiB read by all: p50 %v, max %v; origin chunk GETs %d for %d chunks; heap after join %.1f MiB per node",
		n, ready.Round(time.Millisecond), len(data)>>20, took[n/2].Round(time.Millisecond), took[n-1].Round(time.Millisecond),
		gets, chunks, float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(n)/(1<<20))
}
