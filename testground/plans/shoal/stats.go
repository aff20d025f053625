package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// summaryFile is the per-instance JSON summary written to the outputs dir.
const summaryFile = "summary.json"

// summary is what one instance measured. Fields that do not apply to a
// test case stay zero.
type summary struct {
	TestCase  string `json:"test_case"`
	Run       string `json:"run"`
	Instance  int    `json:"instance"` // 1-based sequence number
	Instances int    `json:"instances"`
	Shaped    bool   `json:"shaped"` // the runner applied the bandwidth limit

	ObjectSize int64 `json:"object_size"`
	ChunkSize  int64 `json:"chunk_size"`
	Objects    int   `json:"objects"`
	Bandwidth  int64 `json:"bandwidth"` // bytes/s, 0 = unshaped
	BootstrapK int   `json:"bootstrap_k"`
	Peers      int   `json:"peers"` // members seen when the read started

	// Read phase (swarm-read, prefetch-then-read).
	ReadSeconds float64 `json:"read_seconds"` // first request to last byte, all objects
	ReadBytes   int64   `json:"read_bytes"`
	Verified    bool    `json:"verified"` // every object's sha256 matched
	OriginBytes int64   `json:"origin_bytes"`
	OriginGets  int64   `json:"origin_gets"`
	OriginHeads int64   `json:"origin_heads"`
	ChunkHits   int64   `json:"chunk_hits"`
	ChunkPeer   int64   `json:"chunk_peer"`
	ChunkHome   int64   `json:"chunk_home"`
	ChunkOrigin int64   `json:"chunk_origin"`

	// Baseline (swarm-read with baseline): the same read straight from the
	// origin, every instance at once.
	BaselineSeconds float64 `json:"baseline_seconds,omitempty"`

	// Prefetch (prefetch-then-read, the prefetching instance only).
	PrefetchSeconds     float64 `json:"prefetch_seconds,omitempty"`      // the prefetcher only
	PrefetchOriginBytes int64   `json:"prefetch_origin_bytes,omitempty"` // this instance's origin bytes during the prefetch

	// provide-find: milliseconds per lookup of another instance's chunk.
	FindMillis     []float64 `json:"find_ms,omitempty"`     // FindProviders once all were announced
	FindableMillis []float64 `json:"findable_ms,omitempty"` // from learning the CID to first finding a provider
	FindFailures   int       `json:"find_failures,omitempty"`

	Error string `json:"error,omitempty"`
}

// percentile returns the p-th percentile (0..100) of xs by the
// nearest-rank method; NaN for no values. xs is not modified.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// caseReport aggregates the summaries of one test case run.
type caseReport struct {
	TestCase  string
	Run       string
	Instances int
	Errors    []string

	ObjectSize, ChunkSize, Bandwidth int64
	Objects                          int
	Shaped                           bool

	Verified                     bool    // every instance verified every object
	ReadMin, ReadMedian, ReadMax float64 // seconds per instance
	RateMinMBps, RateMedianMBps  float64 // per-instance read rate, MB/s (1e6)
	AggregateMBps                float64 // all bytes read / slowest instance
	OriginBytes                  int64   // read phase, all instances
	OriginGets                   int64
	OriginHeads                  int64
	OriginBytesPerObject         float64 // OriginBytes / (objects x object size)
	OriginGetsPerChunk           float64 // OriginGets / chunks of the data read
	PhysicalLimit                float64 // S / B seconds (objects x size / bandwidth); 0 unshaped
	SlowestOverLimit             float64 // ReadMax / PhysicalLimit; 0 unshaped
	BaselineMax                  float64 // slowest straight-from-origin read, seconds
	PrefetchSeconds              float64
	PrefetchOriginBytes          int64
	ChunkHits, ChunkPeer         int64
	ChunkHome, ChunkOrigin       int64
	FindP50, FindP99             float64 // ms
	FindableP50, FindableP99     float64 // ms
	Lookups, FindFailures        int
	findMillis, findableMillis   []float64
	readSeconds, readRates       []float64
	totalBytes                   int64
}

