package node

import (
	"bytes"
	"testing"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/catalog"
)

var _ BlockStore = (*blockstore.Tiered)(nil)

func openTiered(t *testing.T, dir string) *blockstore.Tiered {
	t.Helper()
	mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: 2 * cs})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: 64 * cs})
	if err != nil {
		t.Fatal(err)
	}
	st, err := blockstore.NewTiered(mem, disk, blockstore.TieredConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRestartWithRealStore: the real tiered store and catalog, both closed
// and reopened from disk; the restarted node serves without the origin.
func TestRestartWithRealStore(t *testing.T) {
	storeDir, catDir := t.TempDir(), t.TempDir()
	org := newFakeOrigin()
	data := randBytes(5*cs+17, 50)
	org.set("b", "big", data)
	clock := &fakeClock{t: epoch}
	cfg := Config{ChunkSize: cs}

	run := func(check func(n *Node)) {
		st := openTiered(t, storeDir)
		cat, err := catalog.Open(catDir)
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(cfg, st, org, cat, WithClock(clock.now))
		if err != nil {
			t.Fatal(err)
		}
		check(n)
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		if err := st.Flush(t.Context()); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		if err := cat.Close(); err != nil {
			t.Error(err)
		}
	}
	run(func(n *Node) {
		got, err := get(t.Context(), n, "b", "big", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatal(err)
		}
	})
	org.setDown(true)
	before := org.total()
	run(func(n *Node) {
		got, err := get(t.Context(), n, "b", "big", cs-3, 3*cs)
		if err != nil || !bytes.Equal(got, data[cs-3:4*cs-3]) {
			t.Fatal(err)
		}
		st, err := n.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Manifests != 1 || st.Chunks != 6 || st.Disk.Blocks < 6 || st.ChunkOrigin != 0 {
			t.Errorf("status after restart: %+v", st)
		}
	})
	if c := org.total() - before; c != 0 {
		t.Fatalf("%d origin calls after restart, want 0", c)
	}
}
