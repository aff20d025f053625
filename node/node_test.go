package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node/originfetch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// libp2p's process-wide helpers, started once and never stopped.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/transport/tcpreuse.(*ConnMgr).listen"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
	)
}

const cs = minChunkSize // 64 KiB chunks keep tests small

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	n     *Node
	store *memStore
	org   *fakeOrigin
	cat   *catalog.Catalog
	dir   string
	clock *fakeClock
	cfg   Config
}

func openCatalog(t *testing.T, dir string) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = cs
	}
	e := &env{store: newMemStore(), org: newFakeOrigin(), dir: t.TempDir(),
		clock: &fakeClock{t: epoch}, cfg: cfg}
	e.cat = openCatalog(t, e.dir)
	e.n = e.newNode(t)
	return e
}

func (e *env) newNode(t *testing.T, opts ...Option) *Node {
	t.Helper()
	opts = append([]Option{WithClock(e.clock.now), WithRegisterer(prometheus.NewRegistry())}, opts...)
	n, err := New(e.cfg, e.store, e.org, e.cat, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// restart closes the node and catalog and opens both again on the same
// directory (the block store is kept, as a persistent store would be).
func (e *env) restart(t *testing.T, opts ...Option) {
	t.Helper()
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.cat.Close(); err != nil {
		t.Fatal(err)
	}
	e.cat = openCatalog(t, e.dir)
	e.n = e.newNode(t, opts...)
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// get does what the gateway does: HEAD for the version, then read a range.
func get(ctx context.Context, n *Node, bucket, key string, off, length int64) ([]byte, error) {
	info, err := n.HeadObject(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	if length < 0 {
		length = info.Size - off
	}
	rc, err := n.GetObject(ctx, info, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestByteExactReads(t *testing.T) {
	e := newEnv(t, Config{ReadAhead: 2})
	ctx := t.Context()
	sizes := []int{0, 1, 100, cs - 1, cs, cs + 1, 5*cs - 3, 5 * cs}
	for i, size := range sizes {
		key := "obj" + string(rune('a'+i))
		data := randBytes(size, uint64(i))
		e.org.set("b", key, data)
		ranges := [][2]int{{0, size}}
		if size > 2 {
			ranges = append(ranges, [2]int{1, size - 2}, [2]int{size / 2, size - size/2}, [2]int{size - 1, 1})
		}
		if size > cs+10 {
			ranges = append(ranges, [2]int{cs - 5, 10}, [2]int{cs, cs / 2}, [2]int{0, cs})
		}
		for _, r := range ranges {
			got, err := get(ctx, e.n, "b", key, int64(r[0]), int64(r[1]))
			if err != nil {
				t.Fatalf("size %d range %v: %v", size, r, err)
			}
			if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Fatalf("size %d range %v: wrong bytes (got %d bytes)", size, r, len(got))
			}
		}
	}
	// Everything is cached now: a second pass reads no chunk from the origin.
	before := e.org.count("GetRange")
	for i, size := range sizes {
		key := "obj" + string(rune('a'+i))
		got, err := get(ctx, e.n, "b", key, 0, -1)
		if err != nil || !bytes.Equal(got, randBytes(size, uint64(i))) {
			t.Fatalf("cached read of %s: %v", key, err)
		}
	}
	if got := e.org.count("GetRange") - before; got != 0 {
		t.Fatalf("cached reads made %d origin range requests", got)
	}
}

func TestGetObjectRejectsBadRanges(t *testing.T) {
	e := newEnv(t, Config{})
	e.org.set("b", "k", randBytes(10, 1))
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{-1, 1}, {0, -1}, {0, 11}, {11, 0}, {5, 6}, {1, 1 << 62}} {
		if _, err := e.n.GetObject(t.Context(), info, r[0], r[1]); !errors.Is(err, gateway.ErrInvalidArgument) {
			t.Errorf("range %v: got %v, want ErrInvalidArgument", r, err)
		}
	}
}

func TestRangeFetchesOnlyCoveringChunks(t *testing.T) {
	e := newEnv(t, Config{})
	data := randBytes(5*cs-100, 2)
	e.org.set("b", "k", data)
	got, err := get(t.Context(), e.n, "b", "k", cs+10, cs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[cs+10:2*cs+10]) {
		t.Fatal("wrong bytes")
	}
	for i := range int64(5) {
		want := 0
		if i == 1 || i == 2 {
			want = 1
		}
		if c := e.org.rangeCalls("b", "k", i*cs); c != want {
			t.Errorf("chunk %d: %d origin fetches, want %d", i, c, want)
		}
	}
}

// waitFor polls cond; the test's own deadline bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatal("condition never met")
		}
		time.Sleep(time.Millisecond)
	}
}

func (n *Node) waiters(key string) int {
	n.chunks.mu.Lock()
	defer n.chunks.mu.Unlock()
	if c, ok := n.chunks.calls[key]; ok {
		return c.waiters
	}
	return 0
}

func TestOneOriginFetchPerChunkUnderConcurrentReaders(t *testing.T) {
	// The gate below holds the origin's answer as long as the readers take
	// to line up; a hedged second request is not what this test counts.
	e := newEnv(t, Config{ReadAhead: 4, Fetch: noHedge})
	data := randBytes(5*cs-7, 3)
	e.org.set("b", "k", data)
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	e.org.mu.Lock()
	e.org.gate = gate
	e.org.mu.Unlock()

	const readers = 32
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			rc, err := e.n.GetObject(t.Context(), info, 0, info.Size)
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data) {
				errs <- errors.New("wrong bytes")
			}
		})
	}
	// All 32 readers wait on the one shared fetch of chunk 0.
	v := e.n.version("b", "k", info.ETag, info.Size)
	waitFor(t, func() bool { return e.n.waiters(homeFlightKey(v, 0)) == readers })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range int64(5) {
		if c := e.org.rangeCalls("b", "k", i*cs); c != 1 {
			t.Errorf("chunk %d fetched %d times from the origin, want 1", i, c)
		}
	}
	st, err := e.n.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.SharedFetches < readers-1 || st.ChunkOrigin != 5 || st.OriginBytes != int64(len(data)) {
		t.Errorf("status: %+v", st)
	}
}

