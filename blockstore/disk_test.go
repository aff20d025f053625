package blockstore_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// diskUsage walks dir and returns the bytes allocated on disk (st_blocks)
// and the apparent size of every file.
func diskUsage(t *testing.T, dir string) (allocated, apparent int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		if info.Mode().IsRegular() {
			apparent += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return allocated, apparent
}

func blockFile(t *testing.T, dir string, c cid.Cid) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "blocks", "*", c.String()))
	if err != nil || len(matches) != 1 {
		t.Fatalf("file of %s: %v %v", c, matches, err)
	}
	return matches[0]
}

func TestDiskBudgetAfterChurn(t *testing.T) {
	const budget = 16 << 20
	dir := t.TempDir()
	d := newDisk(t, dir, budget)
	ctx := t.Context()
	var kept []cid.Cid
	// 4x the budget in mixed sizes (256 KiB chunks, some small blocks),
	// deleting some and re-reading others as we go.
	for i := range 320 {
		size := 256 << 10
		if i%5 == 0 {
			size = 3000
		}
		c, data := storetest.Block(t, size)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		switch i % 7 {
		case 3:
			if err := d.Delete(ctx, c); err != nil {
				t.Fatal(err)
			}
		case 5:
			kept = append(kept, c)
		}
		if len(kept) > 0 {
			_, _ = d.Get(ctx, kept[len(kept)-1])
		}
		if st := d.Stats(); st.Bytes > budget {
			t.Fatalf("after put %d: %d payload bytes, budget %d", i, st.Bytes, budget)
		}
	}
	st := d.Stats()
	check := func(when string) {
		allocated, apparent := diskUsage(t, dir)
		blocksAlloc, _ := diskUsage(t, filepath.Join(dir, "blocks"))
		indexAlloc, _ := diskUsage(t, filepath.Join(dir, "index"))
		limit := st.BudgetBytes + blockstore.Overhead(st.Blocks)
		t.Logf("%s: %d blocks, payload %d B; dir allocated %d B (blocks/ %d, index/ %d), apparent %d B; budget %d + overhead %d",
			when, st.Blocks, st.Bytes, allocated, blocksAlloc, indexAlloc, apparent, st.BudgetBytes, limit-st.BudgetBytes)
		if allocated > limit {
			t.Fatalf("%s: data dir uses %d bytes on disk, over budget+overhead %d", when, allocated, limit)
		}
		// The payload files alone are exact to a filesystem block each.
		if blocksAlloc > st.BudgetBytes+256*blockstore.DiskFileOverhead+st.Blocks*blockstore.DiskFileOverhead {
			t.Fatalf("%s: blocks/ uses %d bytes for %d payload bytes", when, blocksAlloc, st.Bytes)
		}
		if apparent < st.Bytes {
			t.Fatalf("%s: files hold %d bytes, index says %d", when, apparent, st.Bytes)
		}
	}
	check("open")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

func TestDiskRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	const size = 64 << 10
	d := newDisk(t, dir, 1<<20)
	blocks := map[cid.Cid][]byte{}
	var order []cid.Cid
	for range 8 {
		c, data := storetest.Block(t, size)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		blocks[c] = data
		order = append(order, c)
	}
	pinned := order[0]
	absent, absentData := storetest.Block(t, size)
	for _, c := range []cid.Cid{pinned, absent} {
		if err := d.Pin(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	before := d.Stats()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = newDisk(t, dir, 1<<20)
	defer d.Close()
	after := d.Stats()
	if after.Blocks != before.Blocks || after.Bytes != before.Bytes || after.Pinned != 1 || after.PinnedBytes != before.PinnedBytes || after.PinnedBytes == 0 {
		t.Fatalf("after restart: %+v, before: %+v", after, before)
	}
	for c, data := range blocks {
		got, err := d.Get(ctx, c)
		if err != nil || string(got) != string(data) {
			t.Fatalf("get %s after restart: %v", c, err)
		}
	}
	var listed int
	if err := d.AllKeys(ctx, func(c cid.Cid) bool {
		if _, ok := blocks[c]; !ok {
			t.Errorf("AllKeys lists unknown %s", c)
		}
		listed++
		return true
	}); err != nil || listed != len(blocks) {
		t.Fatalf("AllKeys: %d listed, %v", listed, err)
	}
	// Both pins still hold: the one taken before its block arrived too.
	if err := d.Put(ctx, absent, absentData); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		c, data := storetest.Block(t, size)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []cid.Cid{pinned, absent} {
		if ok, _ := d.Has(ctx, c); !ok {
			t.Fatalf("pinned %s evicted after restart", c)
		}
	}
	if st := d.Stats(); st.Pinned != 2 {
		t.Fatalf("pinned after restart and put: %d, want 2", st.Pinned)
	}
}

func TestDiskEvictionOrderSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	const size = 100 << 10
	budget := int64(10 * size)
	d := newDisk(t, dir, budget)
	var order []cid.Cid
	for range 9 { // 90%: under the high watermark, no eviction yet
		c, data := storetest.Block(t, size)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		order = append(order, c)
	}
	if _, err := d.Get(ctx, order[0]); err != nil { // the oldest is now the freshest
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = newDisk(t, dir, budget)
	defer d.Close()
	c, data := storetest.Block(t, size)
	if err := d.Put(ctx, c, data); err != nil { // 100% > 95%: evict down to 85%
		t.Fatal(err)
	}
	if st := d.Stats(); st.Evictions != 2 || st.Bytes != 8*size {
		t.Fatalf("after crossing the high watermark: %+v", st)
	}
	for i, want := range map[int]bool{0: true, 1: false, 2: false, 3: true} {
		if ok, _ := d.Has(ctx, order[i]); ok != want {
			t.Errorf("block %d held = %v, want %v (least recently used go first)", i, ok, want)
		}
	}
}

func TestDiskCorruptBlock(t *testing.T) {
	for name, damage := range map[string]func(path string) error{
		"flipped": func(path string) error {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte("garbage"), 100); err != nil {
				return err
			}
			return f.Close()
		},
		"truncated": func(path string) error { return os.Truncate(path, 10) },
		"removed":   os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := t.Context()
			d := newDisk(t, dir, 1<<20)
			defer d.Close()
			c, data := storetest.Block(t, 4096)
			if err := d.Put(ctx, c, data); err != nil {
				t.Fatal(err)
			}
			path := blockFile(t, dir, c)
			if err := damage(path); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
				t.Fatalf("get of damaged block: %v, want ErrNotFound", err)
			}
			if ok, _ := d.Has(ctx, c); ok {
				t.Fatal("damaged block still indexed")
			}
			st := d.Stats()
			wantCorrupt := int64(1)
			if name == "removed" {
				wantCorrupt = 0 // a vanished file is a miss, not corruption
			}
			if st.Corrupt != wantCorrupt || st.Blocks != 0 || st.Bytes != 0 {
				t.Fatalf("stats after damage: %+v", st)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) && name != "removed" {
				t.Fatalf("corrupt file left on disk: %v", err)
			}
			if err := d.Put(ctx, c, data); err != nil {
				t.Fatalf("re-put: %v", err)
			}
			if got, err := d.Get(ctx, c); err != nil || string(got) != string(data) {
				t.Fatalf("get after re-put: %v", err)
			}
		})
	}
}

func TestDiskReconcilesCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	d := newDisk(t, dir, 1<<20)
	var cids []cid.Cid
	for range 3 {
		c, data := storetest.Block(t, 5000)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// A half-written temp file, a block file the index never heard of (as if
	// the process died between rename and index write), junk, and an index
	// entry whose file is gone.
	half := filepath.Join(dir, "tmp", "7.tmp")
	if err := os.WriteFile(half, make([]byte, 1234), 0o644); err != nil {
		t.Fatal(err)
	}
	orphan, orphanData := storetest.Block(t, 777)
	orphanPath := filepath.Join(filepath.Dir(blockFile(t, dir, cids[0])), orphan.String())
	if err := os.WriteFile(orphanPath, orphanData, 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "blocks", "junk")
	if err := os.WriteFile(junk, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blockFile(t, dir, cids[1])); err != nil {
		t.Fatal(err)
	}

	d = newDisk(t, dir, 1<<20)
	defer d.Close()
	for _, p := range []string{half, orphanPath, junk} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived reopen: %v", filepath.Base(p), err)
		}
	}
	for c, want := range map[cid.Cid]bool{cids[0]: true, cids[1]: false, cids[2]: true, orphan: false} {
		if ok, _ := d.Has(ctx, c); ok != want {
			t.Errorf("has %s = %v, want %v", c, ok, want)
		}
	}
	if st := d.Stats(); st.Blocks != 2 || st.Bytes != 10000 {
		t.Fatalf("stats after reconcile: %+v", st)
	}
}

// failingCreator simulates a full disk once full is set: file creation or
// writes fail with ENOSPC.
type failingCreator struct {
	full     atomic.Bool
	atCreate bool
}

