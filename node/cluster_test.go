package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// Unit tests of the cluster logic with in-memory collaborators; the
// swarm tests run the same paths over real libp2p hosts.

// recordingRouter is a MemoryRouter that records provide and stop calls.
type recordingRouter struct {
	*routing.MemoryRouter
	net      *routing.MemoryNetwork
	mu       sync.Mutex
	provided map[cid.Cid]int
	stopped  map[cid.Cid]int
}

func newRecordingRouter(self peer.ID) *recordingRouter {
	net := routing.NewMemoryNetwork()
	return &recordingRouter{
		MemoryRouter: net.Router(peer.AddrInfo{ID: self}), net: net,
		provided: map[cid.Cid]int{}, stopped: map[cid.Cid]int{},
	}
}

func (r *recordingRouter) Provide(ctx context.Context, c cid.Cid) error {
	r.mu.Lock()
	r.provided[c]++
	r.mu.Unlock()
	return r.MemoryRouter.Provide(ctx, c)
}

func (r *recordingRouter) StopProviding(ctx context.Context, c cid.Cid) error {
	r.mu.Lock()
	r.stopped[c]++
	r.mu.Unlock()
	return r.MemoryRouter.StopProviding(ctx, c)
}

func (r *recordingRouter) counts(c cid.Cid) (provided, stopped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.provided[c], r.stopped[c]
}

// fixedMembers is a static member list.
type fixedMembers struct {
	self  peer.ID
	peers []peer.ID
}

func (m fixedMembers) Self() peer.ID      { return m.self }
func (m fixedMembers) Members() []peer.ID { return slices.Clone(m.peers) }

// fakeTransfer answers Fetch and Meta per peer with the given functions and
// records who was asked.
type fakeTransfer struct {
	mu        sync.Mutex // guards asked and penalized
	asked     []peer.ID
	penalized map[peer.ID]bool
	fetch     func(p peer.ID, key []byte) (cid.Cid, []byte, error)
	// get answers GetVerified (nil: no provider delivers).
	get  func(c cid.Cid) ([]byte, error)
	meta func(p peer.ID, key []byte) ([]byte, error)
}

// penalize puts p in the penalty box (as transfer.Client does with a peer
// that stalled).
func (f *fakeTransfer) penalize(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.penalized == nil {
		f.penalized = make(map[peer.ID]bool)
	}
	f.penalized[p] = true
}

// PenalizeLiar penalizes p as transfer.Client does for a proven lie.
func (f *fakeTransfer) PenalizeLiar(p peer.ID, why string) { f.penalize(p) }

func (f *fakeTransfer) Penalized(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.penalized[p]
}

func (f *fakeTransfer) record(p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, p)
}

func (f *fakeTransfer) calls() []peer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

func (f *fakeTransfer) GetVerified(ctx context.Context, c cid.Cid, providers []peer.AddrInfo) (content.Block, error) {
	if f.get == nil {
		return content.Block{}, transfer.ErrNoProviders
	}
	data, err := f.get(c)
	if err != nil {
		return content.Block{}, err
	}
	b, err := content.VerifyBlock(c, data)
	if err != nil {
		return content.Block{}, fmt.Errorf("%w: %w", transfer.ErrCorrupt, err)
	}
	return b, nil
}

// FetchVerified checks the fake home's answer against the CID it names, as
// transfer.Client does: bytes that do not match are ErrCorrupt.
func (f *fakeTransfer) FetchVerified(ctx context.Context, p peer.ID, key []byte) (content.Block, error) {
	f.record(p)
	if f.fetch == nil {
		return content.Block{}, transfer.ErrUnavailable
	}
	c, data, err := f.fetch(p, key)
	if err != nil {
		return content.Block{}, err
	}
	b, err := content.VerifyBlock(c, data)
	if err != nil {
		return content.Block{}, fmt.Errorf("%w: %w", transfer.ErrCorrupt, err)
	}
	return b, nil
}

func (f *fakeTransfer) Meta(ctx context.Context, p peer.ID, key []byte) ([]byte, error) {
	f.record(p)
	if f.meta == nil {
		return nil, transfer.ErrUnavailable
	}
	return f.meta(p, key)
}

