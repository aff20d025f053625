package blockstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// TestDiskScrubDropsRot: the scrub finds a rotten block nobody read, drops
// it (counted corrupt, not a miss) and leaves the good ones.
func TestDiskScrubDropsRot(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	d := newDisk(t, dir, 1<<20)
	defer d.Close()
	c1, b1 := storetest.Block(t, 4096)
	c2, b2 := storetest.Block(t, 8192)
	c3, b3 := storetest.Block(t, 100)
	for c, data := range map[cid.Cid][]byte{c1: b1, c2: b2, c3: b3} {
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	path := blockFile(t, dir, c2)
	rot, _ := os.ReadFile(path)
	rot[5000] ^= 0x10 // one bit
	if err := os.WriteFile(path, rot, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := d.Scrub(ctx, 0)
	if err != nil || st.Blocks != 3 || st.Bytes != 4096+8192+100 || st.Corrupt != 1 {
		t.Fatalf("Scrub = %+v, %v; want 3 blocks, %d bytes, 1 corrupt", st, err, 4096+8192+100)
	}
	if ok, _ := d.Has(ctx, c2); ok {
		t.Fatal("rotten block still held after the scrub")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rotten file left: %v", err)
	}
	if s := d.Stats(); s.Corrupt != 1 || s.Misses != 0 || s.Blocks != 2 {
		t.Fatalf("stats %+v, want 1 corrupt, 0 misses, 2 blocks", s)
	}
	for c, want := range map[cid.Cid][]byte{c1: b1, c3: b3} {
		if got, err := d.Get(ctx, c); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("good block after scrub: %v", err)
		}
	}
	// A second pass finds nothing more.
	if st, err := d.Scrub(ctx, 0); err != nil || st.Blocks != 2 || st.Corrupt != 0 {
		t.Fatalf("second Scrub = %+v, %v", st, err)
	}
}

// TestDiskScrubCatchesWhatTheCRCMisses: reads check only the CRC-32C
// recorded at write; damage that keeps the CRC (forged here, rare by
// accident) is what the scrub's CID check is for.
func TestDiskScrubCatchesWhatTheCRCMisses(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	d := newDisk(t, dir, 1<<20)
	defer d.Close()
	c, data := storetest.Block(t, 4096)
	if err := d.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	forged := sameCRC(t, data)
	if crc32.Checksum(forged, crc32.MakeTable(crc32.Castagnoli)) != crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) || bytes.Equal(forged, data) {
		t.Fatal("forgery failed")
	}
	if err := os.WriteFile(blockFile(t, dir, c), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Scrub(ctx, 0); err != nil || st.Corrupt != 1 {
		t.Fatalf("Scrub = %+v, %v; want the forged block found corrupt", st, err)
	}
	if _, err := d.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("Get after scrub: %v, want ErrNotFound", err)
	}
}

// sameCRC returns data with its first 8 bytes changed so that its CRC-32C
// stays the same: CRC is linear, so for equal-length messages a difference
// d keeps the CRC when crc(d) == crc(zeros); two random 8-byte prefixes on
// zeros with equal CRCs give such a d (a birthday search over 32 bits).
func sameCRC(t *testing.T, data []byte) []byte {
	tab := crc32.MakeTable(crc32.Castagnoli)
	buf := make([]byte, len(data))
	seen := make(map[uint32]uint64)
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		p := r.Uint64()
		binary.LittleEndian.PutUint64(buf, p)
		sum := crc32.Checksum(buf, tab)
		if q, ok := seen[sum]; ok && q != p {
			out := bytes.Clone(data)
			binary.LittleEndian.PutUint64(out, binary.LittleEndian.Uint64(out)^p^q)
			return out
		}
		seen[sum] = p
	}
	t.Fatal("no CRC collision found")
	return nil
}

// TestDiskRunScrubs: Run scrubs in the background at ScrubRate, from one
// MaintenanceInterval after it starts.
func TestDiskRunScrubs(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: 1 << 20, ScrubRate: 1 << 30,
		MaintenanceInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, data := storetest.Block(t, 4096)
	if err := d.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blockFile(t, dir, c), 4000); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { stop(); <-done }()
	for d.Stats().Corrupt == 0 {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the background scrub never found the truncated block")
		}
	}
	if ok, _ := d.Has(ctx, c); ok {
		t.Fatal("truncated block still held")
	}
}
