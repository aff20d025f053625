package sim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestSimBench is `make bench-sim`: every scenario of the report over
// SHOAL_SIM_SEEDS seeds (default 10), written to SHOAL_SIM_OUT (default
// .bench/sim.json at the module root). SHOAL_SIM_SCALE=small runs the
// same cases at a tenth of the nodes (a quick look, not the figures).
func TestSimBench(t *testing.T) {
	if os.Getenv("SHOAL_BENCH_SIM") == "" {
		t.Skip("set SHOAL_BENCH_SIM=1 (make bench-sim) to run the scale simulation")
	}
	n := 10
	if s := os.Getenv("SHOAL_SIM_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("SHOAL_SIM_SEEDS=%q: want a count >= 1", s)
		}
		n = v
	}
	div := 1
	if os.Getenv("SHOAL_SIM_SCALE") == "small" {
		div = 10
	}
	out := os.Getenv("SHOAL_SIM_OUT")
	if out == "" {
		out = filepath.Join("..", ".bench", "sim.json")
	}
	const mbit = 1e6 / 8
	s4 := Fabric{NIC: 200 * mbit, OriginLink: 200 * mbit}
	dc := Fabric{NIC: 10000 * mbit, RackSize: 40, Oversubscription: 3}
	cold := []ColdCase{
		{Name: "S4 calibration", Nodes: 8, Size: 256 << 20, Fabric: s4, Target: "slowest <= 1.25x S/B",
			Measured: &Measured{Median: 1.20, Min: 1.18, Max: 1.45, Source: "S4 N=8, 5 runs, docs/FETCH.md"}},
		{Name: "S4", Nodes: 16, Size: 256 << 20, Fabric: s4, Target: "-"},
		{Name: "S4", Nodes: 32, Size: 256 << 20, Fabric: s4, Target: "slowest <= 1.4x S/B"},
		{Name: "K1 mocknet shape", Nodes: 64, Size: 32<<15 - 7, ChunkSize: 32 << 10, Fabric: Fabric{NIC: 1e9}, Target: "-",
			MeasuredOrigin: &Measured{Median: 93.0 / 32, Min: 76.0 / 32, Max: 147.0 / 32, Source: "TestMocknetColdRead N=64, 3 runs"}},
		{Name: "K1 mocknet shape", Nodes: 128, Size: 32<<15 - 7, ChunkSize: 32 << 10, Fabric: Fabric{NIC: 1e9}, Target: "-",
			MeasuredOrigin: &Measured{Median: 554.0 / 32, Min: 554.0 / 32, Max: 554.0 / 32, Source: "TestMocknetColdRead N=128, 1 run"}},
		{Name: "K1 (predicted)", Nodes: max(2, 1000/div), Size: 1 << 30, Fabric: dc, Target: "origin <= 1.02x S; p99 <= 1.5x S/B; busiest <= 3x mean"},
		{Name: "X1 cold", Nodes: max(2, 10000/div), Size: 1 << 30, Fabric: dc, Target: "origin <= 1.02x S; p99 <= 1.5x S/B; busiest <= 3x mean"},
	}
	// The 10 GiB object of the issue costs ten times the 1 GiB one (one
	// event per chunk, each over 160,000 flows); SHOAL_SIM_SEEDS_10GIB
	// sets its seeds (default: the same as the others; 0 skips it).
	big := n
	if s := os.Getenv("SHOAL_SIM_SEEDS_10GIB"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("SHOAL_SIM_SEEDS_10GIB=%q: want a count >= 0", s)
		}
		big = v
	}
	cache := []CacheCase{
		{Name: "X1 P2P cache", Cfg: CacheConfig{Nodes: 10000 / div, ModelBytes: 700e9, Keys: 700, CacheFraction: 0.10, Zipf: 1.1, Requests: 100},
			Claim: "busiest node about 9x less loaded than naive (at 16k nodes)"},
		{Name: "X1 P2P cache at 16k", Cfg: CacheConfig{Nodes: 16000 / div, ModelBytes: 700e9, Keys: 700, CacheFraction: 0.10, Zipf: 1.1, Requests: 100},
			Claim: "busiest node about 9x less loaded than naive (at 16k nodes)"},
	}
	// SHOAL_SIM_ONLY (a comma list) keeps the cases whose name contains
	// one of its parts.
	if only := os.Getenv("SHOAL_SIM_ONLY"); only != "" {
		keep := func(name string) bool {
			for _, p := range strings.Split(only, ",") {
				if p != "" && strings.Contains(name, p) {
					return true
				}
			}
			return false
		}
		cold = slices.DeleteFunc(cold, func(c ColdCase) bool { return !keep(c.Name) })
		cache = slices.DeleteFunc(cache, func(c CacheCase) bool { return !keep(c.Name) })
		if !keep("X1 cold") {
			big = 0
		}
	}
	ctx := context.Background()
	rep := Report{Seeds: n, GantryOriginCopiesPerLayer: 8.0}
	runs := make([]int, len(cold))
	for i := range runs {
		runs[i] = n
	}
	if big > 0 {
		cold = append(cold, ColdCase{Name: "X1 cold", Nodes: max(2, 10000/div), Size: 10 << 30, Fabric: dc, Target: "origin <= 1.02x S; p99 <= 1.5x S/B; busiest <= 3x mean"})
		runs = append(runs, big)
	}
	for i, c := range cold {
		s, err := RunColdCase(ctx, c, runs[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s N=%d: slowest %v x S/B, origin %v, busiest/mean %v, direct %v (%.0f s)", c.Name, c.Nodes, s.TimeToAllMax, s.OriginAmp, s.WorstOverMean, s.DirectTimeToAllMax, s.Seconds)
		rep.Cold = append(rep.Cold, s)
	}
	for _, c := range cache {
		s, err := RunCacheCase(ctx, c, n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s N=%d: busiest/mean %v, naive %v (%.0f s)", c.Name, c.Cfg.Nodes, s.WorstOverMean, s.NaiveWorstOverMean, s.Seconds)
		rep.Cache = append(rep.Cache, s)
	}
	rep.WriteTable(os.Stdout)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

// TestBand: nearest-rank percentiles.
func TestBand(t *testing.T) {
	xs := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	if b := band(xs); b.P5 != 1 || b.P50 != 5 || b.P95 != 10 {
		t.Fatalf("band %+v, want 1 5 10", b)
	}
	if b := band([]float64{3}); b.P5 != 3 || b.P50 != 3 || b.P95 != 3 {
		t.Fatalf("band of one %+v", b)
	}
}
