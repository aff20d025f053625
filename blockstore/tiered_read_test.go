package blockstore_test

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// A peer reading an object block by block from a node that holds most of
// it in memory and the rest on disk: the disk reads must not push the
// memory blocks out, or every later block is read (and hashed) from disk.
func TestTieredGetScanKeepsMemoryBlocks(t *testing.T) {
	const size = 64 << 10
	const n = 8
	ctx := t.Context()
	dir := t.TempDir()
	// Memory holds exactly n blocks: the n+2 put blocks overflow it by two,
	// which stay on disk only (the first two, evicted when the last came).
	tr := newTiered(t, n*size, dir, 64<<20, blockstore.TieredConfig{}, nil)
	t.Cleanup(func() { tr.Close() })
	var datas [][]byte
	var ids []cid.Cid
	for range n + 2 {
		c, data := storetest.Block(t, size)
		if err := tr.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c)
		datas = append(datas, data)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, before := tr.TierStats()
	for i, c := range ids {
		got, err := tr.Get(ctx, c)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	_, after := tr.TierStats()
	if hits := after.Hits - before.Hits; hits != 2 {
		t.Fatalf("a scan of %d blocks read %d from disk, want 2 (the ones memory could not hold)", n+2, hits)
	}
}

// Concurrent reads of one disk block all get its bytes; concurrent reads of
// a corrupt disk copy all fail, never return its bytes, and the copy is
// counted corrupt once.
func TestTieredConcurrentDiskReads(t *testing.T) {
	const size = 256 << 10
	const readers = 8
	ctx := t.Context()
	dir := t.TempDir()
	tr := newTiered(t, 1<<20, dir, 64<<20, blockstore.TieredConfig{}, nil)
	cids, datas := make([]cid.Cid, 2), make([][]byte, 2)
	for i := range cids {
		cids[i], datas[i] = storetest.Block(t, size)
		if err := tr.Put(ctx, cids[i], datas[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = newTiered(t, 1<<20, dir, 64<<20, blockstore.TieredConfig{}, nil) // memory starts empty
	t.Cleanup(func() { tr.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 2*readers)
	for range readers {
		wg.Go(func() {
			got, err := tr.Get(ctx, cids[0])
			if err != nil || !bytes.Equal(got, datas[0]) {
				errs <- errors.Join(errors.New("good block: wrong bytes or error"), err)
			}
		})
	}
	wg.Wait()

	if err := os.WriteFile(blockFile(t, dir, cids[1]), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	for range readers {
		wg.Go(func() {
			got, err := tr.Get(ctx, cids[1])
			if !errors.Is(err, blockstore.ErrNotFound) || got != nil {
				errs <- errors.Join(errors.New("corrupt block: want ErrNotFound and no bytes"), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, ds := tr.TierStats(); ds.Corrupt != 1 {
		t.Errorf("corrupt count %d, want 1", ds.Corrupt)
	}
}