func testPeers(n int) []peer.ID {
	out := make([]peer.ID, n)
	for i := range out {
		out[i] = peer.ID(fmt.Sprintf("peer-%03d", i))
	}
	return out
}

type clusterEnv struct {
	n      *Node
	store  *memStore
	org    *fakeOrigin
	cat    *catalog.Catalog
	router *recordingRouter
	tr     *fakeTransfer
	self   peer.ID
	others []peer.ID
}

// newClusterEnv builds a node whose cluster is in-memory: a recording
// router, a scripted transfer client and a fixed member list. Run is
// started and stopped with the test.
func newClusterEnv(t *testing.T, others []peer.ID) *clusterEnv {
	t.Helper()
	return newClusterEnvWith(t, others, Config{ChunkSize: cs}, nil)
}

// newClusterEnvWith is newClusterEnv with a configuration, and a hook
// that sets up the fakes before the node is built.
//
// The random spot check (SpotCheckRate) is off unless cfg asks for it:
// tests count origin requests exactly, and a 1% re-read of a chunk from a
// peer would make them fail now and then.
func newClusterEnvWith(t *testing.T, others []peer.ID, cfg Config, setup func(*clusterEnv)) *clusterEnv {
	t.Helper()
	if cfg.SpotCheckRate == 0 {
		cfg.SpotCheckRate = -1
	}
	self := peer.ID("self")
	e := &clusterEnv{store: newMemStore(), org: newFakeOrigin(), router: newRecordingRouter(self),
		tr: &fakeTransfer{}, self: self, others: others}
	cat, err := catalog.Open("", catalog.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e.cat = cat
	if setup != nil {
		setup(e)
	}
	e.n, err = New(cfg, e.store, e.org, cat,
		WithCluster(Cluster{Router: e.router, Transfer: e.tr, Members: fixedMembers{self, others}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.n.Run(ctx) }()
	await(t, "Run takes background tasks", func() bool {
		e.n.bg.mu.Lock()
		defer e.n.bg.mu.Unlock()
		return e.n.bg.running
	})
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		e.n.Close()
	})
	return e
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, 10*time.Second, what, cond)
}

