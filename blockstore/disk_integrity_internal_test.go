package blockstore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/internal/content"
)

// TestDiskIndexWithoutCRC: a data directory written before CRCs were
// recorded still serves its blocks, verified against their CIDs, and the
// first read records the CRC so it survives a restart; damage to such a
// block is still caught.
func TestDiskIndexWithoutCRC(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	good, bad := block(t, 4096), block(t, 4096)
	d := openTestDisk(t, dir)
	for _, b := range []content.Block{good, bad} {
		if err := d.Put(ctx, b.CID(), b.Data()); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite both records in the old format: size and tick only.
	db, err := badger.Open(badgerOptions(filepath.Join(dir, "index"), nil).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []content.Block{good, bad} {
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set(blockKey(b.CID()), encodeBlockValue(4096, 1, payloadSum{}))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f := d.blockPath(bad.CID())
	rot, _ := os.ReadFile(f)
	rot[0] ^= 1
	if err := os.WriteFile(f, rot, 0o644); err != nil {
		t.Fatal(err)
	}

	d = openTestDisk(t, dir)
	if d.recordedSum(good.CID()).ok {
		t.Fatal("old record loaded with a CRC")
	}
	if got, err := d.Get(ctx, good.CID()); err != nil || !bytes.Equal(got, good.Data()) {
		t.Fatalf("Get of an old-format block: %v", err)
	}
	if !d.recordedSum(good.CID()).ok {
		t.Fatal("first read did not record the CRC")
	}
	if _, err := d.Get(ctx, bad.CID()); !errors.Is(err, ErrNotFound) || d.Stats().Corrupt != 1 {
		t.Fatalf("Get of a damaged old-format block: %v, corrupt %d", err, d.Stats().Corrupt)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTestDisk(t, dir)
	defer d.Close()
	if s := d.recordedSum(good.CID()); s != sumOf(good.Data()) {
		t.Fatalf("CRC after restart = %+v, want %+v", s, sumOf(good.Data()))
	}
}

func openTestDisk(t *testing.T, dir string) *Disk {
	t.Helper()
	d, err := OpenDisk(DiskConfig{Dir: dir, BudgetBytes: 1 << 20, ScrubRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// recordedSum is the CRC the index holds for c (test helper).
func (d *Disk) recordedSum(c cid.Cid) payloadSum {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, ok := d.index[c]
	if !ok {
		return payloadSum{}
	}
	return d.slots[i].sum
}

func block(t *testing.T, n int) content.Block {
	data := make([]byte, n)
	rand.Read(data)
	return content.NewBlock(content.SHA256, data)
}