// aggregate builds one report per (run, test case) from instance
// summaries, in the order first seen.
func aggregate(sums []summary) []*caseReport {
	var out []*caseReport
	byKey := map[string]*caseReport{}
	for _, s := range sums {
		k := s.Run + "\x00" + s.TestCase
		r := byKey[k]
		if r == nil {
			r = &caseReport{TestCase: s.TestCase, Run: s.Run, Verified: true,
				ObjectSize: s.ObjectSize, ChunkSize: s.ChunkSize, Bandwidth: s.Bandwidth, Objects: s.Objects, Shaped: s.Shaped}
			byKey[k] = r
			out = append(out, r)
		}
		r.Instances++
		if s.Error != "" {
			r.Errors = append(r.Errors, fmt.Sprintf("instance %d: %s", s.Instance, s.Error))
		}
		r.OriginBytes += s.OriginBytes
		r.OriginGets += s.OriginGets
		r.OriginHeads += s.OriginHeads
		r.ChunkHits += s.ChunkHits
		r.ChunkPeer += s.ChunkPeer
		r.ChunkHome += s.ChunkHome
		r.ChunkOrigin += s.ChunkOrigin
		r.BaselineMax = max(r.BaselineMax, s.BaselineSeconds)
		r.PrefetchSeconds = max(r.PrefetchSeconds, s.PrefetchSeconds)
		r.PrefetchOriginBytes += s.PrefetchOriginBytes
		r.findMillis = append(r.findMillis, s.FindMillis...)
		r.findableMillis = append(r.findableMillis, s.FindableMillis...)
		r.FindFailures += s.FindFailures
		if s.TestCase != "provide-find" {
			r.Verified = r.Verified && s.Verified && s.Error == ""
			r.readSeconds = append(r.readSeconds, s.ReadSeconds)
			if s.ReadSeconds > 0 {
				r.readRates = append(r.readRates, float64(s.ReadBytes)/s.ReadSeconds/1e6)
			}
			r.totalBytes += s.ReadBytes
		}
	}
	for _, r := range out {
		r.finish()
	}
	return out
}

func (r *caseReport) finish() {
	r.Lookups = len(r.findMillis)
	r.FindP50, r.FindP99 = percentile(r.findMillis, 50), percentile(r.findMillis, 99)
	r.FindableP50, r.FindableP99 = percentile(r.findableMillis, 50), percentile(r.findableMillis, 99)
	if len(r.readSeconds) == 0 {
		return
	}
	r.ReadMin, r.ReadMedian, r.ReadMax = percentile(r.readSeconds, 0), percentile(r.readSeconds, 50), percentile(r.readSeconds, 100)
	r.RateMinMBps, r.RateMedianMBps = percentile(r.readRates, 0), percentile(r.readRates, 50)
	if r.ReadMax > 0 {
		r.AggregateMBps = float64(r.totalBytes) / r.ReadMax / 1e6
	}
	if data := int64(r.Objects) * r.ObjectSize; data > 0 {
		r.OriginBytesPerObject = float64(r.OriginBytes) / float64(data)
		if r.ChunkSize > 0 {
			chunks := int64(r.Objects) * ((r.ObjectSize + r.ChunkSize - 1) / r.ChunkSize)
			r.OriginGetsPerChunk = float64(r.OriginGets) / float64(chunks)
		}
		if r.Bandwidth > 0 {
			r.PhysicalLimit = float64(data) / float64(r.Bandwidth)
			r.SlowestOverLimit = r.ReadMax / r.PhysicalLimit
		}
	}
}

// readSummaries loads every summary.json below dir.
func readSummaries(dir string) ([]summary, error) {
	var out []summary
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != summaryFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var s summary
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s below %s", summaryFile, dir)
	}
	slices.SortStableFunc(out, func(a, b summary) int { return a.Instance - b.Instance })
	return out, nil
}

