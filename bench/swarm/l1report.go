package swarm

// This file owns L1's figures: per pass (one origin path rate B_o) the
// lone reader's time through the cluster against its two same-run
// baselines, and their summary lines.

import (
	"fmt"
	"io"
)

// L1Run is one L1 run of one pass.
type L1Run struct {
	// ClusterSeconds: the lone reader's GET through its gateway with all
	// N nodes up as a cluster, first byte sent to last byte received.
	ClusterSeconds float64 `json:"cluster_seconds"`
	// DirectSeconds: baseline (a), one GET straight from the origin in
	// the reader's namespace.
	DirectSeconds float64 `json:"direct_seconds"`
	// StandaloneSeconds: baseline (b), a standalone node (no cluster, its
	// own fresh data dir) in the reader's namespace, read cold through its
	// gateway.
	StandaloneSeconds float64      `json:"standalone_seconds"`
	Origin            OriginCounts `json:"origin"`
	DirectOrigin      OriginCounts `json:"direct_origin"`
	StandaloneOrigin  OriginCounts `json:"standalone_origin"`
	// CPUBusy is the machine's CPU busy fraction during the cluster read.
	CPUBusy float64 `json:"cpu_busy"`
	// OriginDone: seconds from the cluster read's start to the origin's
	// last byte.
	OriginDone float64 `json:"origin_done_seconds"`
	// PathBytes: bytes each node's origin path carried during the cluster
	// read (index 0 is the reader), from the htb class counters;
	// PathsUsed: how many carried at least one chunk.
	PathBytes []int64  `json:"origin_path_bytes,omitempty"`
	PathsUsed int      `json:"origin_paths_used"`
	Errors    []string `json:"errors,omitempty"`
}

// L1Pass is L1 at one origin path rate.
type L1Pass struct {
	PathBits int64 `json:"origin_path_rate_bits"` // B_o
	// OriginLinkBits is the origin's whole link (N x B_o: never the
	// bottleneck).
	OriginLinkBits int64   `json:"origin_link_rate_bits"`
	PathLimitSec   float64 `json:"path_limit_seconds"` // S/B_o
	// IdealSec is the fastest a lone reader can be through the cluster:
	// S / min(B, N x B_o).
	IdealSec float64 `json:"ideal_cluster_seconds"`
	// PathMBps is one TCP stream's goodput from the origin to the reader
	// (iperf3), checking the shaping: a little below B_o.
	PathMBps   float64 `json:"path_goodput_mb_per_s"`
	PathNote   string  `json:"path_note,omitempty"`
	Cluster    Stat    `json:"cluster_seconds"`
	Direct     Stat    `json:"direct_seconds"`
	Standalone Stat    `json:"standalone_seconds"`
	// Speedup is standalone / cluster per run; OverDirect direct / cluster.
	Speedup    Stat `json:"speedup_over_standalone"`
	OverDirect Stat `json:"speedup_over_direct"`
	OriginX    Stat `json:"origin_bytes_over_size"`
	ReqPerChnk Stat `json:"origin_gets_per_chunk"`
	// PathsUsed: node origin paths that carried at least a chunk during
	// the cluster read; ReaderShare: the reader's own path's bytes / S.
	PathsUsed   Stat    `json:"origin_paths_used"`
	ReaderShare Stat    `json:"reader_path_share"`
	Errors      int     `json:"errors"`
	RunsDetail  []L1Run `json:"runs"`
}

// L1Result is scenario L1: one pass at the configured B_o and, unless
// that is B already, one at B_o = B.
type L1Result struct {
	Nodes    int      `json:"nodes"`
	Size     int64    `json:"size_bytes"`
	RateBits int64    `json:"rate_bits"` // B, every fabric link
	Chunk    int64    `json:"chunk_bytes"`
	P2P      bool     `json:"p2p"`
	LimitSec float64  `json:"limit_seconds"` // S/B
	Passes   []L1Pass `json:"passes"`
}

func statText(s Stat, unit string) string {
	return fmt.Sprintf("%.3g %s [%.3g..%.3g]", s.Median, unit, s.Min, s.Max)
}

// writeL1 writes L1's summary lines to a tabwriter whose columns are
// scenario, figure, median [min..max], baseline, target, met.
func writeL1(w io.Writer, r *L1Result) {
	for _, p := range r.Passes {
		id := fmt.Sprintf("L1 N=%d S=%s B=%s B_o=%s p2p=%v", r.Nodes, sizeString(r.Size), rateString(r.RateBits),
			rateString(p.PathBits), r.P2P)
		narrow := p.PathBits < r.RateBits
		ideal := p.PathLimitSec / p.IdealSec
		fmt.Fprintf(w, "%s\tlone reader, cluster\t%s\tS/B = %.3g s, S/B_o = %.3g s; standalone node %s; one GET %s\tideal %.3g s\t\n",
			id, statText(p.Cluster, "s"), r.LimitSec, p.PathLimitSec, statText(p.Standalone, "s"), statText(p.Direct, "s"), p.IdealSec)
		target, met := fmt.Sprintf("> 1 (ideal %.3g)", ideal), p.Speedup.Median > 1
		if !narrow {
			// B_o >= B: nothing to gain; the honest target is no loss.
			target, met = "~1 (no gain, no loss: >= 0.9)", p.Speedup.Median >= 0.9
		}
		fmt.Fprintf(w, "%s\tspeedup standalone / cluster\t%s\t\t%s\t%s\n", id, statText(p.Speedup, "x"), target,
			verdict(p.Errors == 0 && met))
		fmt.Fprintf(w, "%s\tspeedup one GET / cluster\t%s\t\t\t\n", id, statText(p.OverDirect, "x"))
		fmt.Fprintf(w, "%s\torigin path check (iperf3)\t%.3g MB/s\tB_o = %.3g MB/s; origin link %s\t~B_o\t%s\n",
			id, p.PathMBps, float64(p.PathBits)/8e6, rateString(p.OriginLinkBits),
			verdict(p.PathMBps > 0 && p.PathMBps <= float64(p.PathBits)/8e6*1.05))
		fmt.Fprintf(w, "%s\torigin paths used (of %d)\t%s\treader's own path carried %s of S\tmany\t\n",
			id, r.Nodes, statText(p.PathsUsed, ""), statText(p.ReaderShare, "x"))
		fmt.Fprintf(w, "%s\torigin bytes / S\t%s\t\t<= 1.02\t%s\n", id, statText(p.OriginX, "x"), verdict(p.OriginX.Median <= 1.02))
		fmt.Fprintf(w, "%s\torigin GETs / chunk\t%s\t\t~1\t%s\n", id, statText(p.ReqPerChnk, ""), verdict(p.ReqPerChnk.Median <= 1.1))
		fmt.Fprintf(w, "%s\tread errors\t%d\t\t0\t%s\n", id, p.Errors, verdict(p.Errors == 0))
	}
}
