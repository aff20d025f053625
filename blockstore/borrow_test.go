package blockstore_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// onDiskOnly returns a Tiered whose memory tier (memBudget) holds none of
// the n blocks of size bytes it stores on disk, plus the blocks.
func onDiskOnly(t *testing.T, memBudget int64, n, size int) (*blockstore.Tiered, []cid.Cid, [][]byte) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	tr := newTiered(t, memBudget, dir, 64<<20, blockstore.TieredConfig{}, nil)
	cids, datas := make([]cid.Cid, n), make([][]byte, n)
	for i := range n {
		cids[i], datas[i] = storetest.Block(t, size)
		if err := tr.Put(ctx, cids[i], datas[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = newTiered(t, memBudget, dir, 64<<20, blockstore.TieredConfig{}, nil) // memory starts empty
	t.Cleanup(func() { tr.Close() })
	return tr, cids, datas
}

func borrow(t *testing.T, tr *blockstore.Tiered, c cid.Cid, want []byte) {
	t.Helper()
	got, release, err := tr.Borrow(t.Context(), c)
	if err != nil {
		t.Fatalf("borrow %s: %v", c, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("borrow %s: wrong bytes", c)
	}
	release()
}

func TestBorrowReturnsVerifiedBytesFromEveryTier(t *testing.T) {
	const size = 32 << 10
	tr, cids, datas := onDiskOnly(t, 1<<20, 6, size)
	// Disk hits, released and borrowed again in turn: recycled buffers
	// never show another block's bytes.
	for range 3 {
		for i := range cids {
			borrow(t, tr, cids[i], datas[i])
		}
	}
	// A memory hit.
	c, data := storetest.Block(t, size)
	if err := tr.Put(t.Context(), c, data); err != nil {
		t.Fatal(err)
	}
	borrow(t, tr, c, data)
	// Missing.
	missing, _ := storetest.Block(t, 10)
	_, release, err := tr.Borrow(t.Context(), missing)
	if !errors.Is(err, blockstore.ErrNotFound) || release == nil {
		t.Fatalf("borrow of a missing block: %v (release nil: %v)", err, release == nil)
	}
	release()
}

func TestBorrowPromotesOnlyBlocksReadAgainSoon(t *testing.T) {
	const size = 64 << 10
	const memBudget = 4 * size
	tr, cids, datas := onDiskOnly(t, memBudget, 12, size)
	memBlocks := func() int64 { m, _ := tr.TierStats(); return m.Blocks }

	// A sequential read of three times the memory budget, twice: each block
	// comes back only after 12 blocks, beyond the memory budget's worth of
	// reads, so none is promoted.
	for range 2 {
		for i := range cids {
			borrow(t, tr, cids[i], datas[i])
		}
	}
	if n := memBlocks(); n != 0 {
		t.Fatalf("a long sequential read promoted %d blocks into memory", n)
	}

	// A block read again soon is promoted, and then served from memory.
	borrow(t, tr, cids[0], datas[0])
	borrow(t, tr, cids[0], datas[0])
	if n := memBlocks(); n != 1 {
		t.Fatalf("a block read twice in a row: %d blocks in memory, want 1", n)
	}
	_, ds := tr.TierStats()
	borrow(t, tr, cids[0], datas[0])
	if _, ds2 := tr.TierStats(); ds2.Hits != ds.Hits {
		t.Fatal("a promoted block was read from disk again")
	}

	// Get promotes the same way: not on a first read, on a read soon after.
	if _, err := tr.Get(t.Context(), cids[5]); err != nil {
		t.Fatal(err)
	}
	if n := memBlocks(); n != 1 {
		t.Fatalf("after one Get of a disk block: %d blocks in memory, want 1", n)
	}
	if _, err := tr.Get(t.Context(), cids[5]); err != nil {
		t.Fatal(err)
	}
	if n := memBlocks(); n != 2 {
		t.Fatalf("after a second Get of a disk block: %d blocks in memory, want 2", n)
	}

	// A pinned block is promoted on its first read.
	if err := tr.Pin(t.Context(), cids[9]); err != nil {
		t.Fatal(err)
	}
	borrow(t, tr, cids[9], datas[9])
	if n := memBlocks(); n != 3 {
		t.Fatalf("after borrowing a pinned block: %d blocks in memory, want 3", n)
	}
}

func TestBorrowDropsCorruptDiskCopy(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	c, data := storetest.Block(t, 10000)
	tr := newTiered(t, 1<<20, dir, 1<<20, blockstore.TieredConfig{}, nil)
	if err := tr.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	for _, damage := range [][]byte{make([]byte, len(data)), data[:len(data)-1], append(bytes.Clone(data), 0)} {
		if err := os.WriteFile(blockFile(t, dir, c), damage, 0o644); err != nil {
			t.Fatal(err)
		}
		tr = newTiered(t, 1<<20, dir, 1<<20, blockstore.TieredConfig{}, nil)
		got, release, err := tr.Borrow(ctx, c)
		if !errors.Is(err, blockstore.ErrNotFound) || got != nil {
			t.Fatalf("borrow of a damaged copy (%d bytes): %v", len(damage), err)
		}
		release()
		if _, ds := tr.TierStats(); ds.Blocks != 0 {
			t.Fatalf("damaged copy (%d bytes) still indexed", len(damage))
		}
		if err := tr.Put(ctx, c, data); err != nil { // back for the next round
			t.Fatal(err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