// TestAnnounceAndEvict: chunks are announced as they land, the manifest
// record is published, and an evicted block is no longer announced.
func TestAnnounceAndEvict(t *testing.T) {
	e := newClusterEnv(t, nil) // alone: this node is every home
	data := randBytes(3*cs, 10)
	e.org.set("b", "k", data)
	mustGet(t, e.n, "k", data)
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))
	chunks, err := e.cat.Chunks(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := e.cat.Manifest(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(chunks, mc) {
		await(t, "block announced", func() bool { p, _ := e.router.counts(c); return p > 0 })
	}
	await(t, "manifest record published", func() bool {
		recs, err := e.router.GetManifestRecords(t.Context(), "b", "k", etagOf(data), cs, v.Hash)
		return err == nil && len(recs) == 1 && recs[0].Manifest.Equals(mc) && recs[0].ChunkSize == cs && recs[0].Size == int64(len(data))
	})

	// A block the store evicted: stop announcing it.
	e.store.evict(chunks[1])
	await(t, "evicted block withdrawn", func() bool { _, s := e.router.counts(chunks[1]); return s == 1 })
	// A removal reported for a block that is back in the store (a racing
	// re-put): keep announcing it.
	e.store.removals.Add(chunks[0])
	e.store.removals.Add(chunks[2])
	e.store.evict(chunks[2])
	await(t, "second eviction handled", func() bool { _, s := e.router.counts(chunks[2]); return s == 1 })
	if _, s := e.router.counts(chunks[0]); s != 0 {
		t.Errorf("a block still stored was withdrawn")
	}
	st, err := e.n.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Cluster.ProvidesQueued < 4 || st.Cluster.ManifestsPublished != 1 {
		t.Errorf("cluster status: %+v", st.Cluster)
	}
}

// TestRunAnnouncesStoredBlocks: after a restart Run re-announces what the
// store holds.
func TestRunAnnouncesStoredBlocks(t *testing.T) {
	self := peer.ID("self")
	store := newMemStore()
	blocks := make([]cid.Cid, 5)
	for i := range blocks {
		b := randBytes(100, uint64(i))
		blocks[i] = content.Sum(content.SHA256, b)
		if err := store.Put(t.Context(), blocks[i], b); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Open("", catalog.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	r := newRecordingRouter(self)
	n, err := New(Config{ChunkSize: cs}, store, newFakeOrigin(), cat,
		WithCluster(Cluster{Router: r, Transfer: &fakeTransfer{}, Members: fixedMembers{self: self}}))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for _, c := range blocks {
		await(t, "stored block announced", func() bool { p, _ := r.counts(c); return p == 1 })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v on cancel", err)
	}
}

// TestRunWithoutCluster: Run just waits; a removal from the store is
// taken and ignored.
func TestRunWithoutCluster(t *testing.T) {
	e := newEnv(t, Config{})
	e.store.removals.Add(content.Sum(content.SHA256, []byte("x")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.n.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.n.Status(t.Context()); st.Cluster.Enabled {
		t.Error("cluster status enabled without a cluster")
	}
}

func TestWithClusterValidation(t *testing.T) {
	cat, err := catalog.Open("", catalog.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	_, err = New(Config{}, newMemStore(), newFakeOrigin(), cat, WithCluster(Cluster{}))
	if err == nil {
		t.Fatal("New accepted a cluster without router, transfer and members")
	}
}

// homeOrder is the home order of chunk i of v as e's node sees it.
func (e *clusterEnv) homeOrder(v catalog.Version, i int64) []peer.ID {
	return chunkHomes(v, i, e.self, e.others, nil, len(e.others)+1)
}

// TestHomeFailover: a chunk miss goes to the chunk's home; a failing or
// lying home is skipped for the next candidate; after the candidates before
// this node, the node reads the origin itself.
func TestHomeFailover(t *testing.T) {
	others := testPeers(9)
	e := newClusterEnv(t, others)
	data := randBytes(40*cs, 11)
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))
	chunkOf := func(key []byte) []byte {
		kv, i, err := decodeChunkKey(key)
		if err != nil || kv != v {
			t.Errorf("bad key: %v", err)
			return nil
		}
		return data[i*cs : (i+1)*cs]
	}
	// Per chunk, the first home fails, the second sends bytes that do not
	// match the CID it names, the third serves.
	e.tr.fetch = func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
		_, i, _ := decodeChunkKey(key)
		order := e.homeOrder(v, i)
		b := chunkOf(key)
		switch p {
		case order[0]:
			return cid.Undef, nil, fmt.Errorf("dial: %w", transfer.ErrUnavailable)
		case order[1]:
			return content.Sum(content.SHA256, b), bytes2(b), nil
		}
		return content.Sum(content.SHA256, b), b, nil
	}
	e.tr.meta = func(p peer.ID, key []byte) ([]byte, error) { return nil, transfer.ErrUnavailable }
	mustGet(t, e.n, "k", data)

	var wantOrigin, wantHome int
	var wantAsked []peer.ID
	for i := range int64(40) {
		order := e.homeOrder(v, i)
		pos := slices.Index(order, e.self)
		switch {
		case pos < 3: // this node comes before the serving third home
			wantOrigin++
			wantAsked = append(wantAsked, order[:pos]...)
		default:
			wantHome++
			wantAsked = append(wantAsked, order[:3]...)
		}
	}
	if wantOrigin == 0 || wantHome == 0 {
		t.Fatalf("test data does not exercise both paths (origin %d, home %d)", wantOrigin, wantHome)
	}
	if g := e.org.count("GetRange"); g != wantOrigin {
		t.Errorf("origin GETs %d, want %d", g, wantOrigin)
	}
	st, _ := e.n.Status(t.Context())
	if st.ChunkHome != int64(wantHome) || st.ChunkOrigin != int64(wantOrigin) {
		t.Errorf("chunks from homes %d, origin %d; want %d, %d", st.ChunkHome, st.ChunkOrigin, wantHome, wantOrigin)
	}
	// The metadata miss went to its homes too (all failing).
	if got, want := len(e.tr.calls()), len(wantAsked)+metaAsks(e, "b", "k"); got != want {
		t.Errorf("%d requests to homes, want %d", got, want)
	}
}

// TestHomeKnownCIDRejectsLiar: when the chunk's CID is known, a home whose
// answer is self-consistent but names another CID is not believed.
func TestHomeKnownCIDRejectsLiar(t *testing.T) {
	e := newClusterEnv(t, testPeers(3))
	data := randBytes(8*cs, 14)
	e.org.set("b", "k", data)
	mustGet(t, e.n, "k", data) // every home fails: this node reads the origin
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))
	chunks, err := e.cat.Chunks(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		e.store.remove(c) // evicted; the catalog still knows the CIDs
	}
	e.tr.fetch = func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
		_, i, _ := decodeChunkKey(key)
		bad := bytes2(data[i*cs : (i+1)*cs])
		return content.Sum(content.SHA256, bad), bad, nil
	}
	before := e.org.count("GetRange")
	mustGet(t, e.n, "k", data)
	if g := e.org.count("GetRange") - before; g != 8 {
		t.Errorf("origin GETs %d after lying homes, want 8", g)
	}
}