func TestSharedFetchSurvivesOneReaderLeaving(t *testing.T) {
	e := newEnv(t, Config{ReadAhead: 1, Fetch: noHedge}) // the gate holds the answer
	data := randBytes(cs/2, 4)
	e.org.set("b", "k", data)
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	e.org.mu.Lock()
	e.org.gate = gate
	e.org.mu.Unlock()
	v := e.n.version("b", "k", info.ETag, info.Size)

	ctxA, cancelA := context.WithCancel(t.Context())
	errA := make(chan error, 1)
	go func() {
		_, err := e.n.GetObject(ctxA, info, 0, info.Size)
		errA <- err
	}()
	waitFor(t, func() bool { return e.n.waiters(homeFlightKey(v, 0)) == 1 })
	resB := make(chan []byte, 1)
	go func() {
		got, err := get(t.Context(), e.n, "b", "k", 0, -1)
		if err != nil {
			t.Error(err)
		}
		resB <- got
	}()
	waitFor(t, func() bool { return e.n.waiters(homeFlightKey(v, 0)) == 2 })
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("reader A: got %v, want context.Canceled", err)
	}
	close(gate)
	if got := <-resB; !bytes.Equal(got, data) {
		t.Fatal("reader B got wrong bytes")
	}
	if c := e.org.rangeCalls("b", "k", 0); c != 1 {
		t.Fatalf("%d origin fetches, want 1 (the shared fetch must not restart)", c)
	}
}

func TestCloseReaderEarlyStopsFetches(t *testing.T) {
	e := newEnv(t, Config{ReadAhead: 4})
	e.org.set("b", "k", randBytes(20*cs, 5))
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.n.GetObject(t.Context(), info, 0, info.Size)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(buf); err == nil {
		t.Fatal("read after close succeeded")
	}
	// Bounded read-ahead: far fewer than 20 chunks were requested.
	if c := e.org.count("GetRange"); c > 1+4 {
		t.Fatalf("%d chunks fetched for a 100-byte read with read-ahead 4", c)
	}
}

