package routing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/shoal-cache/shoal/internal/content"
)

type swarm struct {
	routers []*Router
}

// newSwarm starts n hosts with real DHTs on loopback, connects each to the
// first one and to its predecessor, and waits until every routing table
// holds at least min(n-1, 3) peers.
func newSwarm(t testing.TB, n int, cfg Config) *swarm {
	t.Helper()
	key := testKey(t, 7)
	ctx := context.Background()
	s := &swarm{}
	for i := 0; i < n; i++ {
		h := newTestHost(t, key, MembershipAuth)
		r, err := NewDHT(ctx, h, cfg, WithLogger(discardLogger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		s.routers = append(s.routers, r)
	}
	for i := 1; i < n; i++ {
		h := s.routers[i].Host()
		for _, j := range []int{0, i - 1} {
			if err := h.Connect(ctx, info(s.routers[j].Host())); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := min(n-1, 3)
	eventually(t, 30*time.Second, "routing tables filled", func() bool {
		for _, r := range s.routers {
			if r.RoutingTableSize() < want {
				return false
			}
		}
		return true
	})
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range s.routers {
		wg.Go(func() { r.Bootstrap(bctx) })
	}
	wg.Wait()
	return s
}

// eventually polls cond until it holds or the timeout passes. It bounds a
// wait for convergence; it does not assert how fast that happens.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasProvider(ais []peer.AddrInfo, id peer.ID) bool {
	for _, ai := range ais {
		if ai.ID == id {
			return true
		}
	}
	return false
}

// findableFromAll reports whether every router except owner finds owner as
// a provider of c.
func (s *swarm) findableFromAll(t *testing.T, owner int, c cid.Cid) bool {
	t.Helper()
	id := s.routers[owner].Host().ID()
	for i, r := range s.routers {
		if i == owner {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ais, err := r.FindProviders(ctx, c, 0)
		cancel()
		if err != nil || !hasProvider(ais, id) {
			return false
		}
	}
	return true
}

// goneFromAll reports whether no router finds owner as a provider of c.
func (s *swarm) goneFromAll(t *testing.T, owner int, c cid.Cid) bool {
	t.Helper()
	id := s.routers[owner].Host().ID()
	for i, r := range s.routers {
		if i == owner {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ais, err := r.FindProviders(ctx, c, 0)
		cancel()
		if err != nil || hasProvider(ais, id) {
			return false
		}
	}
	return true
}

func chunkCID(i int) cid.Cid { return content.Sum(content.SHA256, fmt.Appendf(nil, "chunk-%d", i)) }

func TestSwarmProvideFindFromEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	s := newSwarm(t, 12, Config{})
	c := chunkCID(1)
	start := time.Now()
	if err := s.routers[5].Provide(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "provided cid findable from every node", func() bool {
		return s.findableFromAll(t, 5, c)
	})
	t.Logf("newly provided chunk findable from all 11 other nodes after %v", time.Since(start))

	// A CID nobody provides: no providers, no error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ais, err := s.routers[0].FindProviders(ctx, chunkCID(999), 0)
	if err != nil || len(ais) != 0 {
		t.Fatalf("unprovided cid: %v, %v", ais, err)
	}
}

func TestSwarmReprovideAndStopProviding(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	cfg := Config{ProvideValidity: 4 * time.Second, ReprovideInterval: 2 * time.Second, MaxReprovideDelay: time.Second}
	s := newSwarm(t, 10, cfg)
	keep, drop := chunkCID(10), chunkCID(11)
	ctx := context.Background()
	for _, c := range []cid.Cid{keep, drop} {
		if err := s.routers[2].Provide(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "both cids findable", func() bool {
		return s.findableFromAll(t, 2, keep) && s.findableFromAll(t, 2, drop)
	})
	if err := s.routers[2].StopProviding(ctx, drop); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "stopped cid gone everywhere after validity", func() bool {
		return s.goneFromAll(t, 2, drop)
	})
	// Several validity periods have passed since the first provide: the
	// kept CID is still there only because it was reprovided.
	time.Sleep(cfg.ProvideValidity)
	eventually(t, 30*time.Second, "kept cid still findable (reprovided)", func() bool {
		return s.findableFromAll(t, 2, keep)
	})
}

// TestFourNodeCluster is the small-cluster sanity check (kad-dht#1263): many
// keys provided in a 4-node DHT are all findable.
func TestFourNodeCluster(t *testing.T) {
	s := newSwarm(t, 4, Config{})
	ctx := context.Background()
	const n = 64
	for i := range n {
		if err := s.routers[i%4].Provide(ctx, chunkCID(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "all keys findable in a 4-node cluster", func() bool {
		for i := range n {
			if !s.findableFromAll(t, i%4, chunkCID(100+i)) {
				return false
			}
		}
		return true
	})
}

// TestSwarmProvideBurst: in a 10-node swarm, one node provides a burst of
// new CIDs (an object's chunks landing together, which the sweep batches
// by keyspace region) while every node provides one of its own; every CID
// is found by every other node.
func TestSwarmProvideBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	s := newSwarm(t, 10, Config{})
	ctx := context.Background()
	type key struct {
		owner int
		c     cid.Cid
	}
	var pending []key
	for i := range 40 {
		pending = append(pending, key{3, chunkCID(20_000 + i)})
	}
	for owner := range s.routers {
		pending = append(pending, key{owner, chunkCID(30_000 + owner)})
	}
	for _, k := range pending {
		if err := s.routers[k.owner].Provide(ctx, k.c); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 45*time.Second, "every new cid findable from every node", func() bool {
		rest := pending[:0]
		for _, k := range pending {
			if !s.findableFromAll(t, k.owner, k.c) {
				rest = append(rest, k)
			}
		}
		pending = rest
		return len(pending) == 0
	})
}

// TestProvideAfterClose: a closed router refuses to provide.
func TestProvideAfterClose(t *testing.T) {
	h := newTestHost(t, testKey(t, 7), MembershipAuth)
	r, err := NewDHT(context.Background(), h, Config{}, WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Provide(context.Background(), chunkCID(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("provide after close: %v, want ErrClosed", err)
	}
}

func testRecord(ts time.Time) ManifestRecord {
	return ManifestRecord{
		Bucket: "photos", Key: "2024/cat.jpg", ETag: `"9b2cf535f27731c974343645a3985328"`,
		Size: 10 << 20, ChunkSize: 4 << 20, Hash: string(content.SHA256),
		Manifest: content.Sum(content.SHA256, []byte("manifest")), Timestamp: ts,
	}
}

// getRecords looks rec's version up.
func getRecords(ctx context.Context, r *Router, rec ManifestRecord) ([]ManifestRecord, error) {
	return r.GetManifestRecords(ctx, rec.Bucket, rec.Key, rec.ETag, rec.ChunkSize, rec.Hash)
}

func TestSwarmManifestRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	s := newSwarm(t, 6, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	honest := testRecord(time.Now().Add(-time.Minute).UTC())
	if err := s.routers[1].PutManifestRecord(ctx, honest); err != nil {
		t.Fatal(err)
	}
	for i, r := range s.routers {
		got, err := getRecords(ctx, r, honest)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if len(got) != 1 || !got[0].SameClaim(honest) || got[0].Publisher != s.routers[1].Host().ID() || got[0].Verify() != nil {
			t.Fatalf("node %d: got %+v want %+v signed by node 1", i, got, honest)
		}
	}
	// Another member claims another manifest for the same version, dated
	// as far ahead as the validators allow: it does not displace the
	// earlier claim, and readers see the conflict.
	forged := honest
	forged.Manifest = content.Sum(content.SHA256, []byte("forged manifest"))
	forged.Timestamp = time.Now().Add(MaxClockSkew - 10*time.Second)
	// (A peer that holds the earlier claim refuses to replace it: the
	// publisher's own store may already say no.)
	_ = s.routers[4].PutManifestRecord(ctx, forged)
	got, err := getRecords(ctx, s.routers[0], honest)
	if err != nil || len(got) == 0 || !got[0].SameClaim(honest) {
		t.Fatalf("after a later, conflicting put: %+v, %v (want the first claim first)", got, err)
	}
	// A record dated beyond the skew window is refused by the publisher's
	// own DHT before it goes anywhere.
	future := honest
	future.Manifest = content.Sum(content.SHA256, []byte("far future"))
	future.Timestamp = time.Now().Add(time.Hour)
	if err := s.routers[5].PutManifestRecord(ctx, future); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("far-future record: %v, want ErrBadRecord", err)
	}

	missing := honest
	missing.Key = "missing"
	if _, err := getRecords(ctx, s.routers[2], missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing record: got %v, want ErrNotFound", err)
	}

	// A record stored under another object's key is refused by the network.
	val, _ := got[0].MarshalBinary()
	otherKey := ManifestRecordKey("photos", "2024/dog.jpg", honest.ETag, honest.ChunkSize, honest.Hash)
	if err := s.routers[3].dht.PutValue(ctx, otherKey, val); err == nil {
		t.Fatal("dht accepted a record under another object's key")
	}
	// Other namespaces are not served.
	if err := s.routers[3].dht.PutValue(ctx, "/pk/whatever", []byte("x")); err == nil {
		t.Fatal("dht accepted a /pk record")
	}
}

// TestSwarmManifestConflictSeen: when members hold different claims for a
// version (a forger's record reached some of the closest peers first), a
// lookup returns both, so the reader can settle it against the origin.
func TestSwarmManifestConflictSeen(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	s := newSwarm(t, 6, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	honest := testRecord(time.Now().Add(-time.Minute).UTC())
	forged := honest
	forged.Manifest = content.Sum(content.SHA256, []byte("forged manifest"))
	forged.Timestamp = honest.Timestamp.Add(-time.Second) // dated back: it wins the DHT
	if err := forged.Sign(signingKey(t, 9)); err != nil {
		t.Fatal(err)
	}
	fval, _ := forged.MarshalBinary()
	if err := s.routers[1].PutManifestRecord(ctx, honest); err != nil {
		t.Fatal(err)
	}
	// The forger writes its record straight into some peers' stores.
	for _, i := range []int{2, 3, 4} {
		if err := s.routers[i].dht.PutValue(ctx, honest.DHTKey(), fval); err != nil {
			t.Logf("router %d refused the forged value: %v", i, err)
		}
	}
	seen := false
	for range 5 {
		got, err := getRecords(ctx, s.routers[0], honest)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= 2 {
			seen = (got[0].SameClaim(honest) || got[1].SameClaim(honest)) &&
				(got[0].SameClaim(forged) || got[1].SameClaim(forged))
			break
		}
	}
	if !seen {
		t.Fatal("a lookup over peers holding different claims did not report the conflict")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for name, c := range map[string]Config{
		"reprovide beyond validity": {ProvideValidity: 10 * time.Minute, ReprovideInterval: 15 * time.Minute},
		"negative bucket":           {BucketSize: -1},
		"too few workers":           {ProvideWorkers: 2},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestLookupsWithHungPeer: a peer that keeps its connections open but never
// answers a DHT query (a frozen process, a partition) must not hold lookups
// for kad-dht's 10 s per-query timeout: a manifest record this node holds
// (and another peer confirms) and the providers it knows are returned
// within a deadline shorter than that timeout.
func TestLookupsWithHungPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	s := newSwarm(t, 3, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner, asker := s.routers[0], s.routers[1]
	rec := testRecord(time.Now().UTC())
	if err := owner.PutManifestRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	c := chunkCID(42)
	if err := owner.Provide(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "provider record reached the asker", func() bool {
		return s.findableFromAll(t, 0, c)
	})

	// The owner hangs: its DHT handler reads nothing and answers nothing.
	// Streams already open are reset, so the asker's next query opens a
	// new stream and meets the silent handler.
	kad := protocol.ID(ProtocolPrefix + "/kad/1.0.0")
	owner.Host().SetStreamHandler(kad, func(st network.Stream) {
		_, _ = io.Copy(io.Discard, st) // until the asker gives up and resets
	})
	for _, conn := range owner.Host().Network().Conns() {
		for _, st := range conn.GetStreams() {
			if st.Protocol() == kad {
				_ = st.Reset()
			}
		}
	}
	// Each lookup gets less than kad-dht's 10 s per-peer query timeout:
	// only an early return passes (with slack for a loaded CI machine).
	lctx, lcancel := context.WithTimeout(ctx, 8*time.Second)
	defer lcancel()
	got, err := getRecords(lctx, asker, rec)
	if err != nil || !got[0].SameClaim(rec) {
		t.Fatalf("manifest record with a hung peer: %+v, %v", got, err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 8*time.Second)
	defer pcancel()
	provs, err := asker.FindProviders(pctx, c, 8)
	if err != nil || !hasProvider(provs, owner.Host().ID()) {
		t.Fatalf("providers with a hung peer: %v, %v", provs, err)
	}
}

// TestLookupRightAfterJoin: a node that reads as soon as it has connected
// (before identify has put its peers in the routing table) still finds a
// record and the providers the cluster holds, instead of concluding that
// the cluster has none.
func TestLookupRightAfterJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm test")
	}
	s := newSwarm(t, 3, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := testRecord(time.Now().UTC())
	if err := s.routers[0].PutManifestRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	c := content.Sum(content.SHA256, []byte("held by node 1"))
	if err := s.routers[1].Provide(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "provider findable", func() bool {
		p, err := s.routers[2].FindProviders(ctx, c, 1)
		return err == nil && len(p) == 1
	})

	for round := range 3 {
		h := newTestHost(t, testKey(t, 7), MembershipAuth)
		late, err := NewDHT(ctx, h, Config{}, WithLogger(discardLogger()))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, info(s.routers[round%3].Host())); err != nil {
			t.Fatal(err)
		}
		got, err := getRecords(ctx, late, rec)
		if err != nil || !got[0].SameClaim(rec) {
			t.Fatalf("round %d: record right after joining: %+v, %v", round, got, err)
		}
		provs, err := late.FindProviders(ctx, c, 1)
		if err != nil || len(provs) != 1 || provs[0].ID != s.routers[1].Host().ID() {
			t.Fatalf("round %d: providers right after joining: %v, %v", round, provs, err)
		}
		late.Close()
		h.Close()
	}
}
