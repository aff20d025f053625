package catalog

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/shoal-cache/shoal/origin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func open(t *testing.T, dir string) *Catalog {
	t.Helper()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestObjectsPersist(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	ctx := t.Context()
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	o := Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: "a/x", ETag: `"e"`, Size: 42, ContentType: "text/plain",
		Metadata: map[string]string{"k": "v"}, CacheControl: "no-cache"}, CheckedAt: at}
	if _, err := c.GetObject(ctx, "b", "a/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent object: %v", err)
	}
	for _, k := range []string{"a/x", "a/y", "b/z"} {
		o2 := o
		o2.Key = k
		if err := c.PutObject(ctx, o2); err != nil {
			t.Fatal(err)
		}
	}
	// A bucket whose name is a prefix of another must not leak into it.
	if err := c.PutObject(ctx, Object{ObjectInfo: origin.ObjectInfo{Bucket: "bb", Key: "a/q"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir)
	got, err := c.GetObject(ctx, "b", "a/x")
	if err != nil {
		t.Fatal(err)
	}
	if got.ETag != o.ETag || got.Size != 42 || got.Metadata["k"] != "v" || !got.CheckedAt.Equal(at) || got.CacheControl != "no-cache" {
		t.Fatalf("got %+v", got)
	}
	var keys []string
	if err := c.Objects(ctx, "b", "a/", func(o Object) bool { keys = append(keys, o.Key); return true }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "a/x" || keys[1] != "a/y" {
		t.Fatalf("objects under a/: %v", keys)
	}
	if err := c.DeleteObject(ctx, "b", "a/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, "b", "a/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted object: %v", err)
	}
	if err := c.PutObject(ctx, Object{ObjectInfo: origin.ObjectInfo{Key: "x"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty bucket: %v", err)
	}
}

func TestChunkIndex(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	ctx := t.Context()
	v := Version{Bucket: "b", Key: "k", ETag: `"1"`, Size: 10*100 + 1, ChunkSize: 100, Hash: "sha2-256"}
	if v.NumChunks() != 11 {
		t.Fatal(v.NumChunks())
	}
	// Concurrent landings of distinct chunks (and duplicates) count exactly.
	var wg sync.WaitGroup
	for i := range int64(11) {
		for range 2 {
			wg.Go(func() {
				if _, err := c.PutChunk(ctx, v, i, testCID(t, string(rune('a'+i)))); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	n, err := c.PutChunk(ctx, v, 3, testCID(t, "d"))
	if err != nil || n != 11 {
		t.Fatalf("known = %d, %v; want 11", n, err)
	}
	if _, err := c.PutChunk(ctx, v, 11, testCID(t, "x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("index out of range: %v", err)
	}
	other := v
	other.ETag = `"2"`
	if _, err := c.Chunk(ctx, other, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other version: %v", err)
	}
	mc := testCID(t, "manifest")
	if err := c.SetManifest(ctx, v, mc); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir)
	all, err := c.Chunks(ctx, v)
	if err != nil || len(all) != 11 {
		t.Fatal(all, err)
	}
	for i, id := range all {
		if !id.Equals(testCID(t, string(rune('a'+i)))) {
			t.Fatalf("chunk %d: %s", i, id)
		}
	}
	if got, err := c.Manifest(ctx, v); err != nil || !got.Equals(mc) {
		t.Fatal(got, err)
	}
	cnt, err := c.Counts(ctx)
	if err != nil || cnt.Chunks != 11 || cnt.Manifests != 1 {
		t.Fatalf("%+v %v", cnt, err)
	}
	if err := c.DropVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manifest(ctx, v); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if all, _ := c.Chunks(ctx, v); all[5].Defined() {
		t.Fatal("chunk survived DropVersion")
	}
	if n, _ := c.PutChunk(ctx, v, 0, testCID(t, "a")); n != 1 {
		t.Fatalf("count after drop: %d", n)
	}
}

func TestPins(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	ctx := t.Context()
	if err := c.AddPin(ctx, Pin{Bucket: "b", Prefix: "x/"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPin(ctx, Pin{Bucket: "b", Prefix: ""}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = open(t, dir)
	ps, err := c.Pins(ctx)
	if err != nil || len(ps) != 2 {
		t.Fatal(ps, err)
	}
	if ok, _ := c.Pinned(ctx, "b", "anything"); !ok {
		t.Fatal("whole-bucket pin not matched")
	}
	if had, err := c.RemovePin(ctx, "b", ""); !had || err != nil {
		t.Fatal(had, err)
	}
	if had, _ := c.RemovePin(ctx, "b", ""); had {
		t.Fatal("removed twice")
	}
	if ok, _ := c.Pinned(ctx, "b", "y/1"); ok {
		t.Fatal("y/1 pinned")
	}
	if ok, _ := c.Pinned(ctx, "b", "x/1"); !ok {
		t.Fatal("x/1 not pinned")
	}
}

func TestClosed(t *testing.T) {
	c, err := Open("", InMemory())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := c.GetObject(t.Context(), "b", "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := Open(""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty dir: %v", err)
	}
}

// TestChunkSumsAndVerified: checksums recorded with chunks come back by
// index, and DropVersion forgets them and the version's verification.
func TestChunkSumsAndVerified(t *testing.T) {
	c := open(t, t.TempDir())
	ctx := t.Context()
	v := Version{Bucket: "b", Key: "k", ETag: "e", Size: 10, ChunkSize: 4, Hash: "sha2-256"}
	id := func(i int) cid.Cid {
		h, _ := mh.Sum([]byte{byte(i)}, mh.SHA2_256, -1)
		return cid.NewCidV1(cid.Raw, h)
	}
	if _, err := c.PutChunkSum(ctx, v, 0, id(0), Sum{Alg: 1, Value: 0xdeadbeef}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutChunk(ctx, v, 2, id(2)); err != nil {
		t.Fatal(err)
	}
	sums, err := c.ChunkSums(ctx, v)
	if err != nil || len(sums) != 3 || sums[0] != (Sum{1, 0xdeadbeef}) || sums[1] != (Sum{}) || sums[2] != (Sum{}) {
		t.Fatalf("sums %+v, %v", sums, err)
	}
	if s, err := c.ChunkSum(ctx, v, 0); err != nil || s.Value != 0xdeadbeef {
		t.Fatalf("sum 0: %+v %v", s, err)
	}
	if _, err := c.ChunkSum(ctx, v, 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sum of a chunk recorded without one: %v", err)
	}
	if ok, _ := c.Verified(ctx, v); ok {
		t.Fatal("verified before SetVerified")
	}
	if err := c.SetVerified(ctx, v); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Verified(ctx, v); !ok || err != nil {
		t.Fatalf("verified: %v %v", ok, err)
	}
	if err := c.DropVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Verified(ctx, v); ok {
		t.Fatal("still verified after DropVersion")
	}
	if _, err := c.ChunkSum(ctx, v, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sum after DropVersion: %v", err)
	}
}
