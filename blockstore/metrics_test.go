package blockstore_test

import (
	"errors"
	"testing"

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
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "tier" {
				t.Fatalf("%s: labels %v, want tier only", f.GetName(), m.GetLabel())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = v
		}
	}
	for series, want := range map[string]float64{
		"shoal_blockstore_hits_total/memory":   1,
		"shoal_blockstore_hits_total/tiered":   1,
		"shoal_blockstore_misses_total/memory": 1,
		"shoal_blockstore_misses_total/disk":   1,
		"shoal_blockstore_misses_total/tiered": 1,
		"shoal_blockstore_bytes/memory":        1000,
		"shoal_blockstore_bytes/disk":          1000,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}