// metaAsks is how many homes a metadata miss of bucket/key asks when every
// one fails (those before this node, at most DefaultHomeCandidates).
func metaAsks(e *clusterEnv, bucket, key string) int {
	order := rendezvous(placement.MetaSeed(bucket, key), e.self, e.others, DefaultHomeCandidates)
	if i := slices.Index(order, e.self); i >= 0 {
		return i
	}
	return len(order)
}

func bytes2(b []byte) []byte {
	out := slices.Clone(b)
	out[0] ^= 1
	return out
}

// TestMetaFromHome: a HEAD miss asks the key's home instead of the origin;
// a NoSuchKey answer is NoSuchKey here too.
func TestMetaFromHome(t *testing.T) {
	others := testPeers(3)
	e := newClusterEnv(t, others)
	// Pick keys whose home is another node.
	var key, missing string
	for i := 0; key == "" || missing == ""; i++ {
		k := fmt.Sprintf("key-%d", i)
		if rendezvous(placement.MetaSeed("b", k), e.self, others, 1)[0] == e.self {
			continue
		}
		if key == "" {
			key = k
		} else {
			missing = k
		}
	}
	info := catalog.Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: key, ETag: `"abc"`, Size: 42, ContentType: "text/plain",
		Metadata: map[string]string{"a": "b"}}}
	e.tr.meta = func(p peer.ID, k []byte) ([]byte, error) {
		b, kk, err := decodeMetaKey(k)
		if err != nil {
			return nil, err
		}
		if rendezvous(placement.MetaSeed(b, kk), e.self, others, 1)[0] != p {
			return nil, errors.New("asked the wrong home")
		}
		if kk == missing {
			return encodeMetaAnswer(metaAnswer{Status: metaNoKey})
		}
		return encodeMetaAnswer(metaAnswer{Status: metaOK, Object: &info, Age: time.Second})
	}
	got, err := e.n.HeadObject(t.Context(), "b", key)
	if err != nil {
		t.Fatal(err)
	}
	if got.ETag != info.ETag || got.Size != 42 || got.ContentType != "text/plain" || got.Metadata["a"] != "b" {
		t.Errorf("head: %+v", got)
	}
	if _, err := e.n.HeadObject(t.Context(), "b", missing); !errors.Is(err, gateway.ErrNoSuchKey) {
		t.Errorf("missing key: %v, want NoSuchKey", err)
	}
	if h := e.org.count("HeadObject"); h != 0 {
		t.Errorf("%d origin HEADs, want 0", h)
	}
	// Cached now: no second request.
	before := len(e.tr.calls())
	if _, err := e.n.HeadObject(t.Context(), "b", key); err != nil {
		t.Fatal(err)
	}
	if len(e.tr.calls()) != before {
		t.Error("fresh metadata asked the home again")
	}
}

// TestMetaHomeDown: when every home candidate fails the node asks the
// origin itself.
func TestMetaHomeDown(t *testing.T) {
	e := newClusterEnv(t, testPeers(4))
	data := randBytes(100, 12)
	e.org.set("b", "k", data)
	mustGet(t, e.n, "k", data)
	if h := e.org.count("HeadObject"); h != 1 {
		t.Errorf("%d origin HEADs, want 1", h)
	}
	if got, want := len(e.tr.calls()), metaAsks(e, "b", "k")+chunkAsksAllFail(e, "b", "k", data); got != want {
		t.Errorf("%d home requests, want %d", got, want)
	}
}

