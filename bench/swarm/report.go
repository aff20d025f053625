package swarm

// This file owns the report: the figures of S3, S4 and L1 with their same-run
// baselines, written as JSON and printed as one summary table.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Stat is the median, min and max of a figure over runs.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

// NewStat summarises runs (an empty Stat for none).
func NewStat(runs []float64) Stat {
	if len(runs) == 0 {
		return Stat{}
	}
	s := slices.Clone(runs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[len(s)-1], Runs: runs}
}

// S4Run is one S4 run.
type S4Run struct {
	// Per-node completion times in seconds, from the common start.
	NodeSeconds []float64 `json:"node_seconds"`
	// NodeFirstByte: seconds from the common start to each node's first
	// byte.
	NodeFirstByte []float64 `json:"node_first_byte_seconds"`
	// NodeMarks: seconds from the common start to each 16 MiB a node's
	// reader received (in object order).
	NodeMarks     [][]float64  `json:"node_marks_seconds,omitempty"`
	DirectSeconds []float64    `json:"direct_seconds"`
	Origin        OriginCounts `json:"origin"`
	DirectOrigin  OriginCounts `json:"direct_origin"`
	// CPUBusy is the machine's CPU busy fraction (0..1, all cores) during
	// the cluster read: near 1 means the box, not the links, set the pace.
	CPUBusy float64 `json:"cpu_busy"`
	// OriginDone: seconds from the common start to the origin's last byte
	// (how long the origin link was the pace; the rest is the fan-out).
	OriginDone float64 `json:"origin_done_seconds"`
	// NodeCPU: each node's CPU-seconds during the cluster read per GiB its
	// reader received (every node receives, verifies, stores, serves its
	// reader and sends to peers).
	NodeCPU []float64 `json:"node_cpu_s_per_gib,omitempty"`
	Errors  []string  `json:"errors,omitempty"`
}

// S4Result is scenario S4.
type S4Result struct {
	Nodes    int     `json:"nodes"`
	Size     int64   `json:"size_bytes"`
	RateBits int64   `json:"rate_bits"`
	Chunk    int64   `json:"chunk_bytes"`
	P2P      bool    `json:"p2p"`
	LimitSec float64 `json:"limit_seconds"` // S/B
	// LinkMBps is one TCP stream's goodput over a shaped link (iperf3), and
	// LinkCPU what its two iperf3 processes spent per GiB (one 3 s run).
	LinkMBps   float64 `json:"link_goodput_mb_per_s"`
	LinkCPU    CPUCost `json:"link_iperf3_cpu"`
	Slowest    Stat    `json:"slowest_seconds"`
	SlowestX   Stat    `json:"slowest_over_limit"`
	Mean       Stat    `json:"mean_seconds"`
	Direct     Stat    `json:"direct_slowest_seconds"`
	OriginX    Stat    `json:"origin_bytes_over_size"`
	ReqPerChnk Stat    `json:"origin_gets_per_chunk"`
	// NodeCPUMean is the whole cluster's CPU-seconds over the N x S bytes
	// its readers received; NodeCPUMax the busiest node's, per GiB of S.
	NodeCPUMean Stat    `json:"node_cpu_s_per_gib_mean"`
	NodeCPUMax  Stat    `json:"node_cpu_s_per_gib_max"`
	Errors      int     `json:"errors"`
	RunsDetail  []S4Run `json:"runs"`
}

// CPUCost is what the two ends of a transfer spent: CPU-seconds (user +
// system, all threads) per GiB moved, over runs. For Shoal the receiver is
// node B, which receives, verifies, stores and serves its gateway client.
type CPUCost struct {
	Sender   Stat `json:"sender_cpu_s_per_gib"`
	Receiver Stat `json:"receiver_cpu_s_per_gib"`
}

// C1's targets (BENCHMARKS.md), CPU-seconds per GiB on this machine.
const (
	maxReceiveCPUPerGiB = 1.5
	maxSendCPUPerGiB    = 0.5
)