// printReports writes one block per report: the per-instance table, then
// the figures to compare with BENCHMARKS.md.
func printReports(w io.Writer, sums []summary, reps []*caseReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range reps {
		fmt.Fprintf(w, "\n== %s  run %s  %d instances\n", r.TestCase, r.Run, r.Instances)
		if r.TestCase == "provide-find" {
			fmt.Fprintf(w, "lookups %d, failures %d\n", r.Lookups, r.FindFailures)
			fmt.Fprintf(w, "FindProviders latency: p50 %.1f ms, p99 %.1f ms   (S7 target p99 <= 50 ms on loopback)\n", r.FindP50, r.FindP99)
			fmt.Fprintf(w, "time to findable:      p50 %.1f ms, p99 %.1f ms   (S7 target p99 <= 1 s)\n", r.FindableP50, r.FindableP99)
		} else {
			fmt.Fprintln(tw, "instance\tseconds\tMB/s\tbytes\torigin bytes\torigin GETs\thits\tpeer\thome\torigin\tbaseline s\tverified\t")
			for _, s := range sums {
				if s.Run != r.Run || s.TestCase != r.TestCase {
					continue
				}
				rate := 0.0
				if s.ReadSeconds > 0 {
					rate = float64(s.ReadBytes) / s.ReadSeconds / 1e6
				}
				fmt.Fprintf(tw, "%d\t%.3f\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.3f\t%v\t\n", s.Instance, s.ReadSeconds, rate, s.ReadBytes,
					s.OriginBytes, s.OriginGets, s.ChunkHits, s.ChunkPeer, s.ChunkHome, s.ChunkOrigin, s.BaselineSeconds, s.Verified)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			data := int64(r.Objects) * r.ObjectSize
			fmt.Fprintf(w, "data per instance %d bytes (%d x %d), chunk %d\n", data, r.Objects, r.ObjectSize, r.ChunkSize)
			fmt.Fprintf(w, "read seconds: min %.3f  median %.3f  slowest %.3f; per-instance MB/s: min %.1f median %.1f; aggregate %.1f MB/s\n",
				r.ReadMin, r.ReadMedian, r.ReadMax, r.RateMinMBps, r.RateMedianMBps, r.AggregateMBps)
			fmt.Fprintf(w, "origin during read: %d bytes = %.3f x data (S4 target <= 1.02; S5 target 0), %d GETs = %.2f per chunk, %d HEADs\n",
				r.OriginBytes, r.OriginBytesPerObject, r.OriginGets, r.OriginGetsPerChunk, r.OriginHeads)
			fmt.Fprintf(w, "chunks by source (all instances): local %d, peer %d, home %d, origin %d\n", r.ChunkHits, r.ChunkPeer, r.ChunkHome, r.ChunkOrigin)
			if r.BaselineMax > 0 {
				fmt.Fprintf(w, "baseline, every instance straight from the origin: slowest %.3f s (swarm slowest / baseline slowest = %.2f)\n",
					r.BaselineMax, r.ReadMax/r.BaselineMax)
			}
			if r.PrefetchSeconds > 0 {
				fmt.Fprintf(w, "prefetch: %.3f s, %d origin bytes (all instances)\n", r.PrefetchSeconds, r.PrefetchOriginBytes)
			}
			switch {
			case r.Shaped && r.PhysicalLimit > 0:
				fmt.Fprintf(w, "physical limit S/B %.3f s; slowest / limit = %.2f (S4 target <= 1.25)\n", r.PhysicalLimit, r.SlowestOverLimit)
			case r.Bandwidth > 0:
				fmt.Fprintf(w, "bandwidth %d B/s was NOT applied by this runner (no traffic shaping): S/B comparison not meaningful\n", r.Bandwidth)
			default:
				fmt.Fprintln(w, "unshaped run: no S/B comparison")
			}
			fmt.Fprintf(w, "all reads verified (sha256): %v\n", r.Verified)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "ERROR %s\n", e)
		}
	}
	return nil
}

// summarize prints the reports for every summary below dir; it fails when
// an instance reported an error or a read did not verify.
func summarize(w io.Writer, dir string) error {
	sums, err := readSummaries(dir)
	if err != nil {
		return err
	}
	reps := aggregate(sums)
	if err := printReports(w, sums, reps); err != nil {
		return err
	}
	var bad []string
	for _, r := range reps {
		if len(r.Errors) > 0 || (r.TestCase != "provide-find" && !r.Verified) {
			bad = append(bad, r.TestCase)
		}
	}
	if len(bad) > 0 {
		return errors.New("failed test cases: " + strings.Join(bad, ", "))
	}
	return nil
}