func TestETagChangeAfterTTL(t *testing.T) {
	e := newEnv(t, Config{MetadataTTL: 30 * time.Second, ReadAhead: 1})
	ctx := t.Context()
	v1 := randBytes(5*cs, 6)
	e.org.set("b", "k", v1)
	got, err := get(ctx, e.n, "b", "k", 0, cs) // caches chunk 0 of v1 only
	if err != nil || !bytes.Equal(got, v1[:cs]) {
		t.Fatal("first read", err)
	}
	// A reader starts on v1 ...
	info1, err := e.n.HeadObject(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	old, err := e.n.GetObject(ctx, info1, 0, info1.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// ... the object changes at the origin ...
	v2 := randBytes(3*cs+5, 7)
	e.org.set("b", "k", v2)
	// ... within the TTL the node still answers v1 without asking.
	heads := e.org.count("HeadObject")
	if info, err := e.n.HeadObject(ctx, "b", "k"); err != nil || info.ETag != info1.ETag {
		t.Fatalf("within TTL: %v %v", info.ETag, err)
	}
	if e.org.count("HeadObject") != heads {
		t.Fatal("HEAD within TTL reached the origin")
	}
	e.clock.advance(31 * time.Second)
	got, err = get(ctx, e.n, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("after TTL: %v, %d bytes", err, len(got))
	}
	// The old reader gets a prefix of v1 then an error: never v2's bytes.
	rest, err := io.ReadAll(old)
	if !errors.Is(err, gateway.ErrPreconditionFailed) {
		t.Fatalf("old reader: got %v, want ErrPreconditionFailed", err)
	}
	if !bytes.HasPrefix(v1, rest) {
		t.Fatal("old reader got bytes that are not v1's")
	}
	// A new GetObject for the old version fails up front.
	if _, err := e.n.GetObject(ctx, info1, 2*cs, 10); !errors.Is(err, gateway.ErrPreconditionFailed) {
		t.Fatalf("old version: got %v, want ErrPreconditionFailed", err)
	}
}

func TestSameETagAfterTTLRefreshesOnly(t *testing.T) {
	e := newEnv(t, Config{MetadataTTL: 10 * time.Second})
	data := randBytes(2*cs, 8)
	e.org.set("b", "k", data)
	if _, err := get(t.Context(), e.n, "b", "k", 0, -1); err != nil {
		t.Fatal(err)
	}
	ranges := e.org.count("GetRange")
	e.clock.advance(11 * time.Second)
	got, err := get(t.Context(), e.n, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatal(err)
	}
	if e.org.count("HeadObject") != 2 || e.org.count("GetRange") != ranges {
		t.Fatalf("heads %d, ranges %d->%d", e.org.count("HeadObject"), ranges, e.org.count("GetRange"))
	}
	// Refreshed: within the new TTL window, no HEAD.
	e.clock.advance(5 * time.Second)
	if _, err := e.n.HeadObject(t.Context(), "b", "k"); err != nil || e.org.count("HeadObject") != 2 {
		t.Fatalf("refresh not recorded: %v, heads %d", err, e.org.count("HeadObject"))
	}
}

func TestRestartServesWithoutOrigin(t *testing.T) {
	e := newEnv(t, Config{Immutable: []string{"b/immutable/"}})
	ctx := t.Context()
	objs := map[string][]byte{"a": randBytes(3*cs+1, 9), "immutable/x": randBytes(cs+2, 10), "empty": nil}
	for k, d := range objs {
		e.org.set("b", k, d)
		if _, err := get(ctx, e.n, "b", k, 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	e.restart(t)
	e.org.setDown(true)
	before := e.org.total()
	for k, d := range objs {
		got, err := get(ctx, e.n, "b", k, 0, -1)
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("%s after restart: %v", k, err)
		}
	}
	if c := e.org.total() - before; c != 0 {
		t.Fatalf("restart within TTL: %d origin calls, want 0", c)
	}
	// Long after the TTL, immutable objects are still served without the origin.
	e.clock.advance(24 * time.Hour)
	e.org.setDown(false)
	before = e.org.total()
	got, err := get(ctx, e.n, "b", "immutable/x", 0, -1)
	if err != nil || !bytes.Equal(got, objs["immutable/x"]) {
		t.Fatal(err)
	}
	if c := e.org.total() - before; c != 0 {
		t.Fatalf("immutable object: %d origin calls, want 0", c)
	}
}

func TestOriginDownServesCachedOnly(t *testing.T) {
	e := newEnv(t, Config{})
	data := randBytes(2*cs+3, 11)
	e.org.set("b", "cached", data)
	e.org.set("b", "uncached", data)
	if _, err := get(t.Context(), e.n, "b", "cached", 0, -1); err != nil {
		t.Fatal(err)
	}
	e.org.setDown(true)
	e.clock.advance(time.Hour) // metadata is stale
	got, err := get(t.Context(), e.n, "b", "cached", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached object with origin down: %v", err)
	}
	if _, err := get(t.Context(), e.n, "b", "uncached", 0, -1); !errors.Is(err, gateway.ErrUnavailable) {
		t.Fatalf("uncached object with origin down: got %v, want ErrUnavailable", err)
	}
	if _, err := e.n.ListObjectsV2(t.Context(), gateway.ListParams{Bucket: "b"}); !errors.Is(err, gateway.ErrUnavailable) {
		t.Fatalf("list with origin down: %v", err)
	}
	st, _ := e.n.Status(t.Context())
	if st.StaleServed == 0 {
		t.Error("stale serving not counted")
	}
}

func TestMissingOrCorruptChunkRefetched(t *testing.T) {
	e := newEnv(t, Config{})
	data := randBytes(4*cs+9, 12)
	e.org.set("b", "k", data)
	if _, err := get(t.Context(), e.n, "b", "k", 0, -1); err != nil {
		t.Fatal(err)
	}
	info, _ := e.n.HeadObject(t.Context(), "b", "k")
	v := e.n.version("b", "k", info.ETag, info.Size)
	c1, _ := e.cat.Chunk(t.Context(), v, 1)
	c3, _ := e.cat.Chunk(t.Context(), v, 3)
	e.store.remove(c1)
	e.store.corrupt(c3)
	got, err := get(t.Context(), e.n, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after damage: %v", err)
	}
	for i, want := range []int{1, 2, 1, 2, 1} {
		if c := e.org.rangeCalls("b", "k", int64(i)*cs); c != want {
			t.Errorf("chunk %d: %d origin fetches, want %d", i, c, want)
		}
	}
	if ok, _ := e.store.Has(t.Context(), c3); !ok {
		t.Error("refetched chunk not stored again")
	}
}

func TestManifestBuiltWhenComplete(t *testing.T) {
	for _, h := range []content.Hash{content.SHA256, content.BLAKE3} {
		t.Run(string(h), func(t *testing.T) {
			e := newEnv(t, Config{Hash: h})
			data := randBytes(3*cs-1, 13)
			e.org.set("b", "k", data)
			if _, err := get(t.Context(), e.n, "b", "k", 0, cs); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.n.Manifest(t.Context(), "b", "k"); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("manifest of a partly fetched version: %v", err)
			}
			if _, err := get(t.Context(), e.n, "b", "k", 0, -1); err != nil {
				t.Fatal(err)
			}
			m, c, err := e.n.Manifest(t.Context(), "b", "k")
			if err != nil {
				t.Fatal(err)
			}
			if c.Type() != ManifestCodec || m.Size != int64(len(data)) || m.ChunkSize != cs || m.Hash != h || len(m.Chunks) != 3 {
				t.Fatalf("manifest %s: %+v", c, m)
			}
			for i, cc := range m.Chunks {
				end := min(len(data), (i+1)*cs)
				if !cc.Equals(content.Sum(h, data[i*cs:end])) {
					t.Fatalf("chunk %d cid mismatch", i)
				}
			}
		})
	}
}

func TestPinPrefix(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := t.Context()
	for i, k := range []string{"p/1", "p/2", "p/3", "p/4", "p/bad", "q/1"} {
		e.org.set("b", k, randBytes(cs*(i%3)+i, uint64(20+i)))
	}
	e.org.failKey = "p/bad"
	res, err := e.n.Pin(ctx, "b", "p/")
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 4 || len(res.Errors) != 1 || res.Errors[0].Key != "p/bad" ||
		!errors.Is(res.Errors[0].Err, gateway.ErrAccessDenied) {
		t.Fatalf("pin result: %+v", res)
	}
	var wantBytes, wantChunks int64
	for i := range 4 {
		sz := int64(cs*(i%3) + i)
		wantBytes += sz
		wantChunks += (sz + cs - 1) / cs
	}
	if res.Bytes != wantBytes || res.Chunks != wantChunks {
		t.Fatalf("pin result %+v, want %d bytes %d chunks", res, wantBytes, wantChunks)
	}
	pinned := e.store.pinned()
	if int64(len(pinned)) != wantChunks+4 { // + one manifest per object
		t.Fatalf("%d blocks pinned, want %d", len(pinned), wantChunks+4)
	}
	// Pinned objects are served from the store: no origin range reads.
	before := e.org.count("GetRange")
	if _, err := get(ctx, e.n, "b", "p/2", 0, -1); err != nil {
		t.Fatal(err)
	}
	if e.org.count("GetRange") != before {
		t.Fatal("pinned object read from the origin")
	}
	pins, err := e.n.Pins(ctx)
	if err != nil || len(pins) != 1 || pins[0].Prefix != "p/" {
		t.Fatalf("pins: %+v %v", pins, err)
	}
	e.restart(t)
	if pins, _ := e.n.Pins(ctx); len(pins) != 1 {
		t.Fatal("pinned prefix not persisted")
	}
	// Unpin walks the cached objects under the prefix (p/bad's metadata is
	// cached too, but none of its chunks were pinned).
	ures, err := e.n.Unpin(ctx, "b", "p/")
	if err != nil || ures.Objects != 5 || ures.Chunks != wantChunks+4 {
		t.Fatalf("unpin: %+v %v", ures, err)
	}
	if p := e.store.pinned(); len(p) != 0 {
		t.Fatalf("%d blocks still pinned", len(p))
	}
	if pins, _ := e.n.Pins(ctx); len(pins) != 0 {
		t.Fatal("pin record survived unpin")
	}
}

func TestPrefetchDoesNotPin(t *testing.T) {
	e := newEnv(t, Config{})
	e.org.set("b", "x/1", randBytes(2*cs, 30))
	res, err := e.n.Prefetch(t.Context(), "b", "x/")
	if err != nil || res.Objects != 1 || res.Chunks != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if len(e.store.pinned()) != 0 {
		t.Fatal("prefetch pinned blocks")
	}
	if _, err := e.n.Prefetch(t.Context(), "nosuch", ""); !errors.Is(err, gateway.ErrNoSuchBucket) {
		t.Fatalf("prefetch of a missing bucket: %v", err)
	}
}

func TestWritesInvalidate(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := t.Context()
	e.org.set("b", "k", []byte("one"))
	if got, err := get(ctx, e.n, "b", "k", 0, -1); err != nil || string(got) != "one" {
		t.Fatal(got, err)
	}
	l1, err := e.n.ListObjectsV2(ctx, gateway.ListParams{Bucket: "b", MaxKeys: 100})
	if err != nil || len(l1.Entries) != 1 {
		t.Fatal(l1, err)
	}
	if _, err := e.n.PutObject(ctx, gateway.PutParams{Bucket: "b", Key: "k", Body: strings.NewReader("two!"), Size: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.PutObject(ctx, gateway.PutParams{Bucket: "b", Key: "k2", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	// Within the metadata and list TTLs, the writes are visible.
	if got, err := get(ctx, e.n, "b", "k", 0, -1); err != nil || string(got) != "two!" {
		t.Fatalf("after put: %q %v", got, err)
	}
	l2, err := e.n.ListObjectsV2(ctx, gateway.ListParams{Bucket: "b", MaxKeys: 100})
	if err != nil || len(l2.Entries) != 2 {
		t.Fatalf("list after put: %+v %v", l2, err)
	}
	if err := e.n.DeleteObject(ctx, "b", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.HeadObject(ctx, "b", "k"); !errors.Is(err, gateway.ErrNoSuchKey) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := e.n.PutObject(ctx, gateway.PutParams{Bucket: "b", Key: "k", Body: strings.NewReader("3"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	// The negative entry from the HEAD above is dropped by the write.
	if got, err := get(ctx, e.n, "b", "k", 0, -1); err != nil || string(got) != "3" {
		t.Fatalf("after re-put: %q %v", got, err)
	}
	if _, err := e.n.CompleteMultipartUpload(ctx, "b", "k", "nope", nil); !errors.Is(err, gateway.ErrNoSuchUpload) {
		t.Fatalf("complete multipart: %v", err)
	}
}

func TestNegativeCache(t *testing.T) {
	e := newEnv(t, Config{NegativeTTL: 2 * time.Second})
	for range 3 {
		if _, err := e.n.HeadObject(t.Context(), "b", "missing"); !errors.Is(err, gateway.ErrNoSuchKey) {
			t.Fatalf("got %v, want ErrNoSuchKey", err)
		}
	}
	if c := e.org.count("HeadObject"); c != 1 {
		t.Fatalf("%d HEADs, want 1", c)
	}
	e.org.set("b", "missing", []byte("now here"))
	e.clock.advance(3 * time.Second)
	if _, err := e.n.HeadObject(t.Context(), "b", "missing"); err != nil {
		t.Fatalf("after negative TTL: %v", err)
	}
	if _, err := e.n.HeadObject(t.Context(), "nosuch", "k"); !errors.Is(err, gateway.ErrNoSuchBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
}

func TestListAndBucketCaching(t *testing.T) {
	e := newEnv(t, Config{ListTTL: 2 * time.Second})
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		e.org.set("b", k, []byte(k))
	}
	p := gateway.ListParams{Bucket: "b"}
	r1, err := e.n.ListObjectsV2(ctx, p)
	if err != nil || len(r1.Entries) != 2 || !r1.IsTruncated {
		t.Fatalf("%+v %v", r1, err)
	}
	r2, err := e.n.ListObjectsV2(ctx, gateway.ListParams{Bucket: "b", ContinuationToken: r1.NextContinuationToken})
	if err != nil || len(r2.Entries) != 1 || r2.Entries[0].Key != "c" {
		t.Fatalf("%+v %v", r2, err)
	}
	if _, err := e.n.ListObjectsV2(ctx, p); err != nil || e.org.count("ListObjects") != 2 {
		t.Fatalf("cached list: %v, %d calls", err, e.org.count("ListObjects"))
	}
	e.clock.advance(3 * time.Second)
	if _, err := e.n.ListObjectsV2(ctx, p); err != nil || e.org.count("ListObjects") != 3 {
		t.Fatal("list not refreshed after TTL")
	}
	for range 2 {
		bs, err := e.n.ListBuckets(ctx)
		if err != nil || len(bs) != 2 {
			t.Fatal(bs, err)
		}
		if _, err := e.n.BucketLocation(ctx, "b"); err != nil {
			t.Fatal(err)
		}
	}
	if e.org.count("ListBuckets") != 1 || e.org.count("HeadBucket") != 1 {
		t.Fatal("bucket calls not cached")
	}
	if _, err := e.n.BucketLocation(ctx, "zzz"); !errors.Is(err, gateway.ErrNoSuchBucket) {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	for _, c := range []Config{
		{ChunkSize: 100},
		{ChunkSize: 2 << 30},
		{Hash: "md5"},
		{MetadataTTL: -1},
		{ReadAhead: -1},
		{Fetch: FetchPolicy{Origin: originfetch.Policy{Slots: -3}}},
		{Fetch: FetchPolicy{Origin: originfetch.Policy{Stall: time.Millisecond}}},
		{Fetch: FetchPolicy{OriginStreams: -1}},
		{Fetch: FetchPolicy{HomeCandidates: 100}},
		{Fetch: FetchPolicy{ManifestWait: -time.Second}},
		{Fetch: FetchPolicy{LookupTimeout: time.Nanosecond}},
		{Fetch: FetchPolicy{Providers: -2}},
		{Immutable: []string{"/"}},
		{ListCacheEntries: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := New(Config{ChunkSize: 1}, newMemStore(), newFakeOrigin(), nil); err == nil {
		t.Error("New accepted a bad config")
	}
}

// Repin takes every pinned prefix of the catalog again, for a store that
// lost its block pins (the SSD index rebuilt after damage): the blocks held
// are pinned in place, without reading the origin again.
func TestRepinAfterTheStoreLostItsPins(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := t.Context()
	e.org.set("b", "p/1", randBytes(2*cs+5, 40))
	e.org.set("b", "q/1", randBytes(cs, 41))
	if _, err := e.n.Pin(ctx, "b", "p/"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.Prefetch(ctx, "b", "q/"); err != nil {
		t.Fatal(err)
	}
	want := e.store.pinned()
	for c := range want {
		if err := e.store.Unpin(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	before := e.org.count("GetRange")
	res, err := e.n.Repin(ctx)
	if err != nil || res.Objects != 1 || res.Chunks != 3 || len(res.Errors) != 0 {
		t.Fatalf("repin: %+v %v", res, err)
	}
	if got := e.store.pinned(); len(got) != len(want) {
		t.Fatalf("%d blocks pinned after repin, want the %d pinned before", len(got), len(want))
	}
	if e.org.count("GetRange") != before {
		t.Fatal("repin read chunks the store holds from the origin")
	}
}