// S3Result is scenario S3.
type S3Result struct {
	Size  int64 `json:"size_bytes"`
	P2P   bool  `json:"p2p"`
	Shoal Stat  `json:"shoal_mb_per_s"`
	// ShoalCPU: node A's CPU during B's read (sender) and B's (receiver),
	// from /proc/PID/stat around the read.
	ShoalCPU CPUCost `json:"shoal_cpu"`
	TCP      Stat    `json:"iperf3_mb_per_s"`
	// TCPCPU: the iperf3 server (sender) and client (receiver), getrusage.
	TCPCPU CPUCost `json:"iperf3_cpu"`
	Kubo   *Stat   `json:"kubo_mb_per_s,omitempty"`
	// KuboCPU: A's daemon (sender) and B's (receiver) around `ipfs cat`.
	KuboCPU    *CPUCost `json:"kubo_cpu,omitempty"`
	KuboNote   string   `json:"kubo_note,omitempty"`
	OriginB    Stat     `json:"origin_bytes_during_b_read"`
	OfTCP      float64  `json:"shoal_over_tcp"`
	OverKubo   float64  `json:"shoal_over_kubo,omitempty"`
	Errors     int      `json:"errors"`
	ErrorsText []string `json:"error_texts,omitempty"`
}

// Report is one harness run.
type Report struct {
	When    time.Time `json:"when"`
	NumCPU  int       `json:"nproc"`
	Go      string    `json:"go_version"`
	Kernel  string    `json:"kernel,omitempty"`
	Command string    `json:"command"`
	S4      *S4Result `json:"s4,omitempty"`
	S3      *S3Result `json:"s3,omitempty"`
	L1      *L1Result `json:"l1,omitempty"`
	Notes   []string  `json:"notes,omitempty"`
}

// NewReport starts a report of this machine.
func NewReport(command string) *Report {
	r := &Report{When: time.Now().UTC(), NumCPU: runtime.NumCPU(), Go: runtime.Version(), Command: command}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Kernel = strings.TrimSpace(string(b))
	}
	return r
}