func chunkAsksAllFail(e *clusterEnv, bucket, key string, data []byte) int {
	v := e.n.version(bucket, key, etagOf(data), int64(len(data)))
	n := 0
	for i := range v.NumChunks() {
		order := chunkHomes(v, i, e.self, e.others, nil, DefaultHomeCandidates)
		if j := slices.Index(order, e.self); j >= 0 {
			n += j
		} else {
			n += len(order)
		}
	}
	return n
}

// TestPeerHandler: GetBlock serves only the local store; Fetch and Meta
// serve as home without forwarding; bad keys are refused.
func TestPeerHandler(t *testing.T) {
	e := newClusterEnv(t, testPeers(5))
	h := e.n.PeerHandler()
	ctx := t.Context()
	data := randBytes(2*cs+1, 13)
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))

	if _, err := h.GetBlock(ctx, content.Sum(content.SHA256, data[:cs])); !errors.Is(err, transfer.ErrNotFound) {
		t.Errorf("GetBlock of an absent block: %v", err)
	}
	if e.org.total() != 0 {
		t.Fatal("GetBlock touched the origin")
	}
	for i := range v.NumChunks() {
		c, b, err := h.Fetch(ctx, encodeChunkKey(v, i))
		if err != nil {
			t.Fatal(err)
		}
		want := data[i*cs : min((i+1)*cs, int64(len(data)))]
		if !slices.Equal(b, want) || !c.Equals(content.Sum(content.SHA256, want)) {
			t.Fatalf("Fetch chunk %d: wrong answer", i)
		}
		got, err := h.GetBlock(ctx, c)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("GetBlock after Fetch: %v", err)
		}
	}
	if len(e.tr.calls()) != 0 {
		t.Errorf("requests served as home were forwarded to %v", e.tr.calls())
	}
	if g := e.org.count("GetRange"); g != 3 {
		t.Errorf("origin GETs %d, want 3", g)
	}
	// Meta as home: asks the origin, not another home.
	b, err := h.Meta(ctx, encodeMetaKey("b", "k"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodeMetaAnswer(b, "b", "k")
	if err != nil || a.Status != metaOK || a.Object.ETag != etagOf(data) || a.Object.Size != int64(len(data)) {
		t.Fatalf("meta answer %+v, %v", a, err)
	}
	b, err = h.Meta(ctx, encodeMetaKey("b", "nope"))
	if a, err2 := decodeMetaAnswer(b, "b", "nope"); err != nil || err2 != nil || a.Status != metaNoKey {
		t.Errorf("meta of a missing key: %+v %v %v", a, err, err2)
	}
	b, err = h.Meta(ctx, encodeMetaKey("nobucket", "k"))
	if a, err2 := decodeMetaAnswer(b, "nobucket", "k"); err != nil || err2 != nil || a.Status != metaNoBucket {
		t.Errorf("meta of a missing bucket: %+v %v %v", a, err, err2)
	}
	if len(e.tr.calls()) != 0 {
		t.Errorf("metadata served as home was forwarded to %v", e.tr.calls())
	}
	// Fetch of a version the origin no longer has: not found.
	gone := v
	gone.ETag = `"gone"`
	if _, _, err := h.Fetch(ctx, encodeChunkKey(gone, 0)); !errors.Is(err, transfer.ErrNotFound) {
		t.Errorf("Fetch of a vanished version: %v", err)
	}
	// Bad keys.
	for _, k := range [][]byte{nil, {0}, {chunkKeyTag}, encodeMetaKey("b", "k"), append(encodeChunkKey(v, 0), 0)} {
		if _, _, err := h.Fetch(ctx, k); !errors.Is(err, ErrBadKey) {
			t.Errorf("Fetch(%x): %v, want ErrBadKey", k, err)
		}
	}
	if _, err := h.Meta(ctx, encodeChunkKey(v, 0)); !errors.Is(err, ErrBadKey) {
		t.Errorf("Meta of a chunk key: %v", err)
	}
}

// TestHomeSkipsPenalizedPeers: members in the transfer client's penalty box
// (a hung peer keeps its connections, so it stays a member) are left out
// of home selection, as if they had left: each chunk goes to the first
// home of the order without them, and this node reads the origin for the
// chunks it then comes first for.
func TestHomeSkipsPenalizedPeers(t *testing.T) {
	others := testPeers(5)
	e := newClusterEnv(t, others)
	bad := others[:2]
	for _, p := range bad {
		e.tr.penalize(p)
	}
	data := randBytes(30*cs, 15)
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))
	e.tr.fetch = func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
		_, i, err := decodeChunkKey(key)
		if err != nil {
			return cid.Undef, nil, err
		}
		b := data[i*cs : (i+1)*cs]
		return content.Sum(content.SHA256, b), b, nil
	}
	mustGet(t, e.n, "k", data)

	healthy := others[2:]
	var wantAsked []peer.ID
	wantOrigin := 0
	for i := range int64(30) {
		first := chunkHomes(v, i, e.self, others, func(p peer.ID) bool { return slices.Contains(bad, p) }, 1)[0]
		if first == e.self {
			wantOrigin++
			continue
		}
		wantAsked = append(wantAsked, first)
	}
	// The test data must have chunks whose unfiltered first home is a
	// penalized peer, or it proves nothing.
	skipped := 0
	for i := range int64(30) {
		if slices.Contains(bad, chunkHomes(v, i, e.self, others, nil, 1)[0]) {
			skipped++
		}
	}
	if skipped == 0 || wantOrigin == 0 {
		t.Fatalf("test data does not exercise skipping (%d chunks homed on penalized peers, %d on self)", skipped, wantOrigin)
	}
	var chunkAsks []peer.ID
	for _, p := range e.tr.calls() {
		if slices.Contains(bad, p) {
			t.Fatalf("penalized peer %s was asked", p)
		}
		chunkAsks = append(chunkAsks, p)
	}
	// Chunk requests plus the one metadata miss (its homes all fail).
	metaAsked := 0
	for _, p := range rendezvous(placement.MetaSeed("b", "k"), e.self, healthy, DefaultHomeCandidates) {
		if p == e.self {
			break
		}
		metaAsked++
	}
	if got, want := len(chunkAsks), len(wantAsked)+metaAsked; got != want {
		t.Errorf("%d home requests, want %d", got, want)
	}
	if g := e.org.count("GetRange"); g != wantOrigin {
		t.Errorf("origin GETs %d, want %d", g, wantOrigin)
	}
}

