package catalog

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shoal-cache/shoal/origin"
)

func openCached(t *testing.T, objects, chunks int) *Catalog {
	t.Helper()
	c, err := Open(t.TempDir(), WithCache(objects, chunks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCacheNeverServesOverwrittenRecords: reads after every kind of write
// see that write, whatever the cache size.
func TestCacheNeverServesOverwrittenRecords(t *testing.T) {
	for _, size := range [][2]int{{0, 0}, {2, 3}, {DefaultCachedObjects, DefaultCachedChunks}} {
		t.Run(fmt.Sprintf("cache %v", size), func(t *testing.T) {
			ctx := t.Context()
			c := openCached(t, size[0], size[1])
			for i := range 5 {
				key := fmt.Sprintf("k%d", i)
				for round := range 3 {
					o := Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: key, ETag: fmt.Sprintf("e%d", round), Size: 3,
						Metadata: map[string]string{"round": fmt.Sprint(round)}}}
					if err := c.PutObject(ctx, o); err != nil {
						t.Fatal(err)
					}
					for range 2 { // the first read may fill, the second hit
						got, err := c.GetObject(ctx, "b", key)
						if err != nil || got.ETag != o.ETag || got.Metadata["round"] != o.Metadata["round"] {
							t.Fatalf("%s round %d: got %+v, %v", key, round, got, err)
						}
						got.Metadata["round"] = "changed by the caller"
					}
				}
				if err := c.DeleteObject(ctx, "b", key); err != nil {
					t.Fatal(err)
				}
				if _, err := c.GetObject(ctx, "b", key); !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s after delete: %v", key, err)
				}
			}

			v := Version{Bucket: "b", Key: "big", ETag: "e", Size: 10, ChunkSize: 2}
			for i := range v.NumChunks() {
				if _, err := c.PutChunk(ctx, v, i, testCID(t, fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				for i := range v.NumChunks() {
					if got, err := c.Chunk(ctx, v, i); err != nil || !got.Equals(testCID(t, fmt.Sprint(i))) {
						t.Fatalf("chunk %d: %v %v", i, got, err)
					}
				}
			}
			if err := c.DropVersion(ctx, v); err != nil {
				t.Fatal(err)
			}
			for i := range v.NumChunks() {
				if _, err := c.Chunk(ctx, v, i); !errors.Is(err, ErrNotFound) {
					t.Fatalf("chunk %d after DropVersion: %v", i, err)
				}
			}
		})
	}
}

// TestCacheUnderConcurrentWrites: readers racing writers of the same
// records end up seeing the last write.
func TestCacheUnderConcurrentWrites(t *testing.T) {
	ctx := t.Context()
	c := openCached(t, 8, 8)
	v := Version{Bucket: "b", Key: "k", ETag: "e", Size: 4, ChunkSize: 1}
	id := testCID(t, "chunk")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for round := range 50 {
				if err := c.PutObject(ctx, Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: "k", ETag: fmt.Sprintf("w%d-%d", w, round)}}); err != nil {
					t.Error(err)
				}
				if _, err := c.PutChunk(ctx, v, int64(round%4), id); err != nil {
					t.Error(err)
				}
				if round%10 == 0 {
					if err := c.DropVersion(ctx, v); err != nil {
						t.Error(err)
					}
				}
			}
		})
		wg.Go(func() {
			for range 200 {
				if _, err := c.GetObject(ctx, "b", "k"); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
				if _, err := c.Chunk(ctx, v, 1); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	const last = "final"
	if err := c.PutObject(ctx, Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: "k", ETag: last}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DropVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetObject(ctx, "b", "k"); err != nil || got.ETag != last {
		t.Fatalf("after the writes: %q, %v", got.ETag, err)
	}
	if _, err := c.Chunk(ctx, v, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("chunk after the last DropVersion: %v", err)
	}
}

func TestCacheClosed(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.PutObject(ctx, Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: "k", ETag: "e"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, "b", "k"); err != nil { // cached now
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, "b", "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
}
