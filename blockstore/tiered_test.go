package blockstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
	"github.com/shoal-cache/shoal/internal/content"
)

// gatedCreator makes payload writes wait, while gated, until release is
// closed; each waiting write first reports on started.
type gatedCreator struct {
	gated   atomic.Bool
	started chan struct{}
	release chan struct{}
}

func newGatedCreator() *gatedCreator {
	return &gatedCreator{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gatedCreator) Create(name string) (io.WriteCloser, error) {
	w, err := blockstore.OSFileCreator().Create(name)
	if err != nil {
		return nil, err
	}
	return &gatedWriter{WriteCloser: w, g: g}, nil
}

type gatedWriter struct {
	io.WriteCloser
	g *gatedCreator
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if w.g.gated.Load() {
		w.g.started <- struct{}{}
		<-w.g.release
	}
	return w.WriteCloser.Write(p)
}

// removals counts what a store's Removals feed reported, taking what is
// queued whenever it is asked.
type removals struct {
	tr  *blockstore.Tiered
	mu  sync.Mutex
	got map[cid.Cid]int
}

func (r *removals) count(c cid.Cid) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[cid.Cid]int{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // take what is queued, without waiting
	taken, _ := r.tr.Removals().Take(ctx)
	for _, t := range taken {
		r.got[t]++
	}
	return r.got[c]
}

func newTiered(t *testing.T, memBudget int64, dir string, diskBudget int64, cfg blockstore.TieredConfig, diskOpts []blockstore.DiskOption, opts ...blockstore.TieredOption) *blockstore.Tiered {
	t.Helper()
	tr, err := blockstore.NewTiered(newMemory(t, memBudget), newDisk(t, dir, diskBudget, diskOpts...), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// within fails the test if fn does not return before the guard expires. The
// guard only turns a deadlock into a failure; it measures nothing.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return while a disk write was blocked", what)
	}
}

func TestTieredReadersNeverWaitForDiskWrites(t *testing.T) {
	const size = 64 << 10
	ctx := t.Context()
	gate := newGatedCreator()
	var rm removals
	// Memory holds one block; the disk queue holds one write.
	tr := newTiered(t, size, t.TempDir(), 1<<20, blockstore.TieredConfig{QueueLength: 1},
		[]blockstore.DiskOption{blockstore.WithFileCreator(gate)})
	rm.tr = tr
	released := false
	defer func() {
		if !released {
			close(gate.release)
		}
		tr.Close()
	}()

	onDisk, onDiskData := storetest.Block(t, size)
	a, aData := storetest.Block(t, size)
	b, bData := storetest.Block(t, size)
	d, dData := storetest.Block(t, size)
	if err := tr.Put(ctx, onDisk, onDiskData); err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	gate.gated.Store(true)
	if err := tr.Put(ctx, a, aData); err != nil {
		t.Fatal(err)
	}
	<-gate.started // the writer is now stuck writing a
	within(t, "Put with a full queue", func() {
		if err := tr.Put(ctx, b, bData); err != nil { // queued; evicts a from memory
			t.Error(err)
		}
		if err := tr.Put(ctx, d, dData); err != nil { // queue full: memory only
			t.Error(err)
		}
	})
	if n := tr.DroppedWrites(); n != 1 {
		t.Fatalf("dropped writes: %d, want 1", n)
	}
	within(t, "Get", func() {
		for _, blk := range []struct {
			c    cid.Cid
			data []byte
			from string
		}{{d, dData, "memory"}, {a, aData, "block being written"}, {b, bData, "queued block"}, {onDisk, onDiskData, "disk"}} {
			got, err := tr.Get(ctx, blk.c)
			if err != nil || string(got) != string(blk.data) {
				t.Errorf("get from %s: %v", blk.from, err)
			}
			if ok, err := tr.Has(ctx, blk.c); !ok || err != nil {
				t.Errorf("has (%s): %v %v", blk.from, ok, err)
			}
		}
	})
	if t.Failed() {
		return
	}

	close(gate.release)
	released = true
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, ds := tr.TierStats()
	if ds.Blocks != 3 {
		t.Fatalf("disk holds %d blocks after flush, want 3 (onDisk, a, b)", ds.Blocks)
	}
	// Reading onDisk once did not promote it (see Get); reading it again
	// soon does, which evicts d from memory, and no tier holds d any more.
	if rm.count(d) != 0 {
		t.Fatalf("a single disk read evicted d from memory (removal hook: %d)", rm.count(d))
	}
	if got, err := tr.Get(ctx, onDisk); err != nil || string(got) != string(onDiskData) {
		t.Fatalf("second get from disk: %v", err)
	}
	if rm.count(d) != 1 || rm.count(a) != 0 || rm.count(b) != 0 {
		t.Fatalf("removal hook: d=%d a=%d b=%d, want 1 0 0", rm.count(d), rm.count(a), rm.count(b))
	}
}

func TestTieredCorruptDiskCopy(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	c, data := storetest.Block(t, 10000)
	tr := newTiered(t, 1<<20, dir, 1<<20, blockstore.TieredConfig{}, nil)
	if err := tr.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Damaged on disk while in memory: memory still serves it.
	path := blockFile(t, dir, c)
	if err := os.WriteFile(path, make([]byte, len(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := tr.Get(ctx, c); err != nil || string(got) != string(data) {
		t.Fatalf("get with a good memory copy: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart only the damaged disk copy is left.
	var rm removals
	tr = newTiered(t, 1<<20, dir, 1<<20, blockstore.TieredConfig{}, nil)
	rm.tr = tr
	defer tr.Close()
	if _, err := tr.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("get of corrupt copy: %v, want ErrNotFound", err)
	}
	if st := tr.Stats(); st.Corrupt != 1 || st.Misses != 1 {
		t.Fatalf("stats: %+v, want 1 corrupt, 1 miss", st)
	}
	if rm.count(c) != 1 {
		t.Fatalf("removal hook fired %d times for the corrupt block", rm.count(c))
	}
	// The caller refetches and puts it back.
	if err := tr.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := tr.Get(ctx, c); err != nil || string(got) != string(data) {
		t.Fatalf("get after re-put: %v", err)
	}
	if _, ds := tr.TierStats(); ds.Blocks != 1 {
		t.Fatalf("disk blocks after re-put: %d", ds.Blocks)
	}
}

func TestTieredRemovalHook(t *testing.T) {
	ctx := t.Context()
	const size = 32 << 10
	var rm removals
	tr := newTiered(t, 2*size, t.TempDir(), 5*size, blockstore.TieredConfig{}, nil)
	rm.tr = tr
	defer tr.Close()
	var cids []cid.Cid
	for range 12 {
		c, data := storetest.Block(t, size)
		if err := tr.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		if err := tr.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
	}
	removed := 0
	for i, c := range cids {
		held, err := tr.Has(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		n := rm.count(c)
		if held && n != 0 || !held && n != 1 {
			t.Errorf("block %d: held=%v, reported removed %d times", i, held, n)
		}
		removed += n
	}
	if removed == 0 {
		t.Fatal("no removals after writing 2.4x the disk budget")
	}
	last := cids[len(cids)-1]
	if err := tr.Delete(ctx, last); err != nil {
		t.Fatal(err)
	}
	if rm.count(last) != 1 {
		t.Fatalf("Delete reported %d times", rm.count(last))
	}
}

func TestTieredPinsPersistAndReachDisk(t *testing.T) {
	ctx := t.Context()
	const size = 32 << 10
	dir := t.TempDir()
	gate := newGatedCreator()
	tr := newTiered(t, 1<<20, dir, 16*size, blockstore.TieredConfig{QueueLength: 1},
		[]blockstore.DiskOption{blockstore.WithFileCreator(gate)})
	gate.gated.Store(true)
	a, aData := storetest.Block(t, size)
	b, bData := storetest.Block(t, size)
	p, pData := storetest.Block(t, size)
	for i, blk := range []struct {
		c    cid.Cid
		data []byte
	}{{a, aData}, {b, bData}, {p, pData}} {
		if err := tr.Put(ctx, blk.c, blk.data); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-gate.started // the writer is stuck on a; b fills the queue
		}
	}
	if tr.DroppedWrites() != 1 {
		t.Fatalf("p's write should have been dropped (queue full), dropped=%d", tr.DroppedWrites())
	}
	// Pinning p must get it to disk: the pin waits for queue room.
	pinned := make(chan error, 1)
	go func() { pinned <- tr.Pin(ctx, p) }()
	close(gate.release)
	if err := <-pinned; err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	tr = newTiered(t, 1<<20, dir, 16*size, blockstore.TieredConfig{}, nil)
	defer tr.Close()
	if st := tr.Stats(); st.Pinned != 1 || st.Blocks != 3 {
		t.Fatalf("after restart: %+v, want 3 blocks, 1 pinned", st)
	}
	var keys []cid.Cid
	if err := tr.AllKeys(ctx, func(c cid.Cid) bool { keys = append(keys, c); return true }); err != nil || len(keys) != 3 {
		t.Fatalf("AllKeys after restart: %v %v", keys, err)
	}
	for range 40 {
		c, data := storetest.Block(t, size)
		if err := tr.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		if err := tr.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, ds := tr.TierStats(); ds.Evictions == 0 {
		t.Fatal("no disk evictions")
	}
	if got, err := tr.Get(ctx, p); err != nil || string(got) != string(pData) {
		t.Fatalf("pinned block after restart and pressure: %v", err)
	}
}

func TestTieredFlushHonoursContext(t *testing.T) {
	gate := newGatedCreator()
	tr := newTiered(t, 1<<20, t.TempDir(), 1<<20, blockstore.TieredConfig{}, []blockstore.DiskOption{blockstore.WithFileCreator(gate)})
	defer tr.Close()
	defer close(gate.release)
	gate.gated.Store(true)
	c, data := storetest.Block(t, 100)
	if err := tr.Put(t.Context(), c, data); err != nil {
		t.Fatal(err)
	}
	<-gate.started
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := tr.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("flush with a blocked writer and cancelled ctx: %v", err)
	}
}

// PutBlock stores a block proven by content.Block without hashing it again;
// what it stores reads back and reaches the disk tier like any other block.
func TestTieredPutBlock(t *testing.T) {
	ts := newTiered(t, 1<<20, t.TempDir(), 8<<20, blockstore.TieredConfig{}, nil)
	defer ts.Close()
	ctx := context.Background()
	data := bytes.Repeat([]byte("put block "), 1000)
	b := content.NewBlock(content.SHA256, data)
	if err := ts.PutBlock(ctx, b); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	got, err := ts.Get(ctx, b.CID())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after PutBlock: %v", err)
	}
	if err := ts.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, disk := ts.TierStats(); disk.Blocks != 1 {
		t.Fatalf("disk tier holds %d blocks after Flush, want 1", disk.Blocks)
	}
	if err := ts.PutBlock(ctx, content.Block{}); !errors.Is(err, blockstore.ErrHashMismatch) {
		t.Fatalf("PutBlock of the zero Block: %v, want ErrHashMismatch", err)
	}
}