func (f *failingCreator) Create(name string) (io.WriteCloser, error) {
	if f.full.Load() && f.atCreate {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	w, err := blockstore.OSFileCreator().Create(name)
	if err != nil {
		return nil, err
	}
	return &failingWriter{WriteCloser: w, full: &f.full}, nil
}

type failingWriter struct {
	io.WriteCloser
	full *atomic.Bool
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.full.Load() {
		n, _ := w.WriteCloser.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return w.WriteCloser.Write(p)
}

func TestDiskFull(t *testing.T) {
	for _, atCreate := range []bool{false, true} {
		name := map[bool]string{false: "write", true: "create"}[atCreate]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := t.Context()
			fc := &failingCreator{atCreate: atCreate}
			d := newDisk(t, dir, 1<<20, blockstore.WithFileCreator(fc))
			defer d.Close()
			held, heldData := storetest.Block(t, 50000)
			if err := d.Put(ctx, held, heldData); err != nil {
				t.Fatal(err)
			}
			fc.full.Store(true)
			c, data := storetest.Block(t, 50000)
			err := d.Put(ctx, c, data)
			if !errors.Is(err, blockstore.ErrFull) || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, blockstore.ErrNoSpace) {
				t.Fatalf("put on a full disk: %v, want ErrFull and ErrNoSpace wrapping ENOSPC", err)
			}
			if sp := d.Space(); sp.FullWrites != 1 {
				t.Fatalf("space after a write failed with ENOSPC: %+v, want 1 full write", sp)
			}
			if ok, _ := d.Has(ctx, c); ok {
				t.Fatal("failed put left the block indexed")
			}
			if got, err := d.Get(ctx, held); err != nil || string(got) != string(heldData) {
				t.Fatalf("read of a held block on a full disk: %v", err)
			}
			if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
				t.Fatalf("temp files left after failed put: %d", len(left))
			}
			if st := d.Stats(); st.Blocks != 1 || st.Bytes != 50000 {
				t.Fatalf("stats after failed put: %+v", st)
			}
			fc.full.Store(false)
			if err := d.Put(ctx, c, data); err != nil {
				t.Fatalf("put after space came back: %v", err)
			}
		})
	}
}

func TestDiskFullOfPins(t *testing.T) {
	ctx := t.Context()
	d := newDisk(t, t.TempDir(), 100<<10)
	defer d.Close()
	for range 2 {
		c, data := storetest.Block(t, 40<<10)
		if err := d.Pin(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	c, data := storetest.Block(t, 40<<10)
	if err := d.Put(ctx, c, data); !errors.Is(err, blockstore.ErrFull) {
		t.Fatalf("put with the budget pinned: %v, want ErrFull", err)
	}
}

func TestDiskRunStopsAndMaintains(t *testing.T) {
	dir := t.TempDir()
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: 1 << 20, MaintenanceInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for range 20 {
		c, data := storetest.Block(t, 1000)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Get(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	d := newDisk(t, dir, 1<<20)
	defer d.Close()
	if d2, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: 1 << 20}); err == nil {
		d2.Close()
		t.Fatal("second open of a data directory in use succeeded")
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, "index.damaged-*")); len(aside) != 0 {
		t.Fatalf("an index in use was taken for damaged and moved aside: %v", aside)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := map[string]interface{ Validate() error }{
		"memory negative budget": blockstore.MemoryConfig{BudgetBytes: -1},
		"memory small ratio 1":   blockstore.MemoryConfig{SmallRatio: 1},
		"disk no dir":            blockstore.DiskConfig{},
		"disk watermarks":        blockstore.DiskConfig{Dir: "x", HighWatermark: 0.5, LowWatermark: 0.6},
		"disk high > 1":          blockstore.DiskConfig{Dir: "x", HighWatermark: 1.5},
		"tiered queue":           blockstore.TieredConfig{QueueLength: -1},
		"tiered pin ratio":       blockstore.TieredConfig{MaxMemoryPinnedRatio: 2},
	}
	for name, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := []interface{ Validate() error }{
		blockstore.MemoryConfig{}, blockstore.DiskConfig{Dir: "x"}, blockstore.TieredConfig{},
	}
	for _, cfg := range good {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%T defaults rejected: %v", cfg, err)
		}
	}
	if _, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: -5}); err == nil {
		t.Error("NewMemory accepted a bad config")
	}
	if _, err := blockstore.OpenDisk(blockstore.DiskConfig{}); err == nil {
		t.Error("OpenDisk accepted a config without a dir")
	}
}
