package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// The report: every scenario over Seeds seeds, each figure as its p5, p50
// and p95 across seeds, next to what it is compared with.

// Band is a figure's p5, median and p95 across seeds.
type Band struct {
	P5  float64 `json:"p5"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
}

func (b Band) String() string { return fmt.Sprintf("%.3g [%.3g..%.3g]", b.P50, b.P5, b.P95) }

// band of xs (at least one value), nearest-rank percentiles.
func band(xs []float64) Band {
	s := slices.Clone(xs)
	slices.Sort(s)
	return Band{P5: pct(s, 5), P50: pct(s, 50), P95: pct(s, 95)}
}

// pct is the nearest-rank p-th percentile of sorted s.
func pct(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	r := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, r))]
}

func mean(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// ColdCase is a cold-object scenario of the report.
type ColdCase struct {
	Name   string `json:"name"`
	Nodes  int    `json:"nodes"`
	Size   int64  `json:"size_bytes"`
	Fabric Fabric `json:"fabric"`
	// Measured, if set, is the real run's slowest node / (S/B) this case
	// is calibrated against: median, min, max and where it was measured.
	Measured *Measured `json:"measured,omitempty"`
	// MeasuredOrigin, if set, is a real run's origin amplification.
	MeasuredOrigin *Measured `json:"measured_origin,omitempty"`
	// ChunkSize: 0 takes the read path's default.
	ChunkSize int64  `json:"chunk_size,omitempty"`
	Target    string `json:"target"`
}

// Measured is a figure from a real run.
type Measured struct {
	Median, Min, Max float64
	Source           string
}

// ColdSummary is a cold case over all seeds. Times are in units of S/B.
type ColdSummary struct {
	ColdCase
	Seeds            int  `json:"seeds"`
	TimeToAllP50     Band `json:"time_to_all_p50_x_sb"`
	TimeToAllP99     Band `json:"time_to_all_p99_x_sb"`
	TimeToAllMax     Band `json:"time_to_all_max_x_sb"`
	OriginAmp        Band `json:"origin_amplification"`
	OriginReadsChunk Band `json:"origin_reads_per_chunk_max"`
	WorstOverMean    Band `json:"busiest_upload_over_mean"`
	// The baseline of the same case: every node reads the origin.
	DirectTimeToAllMax Band `json:"direct_time_to_all_max_x_sb"`
	DirectOriginAmp    Band `json:"direct_origin_amplification"`
	// PredictionError is (simulated median - measured median) / measured
	// median of the slowest node, when a measurement exists.
	PredictionError *float64 `json:"prediction_error,omitempty"`
	Seconds         float64  `json:"wall_seconds"`
}

// CacheCase is a cache scenario of the report.
type CacheCase struct {
	Name string      `json:"name"`
	Cfg  CacheConfig `json:"config"`
	// Claim: what the design's own simulation claims, as the issue states it.
	Claim string `json:"claim"`
}

// CacheSummary is a cache case over all seeds, with Shoal's policy and the
// naive one (home only) on the same request streams.
type CacheSummary struct {
	CacheCase
	Seeds              int     `json:"seeds"`
	WorstOverMean      Band    `json:"busiest_served_over_mean"`
	NaiveWorstOverMean Band    `json:"naive_busiest_served_over_mean"`
	NaiveOverShoal     Band    `json:"naive_busiest_over_shoal_busiest"`
	OriginAmp          Band    `json:"origin_amplification"`
	OriginReadsChunk   Band    `json:"origin_reads_per_chunk"`
	Copies             Band    `json:"copies_per_chunk"`
	HotCopies          Band    `json:"copies_per_chunk_hottest_object"`
	LocalHits          Band    `json:"local_hit_ratio"`
	Seconds            float64 `json:"wall_seconds"`
}

// Report is what `make bench-sim` writes.
type Report struct {
	Seeds int            `json:"seeds"`
	Cold  []ColdSummary  `json:"cold"`
	Cache []CacheSummary `json:"cache"`
	// Gantry: origin copies per layer at 1,000 nodes (measured by Gantry).
	GantryOriginCopiesPerLayer float64 `json:"gantry_origin_copies_per_layer"`
}

// seeds runs f for seeds 1..n, GOMAXPROCS at once.
func seeds(ctx context.Context, n int, f func(seed uint64, i int) error) error {
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		g.Go(func() error { return f(uint64(i+1), i) })
	}
	return g.Wait()
}

// RunColdCase runs c over n seeds, with its direct baseline.
func RunColdCase(ctx context.Context, c ColdCase, n int) (ColdSummary, error) {
	start := time.Now()
	p50, p99, mx, amp, reads, wom, dmx, damp := make([]float64, n), make([]float64, n), make([]float64, n),
		make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	err := seeds(ctx, n, func(seed uint64, i int) error {
		r, err := RunCold(ColdConfig{Nodes: c.Nodes, Size: c.Size, Fabric: c.Fabric, Seed: seed, ChunkSize: c.ChunkSize})
		if err != nil {
			return fmt.Errorf("%s seed %d: %w", c.Name, seed, err)
		}
		d := slices.Clone(r.Done)
		slices.Sort(d)
		p50[i], p99[i], mx[i] = pct(d, 50)/r.SB, pct(d, 99)/r.SB, d[len(d)-1]/r.SB
		amp[i] = r.OriginBytes / float64(c.Size)
		reads[i] = float64(slices.Max(r.OriginReads))
		if m := mean(r.Uploaded); m > 0 {
			wom[i] = slices.Max(r.Uploaded) / m
		}
		dr, err := RunCold(ColdConfig{Nodes: c.Nodes, Size: c.Size, Fabric: c.Fabric, Seed: seed, Direct: true, ChunkSize: c.ChunkSize})
		if err != nil {
			return fmt.Errorf("%s direct seed %d: %w", c.Name, seed, err)
		}
		dmx[i] = slices.Max(dr.Done) / dr.SB
		damp[i] = dr.OriginBytes / float64(c.Size)
		return nil
	})
	if err != nil {
		return ColdSummary{}, err
	}
	s := ColdSummary{ColdCase: c, Seeds: n, TimeToAllP50: band(p50), TimeToAllP99: band(p99), TimeToAllMax: band(mx),
		OriginAmp: band(amp), OriginReadsChunk: band(reads), WorstOverMean: band(wom),
		DirectTimeToAllMax: band(dmx), DirectOriginAmp: band(damp), Seconds: time.Since(start).Seconds()}
	if m := c.Measured; m != nil {
		e := (s.TimeToAllMax.P50 - m.Median) / m.Median
		s.PredictionError = &e
	}
	return s, nil
}

// RunCacheCase runs c over n seeds with Shoal's policy and the naive one.
func RunCacheCase(ctx context.Context, c CacheCase, n int) (CacheSummary, error) {
	start := time.Now()
	wom, nwom, ratio, amp, reads, copies, hot, hits := make([]float64, n), make([]float64, n), make([]float64, n),
		make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	err := seeds(ctx, n, func(seed uint64, i int) error {
		cfg := c.Cfg
		cfg.Seed = seed
		r, err := RunCache(cfg)
		if err != nil {
			return fmt.Errorf("%s seed %d: %w", c.Name, seed, err)
		}
		cfg.HomeOnly = true
		nr, err := RunCache(cfg)
		if err != nil {
			return fmt.Errorf("%s naive seed %d: %w", c.Name, seed, err)
		}
		wom[i] = slices.Max(r.Served) / mean(r.Served)
		nwom[i] = slices.Max(nr.Served) / mean(nr.Served)
		ratio[i] = slices.Max(nr.Served) / slices.Max(r.Served)
		amp[i] = r.OriginBytes / r.UniqueBytes
		reads[i], copies[i], hot[i], hits[i] = r.OriginReadsPerChunk, r.Copies, r.HotCopies, r.LocalHits
		return nil
	})
	if err != nil {
		return CacheSummary{}, err
	}
	return CacheSummary{CacheCase: c, Seeds: n, WorstOverMean: band(wom), NaiveWorstOverMean: band(nwom), NaiveOverShoal: band(ratio),
		OriginAmp: band(amp), OriginReadsChunk: band(reads), Copies: band(copies), HotCopies: band(hot), LocalHits: band(hits),
		Seconds: time.Since(start).Seconds()}, nil
}

// WriteTable prints the report as one table per scenario kind.
func (r Report) WriteTable(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Cold object read by every node at once (median [p5..p95] over the seeds; times in S/B)\n")
	fmt.Fprintf(&b, "| case | N | S | seeds | slowest (x S/B) | p50 | p99 | origin amp. | origin reads/chunk (max) | busiest upload / mean | direct: slowest, origin amp. | target | measured, sim error |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Cold {
		meas := "-"
		if m := c.Measured; m != nil {
			meas = fmt.Sprintf("slowest %.2f [%.2f..%.2f] (%s), sim %+.0f%%", m.Median, m.Min, m.Max, m.Source, 100**c.PredictionError)
		}
		if m := c.MeasuredOrigin; m != nil {
			meas = fmt.Sprintf("origin amp. %.2f [%.2f..%.2f] (%s), sim %+.0f%%", m.Median, m.Min, m.Max, m.Source, 100*(c.OriginAmp.P50-m.Median)/m.Median)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s, %s | %s | %s |\n", c.Name, c.Nodes, sizeString(c.Size), c.Seeds,
			c.TimeToAllMax, c.TimeToAllP50, c.TimeToAllP99, c.OriginAmp, c.OriginReadsChunk, c.WorstOverMean,
			c.DirectTimeToAllMax, c.DirectOriginAmp, c.Target, meas)
	}
	fmt.Fprintf(&b, "\nP2P cache: Zipf-popular objects, every node's cache a fraction of the model (%d seeds; median [p5..p95])\n", r.Seeds)
	fmt.Fprintf(&b, "| case | N | busiest / mean | naive (home only) busiest / mean | naive busiest / Shoal busiest | origin amp. | origin reads/chunk | copies/chunk | copies of hottest | local hits | design's claim |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Cache {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Name, c.Cfg.Nodes, c.WorstOverMean, c.NaiveWorstOverMean,
			c.NaiveOverShoal, c.OriginAmp, c.OriginReadsChunk, c.Copies, c.HotCopies, c.LocalHits, c.Claim)
	}
	fmt.Fprintf(&b, "\nGantry, measured at 1,000 nodes: %.1f origin copies per layer.\n", r.GantryOriginCopiesPerLayer)
	io.WriteString(w, b.String())
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}
