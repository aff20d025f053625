package blockstore_test

import (
	"errors"
	"testing"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

const (
	suiteDiskBudget   = 1 << 20
	suiteMemoryBudget = 512 << 10
)

func closeLater(t *testing.T, s blockstore.Store) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, blockstore.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
}

func newMemory(t *testing.T, budget int64) *blockstore.Memory {
	t.Helper()
	m, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newDisk(t *testing.T, dir string, budget int64, opts ...blockstore.DiskOption) *blockstore.Disk {
	t.Helper()
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: budget}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blockstore.Store {
		m := newMemory(t, suiteDiskBudget)
		closeLater(t, m)
		return m
	})
}

func TestDiskConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blockstore.Store {
		d := newDisk(t, t.TempDir(), suiteDiskBudget)
		closeLater(t, d)
		return d
	})
}

func TestTieredConformance(t *testing.T) {
	storetest.RunReadPath(t, func(t *testing.T) storetest.ReadPathStore {
		tr, err := blockstore.NewTiered(newMemory(t, suiteMemoryBudget), newDisk(t, t.TempDir(), suiteDiskBudget), blockstore.TieredConfig{})
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, tr)
		return tr
	})
}