// WriteJSON writes the report to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// Table renders the summary: one line per figure with median [min..max],
// its baseline and target.
func (r *Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tfigure\tmedian [min..max]\tbaseline (same run)\ttarget\tmet")
	st := func(s Stat, unit string) string {
		return fmt.Sprintf("%.3g %s [%.3g..%.3g]", s.Median, unit, s.Min, s.Max)
	}
	if s := r.S4; s != nil {
		id := fmt.Sprintf("S4 N=%d S=%s B=%s p2p=%v", s.Nodes, sizeString(s.Size), rateString(s.RateBits), s.P2P)
		fmt.Fprintf(w, "%s\tslowest node\t%s\tS/B = %.3g s; direct from origin %s\t<= 1.25 x S/B\t%s\n",
			id, st(s.Slowest, "s"), s.LimitSec, st(s.Direct, "s"), verdict(s.Errors == 0 && s.SlowestX.Median <= 1.25))
		fmt.Fprintf(w, "%s\tslowest / (S/B)\t%s\t\t<= 1.25\t%s\n", id, st(s.SlowestX, "x"), verdict(s.SlowestX.Median <= 1.25))
		fmt.Fprintf(w, "%s\tmean node\t%s\tone TCP stream on a link: %.3g MB/s (B = %.3g MB/s)\t\t\n",
			id, st(s.Mean, "s"), s.LinkMBps, float64(s.RateBits)/8e6)
		fmt.Fprintf(w, "%s\torigin bytes / S\t%s\t\t<= 1.02\t%s\n", id, st(s.OriginX, "x"), verdict(s.OriginX.Median <= 1.02))
		fmt.Fprintf(w, "%s\torigin GETs / chunk\t%s\t\t~1\t%s\n", id, st(s.ReqPerChnk, ""), verdict(s.ReqPerChnk.Median <= 1.1))
		fmt.Fprintf(w, "%s\tread errors\t%d\t\t0\t%s\n", id, s.Errors, verdict(s.Errors == 0))
		fmt.Fprintf(w, "%s\tCPU per node (all roles), mean\t%s\tiperf3 on a shaped link: send %.3g + receive %.3g CPU-s/GiB\t<= %g + %g CPU-s/GiB\t%s\n",
			id, st(s.NodeCPUMean, "CPU-s/GiB"), s.LinkCPU.Sender.Median, s.LinkCPU.Receiver.Median,
			maxReceiveCPUPerGiB, maxSendCPUPerGiB, verdict(len(s.NodeCPUMean.Runs) > 0 && s.NodeCPUMean.Median <= maxReceiveCPUPerGiB+maxSendCPUPerGiB))
		fmt.Fprintf(w, "%s\tCPU of the busiest node\t%s\t\t\t\n", id, st(s.NodeCPUMax, "CPU-s/GiB"))
	}
	if s := r.S3; s != nil {
		id := fmt.Sprintf("S3 S=%s p2p=%v", sizeString(s.Size), s.P2P)
		kubo := "kubo: " + s.KuboNote
		if s.Kubo != nil {
			kubo = "kubo " + st(*s.Kubo, "MB/s")
		}
		fmt.Fprintf(w, "%s\tB reads cold\t%s\tiperf3 %s; %s\t>= 20%% TCP, >= 10x kubo\t%s\n",
			id, st(s.Shoal, "MB/s"), st(s.TCP, "MB/s"), kubo,
			verdict(s.Errors == 0 && s.OfTCP >= 0.2 && (s.Kubo == nil || s.OverKubo >= 10)))
		fmt.Fprintf(w, "%s\tshoal / iperf3\t%.3g\t\t>= 0.2\t%s\n", id, s.OfTCP, verdict(s.OfTCP >= 0.2))
		if s.Kubo != nil {
			fmt.Fprintf(w, "%s\tshoal / kubo\t%.3g\t\t>= 10\t%s\n", id, s.OverKubo, verdict(s.OverKubo >= 10))
		}
		fmt.Fprintf(w, "%s\torigin bytes during B's read\t%s\t\t0\t%s\n", id, st(s.OriginB, "B"), verdict(s.OriginB.Max == 0))
		kuboSend, kuboRecv := "", ""
		if s.KuboCPU != nil {
			kuboSend, kuboRecv = "; kubo "+st(s.KuboCPU.Sender, "CPU-s/GiB"), "; kubo "+st(s.KuboCPU.Receiver, "CPU-s/GiB")
		}
		fmt.Fprintf(w, "%s\tCPU: A sends\t%s\tiperf3 %s%s\t<= %g CPU-s/GiB\t%s\n", id, st(s.ShoalCPU.Sender, "CPU-s/GiB"),
			st(s.TCPCPU.Sender, "CPU-s/GiB"), kuboSend, maxSendCPUPerGiB, verdict(len(s.ShoalCPU.Sender.Runs) > 0 && s.ShoalCPU.Sender.Median <= maxSendCPUPerGiB))
		fmt.Fprintf(w, "%s\tCPU: B receives+verifies+stores+serves\t%s\tiperf3 %s%s\t<= %g CPU-s/GiB\t%s\n", id, st(s.ShoalCPU.Receiver, "CPU-s/GiB"),
			st(s.TCPCPU.Receiver, "CPU-s/GiB"), kuboRecv, maxReceiveCPUPerGiB, verdict(len(s.ShoalCPU.Receiver.Runs) > 0 && s.ShoalCPU.Receiver.Median <= maxReceiveCPUPerGiB))
	}
	if r.L1 != nil {
		writeL1(w, r.L1)
	}
	w.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
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

func rateString(bits int64) string {
	switch {
	case bits >= 1e9 && bits%1e9 == 0:
		return fmt.Sprintf("%dgbit", bits/1e9)
	case bits >= 1e6 && bits%1e6 == 0:
		return fmt.Sprintf("%dmbit", bits/1e6)
	}
	return fmt.Sprintf("%dbit", bits)
}