// TestStalledHomeIsSkippedAfterwards: a home that stalls is penalized by
// the transfer client; the next read does not ask it again.
func TestStalledHomeIsSkippedAfterwards(t *testing.T) {
	others := testPeers(3)
	e := newClusterEnv(t, others)
	hung := others[0]
	serve := func(data []byte) func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
		return func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
			if p == hung {
				e.tr.penalize(p) // what transfer.Client does on a stall
				return cid.Undef, nil, fmt.Errorf("fetch: %w", transfer.ErrStalled)
			}
			_, i, err := decodeChunkKey(key)
			if err != nil {
				return cid.Undef, nil, err
			}
			b := data[i*cs : (i+1)*cs]
			return content.Sum(content.SHA256, b), b, nil
		}
	}
	// Find an object with a chunk homed on the hung peer.
	var first, second []byte
	homedOnHung := func(key string, d []byte) bool {
		v := e.n.version("b", key, etagOf(d), int64(len(d)))
		for i := range v.NumChunks() {
			if chunkHomes(v, i, e.self, others, nil, 1)[0] == hung {
				return true
			}
		}
		return false
	}
	for seed := uint64(100); first == nil || second == nil; seed++ {
		d := randBytes(4*cs, seed)
		switch {
		case first == nil && homedOnHung("first", d):
			first = d
		case first != nil && homedOnHung("second", d):
			second = d
		}
	}
	e.org.set("b", "first", first)
	e.tr.fetch = serve(first)
	mustGet(t, e.n, "first", first)
	if !slices.Contains(e.tr.calls(), hung) {
		t.Fatal("the hung home was never asked: the test proves nothing")
	}
	before := len(e.tr.calls())
	e.org.set("b", "second", second)
	e.tr.fetch = serve(second)
	mustGet(t, e.n, "second", second)
	if slices.Contains(e.tr.calls()[before:], hung) {
		t.Error("a penalized home was asked again")
	}
}
