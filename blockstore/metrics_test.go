package blockstore_test

import (
	"errors"
	"os"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

func TestMetricsShareOneRegistererByTier(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewPedanticRegistry()
	mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: 1 << 20}, blockstore.WithMemoryRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	disk := newDisk(t, t.TempDir(), 1<<20, blockstore.WithDiskRegisterer(reg))
	tr, err := blockstore.NewTiered(mem, disk, blockstore.TieredConfig{}, blockstore.WithTieredRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c, data := storetest.Block(t, 1000)
	if err := tr.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Get(ctx, c); err != nil {
		t.Fatal(err)
	}
	missing, _ := storetest.Block(t, 10)
	if _, err := tr.Get(ctx, missing); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatal(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := disk.Get(ctx, c); err != nil { // one read of the SSD tier itself
		t.Fatal(err)
	}
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "shoal_blockstore_removals_total" {
			continue // tier and reason: TestRemovalsByReason
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "tier" {
				t.Fatalf("%s: labels %v, want tier only", f.GetName(), m.GetLabel())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = v
		}
	}
	for series, want := range map[string]float64{
		"shoal_blockstore_hits_total/memory":       1,
		"shoal_blockstore_hits_total/tiered":       1,
		"shoal_blockstore_misses_total/memory":     1,
		"shoal_blockstore_misses_total/disk":       1,
		"shoal_blockstore_misses_total/tiered":     1,
		"shoal_blockstore_bytes/memory":            1000,
		"shoal_blockstore_bytes/disk":              1000,
		"shoal_blockstore_hits_total/disk":         1,
		"shoal_blockstore_read_bytes_total/memory": 1000,
		"shoal_blockstore_read_bytes_total/disk":   1000,
		"shoal_blockstore_read_bytes_total/tiered": 1000,
		"shoal_blockstore_budget_bytes/memory":     1 << 20,
		"shoal_blockstore_budget_bytes/disk":       1 << 20,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// Blocks that leave a tier are counted by why: the budget (eviction),
// corruption, a vanished file, or a delete.
func TestRemovalsByReason(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewPedanticRegistry()
	mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: 10_000}, blockstore.WithMemoryRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for i := range 4 { // 4 x 4000 bytes in a 10,000-byte budget: two evicted
		c, data := storetest.Block(t, 4000+i)
		if err := mem.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	var deletedFromMem []byte
	if err := mem.AllKeys(ctx, func(c cid.Cid) bool {
		if err := mem.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
		deletedFromMem = append(deletedFromMem, 1)
		return false
	}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	disk := newDisk(t, dir, 1<<20, blockstore.WithDiskRegisterer(reg))
	defer disk.Close()
	blocks := make([]cid.Cid, 3)
	for i := range blocks {
		c, data := storetest.Block(t, 5000+i)
		if err := disk.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		blocks[i] = c
	}
	if err := os.WriteFile(blockFile(t, dir, blocks[0]), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blockFile(t, dir, blocks[1])); err != nil {
		t.Fatal(err)
	}
	if err := disk.Delete(ctx, blocks[2]); err != nil {
		t.Fatal(err)
	}
	for _, c := range blocks[:2] {
		if _, err := disk.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
			t.Fatalf("get of a damaged block: %v", err)
		}
	}

	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "shoal_blockstore_removals_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	for series, want := range map[string]float64{
		"reason=budget tier=memory ":  2,
		"reason=deleted tier=memory ": 1,
		"reason=corrupt tier=memory ": 0,
		"reason=budget tier=disk ":    0,
		"reason=corrupt tier=disk ":   1,
		"reason=missing tier=disk ":   1,
		"reason=deleted tier=disk ":   1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("removals_total{%s} = %v (present %v), want %v; all: %v", series, v, ok, want, got)
		}
	}
	if len(deletedFromMem) != 1 {
		t.Fatalf("deleted %d blocks from memory, want 1", len(deletedFromMem))
	}
}
