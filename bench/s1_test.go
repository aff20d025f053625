package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/cpucost"
	"github.com/shoal-cache/shoal/internal/testenv"
)

// s1ReadTimeout bounds one whole-object read: 1 GiB at a pessimistic
// 10 MB/s on a loaded machine.
const s1ReadTimeout = 2 * time.Minute

// runS1 measures S1: a gateway read of one large object hot in the memory
// tier, then hot in the SSD tier, with one stream and with 8 ranged
// streams, each against versitygw serving the same object from page cache.
func runS1(t *testing.T, cfg Settings, rp *report) {
	ctx := t.Context()
	size := cfg.Size
	s := testenv.StartS3(t)
	s.CreateBucket(t, benchBucket)
	pre := presigner(s)
	hc := NewClient(8, s1ReadTimeout)
	defer hc.CloseIdleConnections()

	const key = "s1/object"
	h := sha256.New()
	start := time.Now()
	body := io.TeeReader(io.LimitReader(content(key), size), h)
	up := NewClient(1, 10*time.Minute)
	defer up.CloseIdleConnections()
	if err := putPresigned(ctx, up, pre, benchBucket, key, body, size); err != nil {
		t.Fatalf("seed S1 object: %v", err)
	}
	sum := [32]byte(h.Sum(nil))
	t.Logf("S1: seeded %d bytes in %v", size, time.Since(start).Round(time.Millisecond))
	originURL, err := presignGet(ctx, pre, benchBucket, key)
	if err != nil {
		t.Fatal(err)
	}
	// The first read checks the origin and leaves the object in page cache.
	if err := verifyRead(ctx, hc, originURL, size, sum); err != nil {
		t.Fatalf("S1: origin read: %v", err)
	}

	// The generator's own ceiling: an in-process server writing from memory.
	ceiling := ceilingServer(t, size)
	for _, streams := range []int{1, 8} {
		var runs []float64
		var errs int64
		for range cfg.RunsS1 {
			r, err := ReadObject(ctx, hc, ceiling.URL, size, streams)
			if err != nil {
				errs++
				t.Logf("S1 ceiling: %v", err)
				continue
			}
			runs = append(runs, r.MBps())
		}
		res := NewResult("S1", "MB/s", NewFigure(fmt.Sprintf("generator ceiling %s", streamLabel(streams)), runs, errs), nil, nil)
		res.Notes = []string{"reference, not a target: the load generator reading from an in-process net/http server " +
			"that writes from memory; no gateway figure can exceed it by much"}
		rp.add(res)
	}
	ceiling.Close()

	// Memory-hot: room for the whole object in the memory tier, warmed by
	// full reads.
	memHot := mib(size + size/2)
	node := testenv.StartNode(t, nodeOptions(cfg, s, memHot))
	nodeURL := node.Endpoint + "/" + benchBucket + "/" + key
	read := func() error { return verifyRead(ctx, hc, nodeURL, size, sum) }
	warm := warmNode(t, s, "S1 memory tier", read)
	p := s1Phase{t: t, cfg: cfg, rp: rp, s: s, node: node, hc: hc, originURL: originURL, nodeURL: nodeURL, size: size}
	p.run("memory-hit", 1.5, fmt.Sprintf("node --mem-cache %s, warmed by full reads", memHot), warm)

	// SSD-hot: the same data dir, a memory tier far smaller than the object,
	// so reads come from the SSD tier (its files hot in page cache, as the
	// origin's are).
	if err := node.Stop(); err != nil {
		t.Fatalf("S1: stop node: %v", err)
	}
	memSmall := mib(max(8<<20, min(64<<20, size/4)))
	node.Opts.MemCache = memSmall
	node.StartAgain(t)
	warm = warmNode(t, s, "S1 SSD tier", read)
	p.run("ssd-hit", 1.0, fmt.Sprintf("node restarted on the same data dir with --mem-cache %s", memSmall), warm)
}

// s1Phase measures one tier: for 1 and 8 streams, cfg.RunsS1 runs, each a
// node read and an origin read in alternating order.
type s1Phase struct {
	t                  *testing.T
	cfg                Settings
	rp                 *report
	s                  *testenv.S3
	node               *testenv.Node
	hc                 *http.Client
	originURL, nodeURL string
	size               int64
}

func (p *s1Phase) run(tier string, minRatio float64, setup string, warm bool) {
	t, ctx := p.t, p.t.Context()
	for _, streams := range []int{1, 8} {
		label := streamLabel(streams)
		var origin, node, originCPU, nodeCPU []float64
		var originErrs, nodeErrs, originGets int64
		var firstErr string
		fail := func(who string, err error) {
			if firstErr == "" {
				firstErr = who + ": " + err.Error()
			}
			t.Logf("S1 %s %s: %s read failed: %v", tier, label, who, err)
		}
		hitsBefore, _ := tierHits(ctx, p.node)
		for run := range p.cfg.RunsS1 {
			readOrigin := func() {
				m := cpucost.Start(p.s.PID())
				r, err := ReadObject(ctx, p.hc, p.originURL, p.size, streams)
				cpu, cerr := m.Stop()
				if err != nil {
					originErrs++
					fail("origin", err)
					return
				}
				origin = append(origin, r.MBps())
				if cerr == nil {
					originCPU = append(originCPU, cpucost.PerGiB(cpu[0], p.size))
				}
			}
			readNode := func() {
				before := p.s.Counts().GetObject
				m := cpucost.Start(p.node.PID())
				r, err := ReadObject(ctx, p.hc, p.nodeURL, p.size, streams)
				cpu, cerr := m.Stop()
				originGets += p.s.Counts().GetObject - before
				if err != nil {
					nodeErrs++
					fail("gateway", err)
					return
				}
				node = append(node, r.MBps())
				if cerr == nil {
					nodeCPU = append(nodeCPU, cpucost.PerGiB(cpu[0], p.size))
				}
			}
			if run%2 == 0 { // alternate who goes first: drift hits both alike
				readOrigin()
				readNode()
			} else {
				readNode()
				readOrigin()
			}
			t.Logf("S1 %s %s run %d: gateway %s MB/s, origin %s MB/s", tier, label, run+1, last(node), last(origin))
		}
		hitsAfter, _ := tierHits(ctx, p.node)
		base := NewFigure("origin "+label, origin, originErrs)
		res := NewResult("S1", "MB/s", NewFigure(tier+" "+label, node, nodeErrs), &base, &Target{MinRatio: minRatio})
		res.FirstError = firstErr
		res.Notes = append(res.Notes, setup,
			fmt.Sprintf("%d bytes per read; origin via presigned URLs straight to versitygw", p.size),
			"node block-store hits during the measured reads, by tier: "+hitDelta(hitsBefore, hitsAfter),
			fmt.Sprintf("origin GETs caused by the measured gateway reads: %d", originGets))
		if originGets != 0 {
			res.Notes = append(res.Notes, "NOT all cache hits: the gateway went to the origin during measurement")
		}
		if !warm {
			res.Notes = append(res.Notes, "warm-up never reached a read without origin GETs")
		}
		p.rp.add(res)
		cost := cpuResult(tier+" "+label+": node serving the gateway client", nodeCPU,
			"origin (versitygw) serving "+label, originCPU)
		if streams == 1 {
			cost.Notes = append(cost.Notes, p.profile(tier))
		}
		p.rp.add(cost)
	}
}

// profile takes a CPU profile of the node (it runs with --pprof) while it
// serves more 1-stream reads, not counted in any figure, and saves it beside
// the results as s1-<tier>.cpu.pprof; it returns a note saying where.
func (p *s1Phase) profile(tier string) string {
	ctx := p.t.Context()
	const window = 5 * time.Second
	path := filepath.Join(filepath.Dir(p.cfg.Out), "s1-"+tier+".cpu.pprof")
	errc := make(chan error, 1)
	go func() { errc <- fetchProfile(ctx, p.node.AdminAddr, window, path) }()
	for end := time.Now().Add(window); time.Now().Before(end); {
		if _, err := ReadObject(ctx, p.hc, p.nodeURL, p.size, 1); err != nil {
			break
		}
	}
	if err := <-errc; err != nil {
		return fmt.Sprintf("CPU profile of the node: %v", err)
	}
	return fmt.Sprintf("CPU profile of the node serving more %s reads (%v): %s", tier, window, path)
}

// fetchProfile writes a CPU profile of d from the admin API at addr to path.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	return savePprof(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d/time.Second)), path)
}

// savePprof writes what the pprof URL answers to path.
func savePprof(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuResult reports a cost figure: CPU-seconds (user + system, all threads,
// from /proc/PID/stat around each read) per GiB read, with the origin
// server's cost for the same reads as its baseline (ratio < 1: the node is
// cheaper). No target: C1's targets are for bytes from peers (S3, S4).
func cpuResult(variant string, runs []float64, baseVariant string, base []float64) Result {
	b := NewFigure(baseVariant, base, 0)
	res := NewResult("C1/S1", "CPU-s/GiB", NewFigure(variant, runs, 0), &b, nil)
	res.Notes = []string{"CPU time of the serving process only (the load generator's is not counted); " +
		"/proc counts 10 ms ticks"}
	return res
}

// streamLabel names a stream count: "1 stream", "8 ranged streams".
func streamLabel(streams int) string {
	if streams == 1 {
		return "1 stream"
	}
	return fmt.Sprintf("%d ranged streams", streams)
}

// last renders the latest run of a figure, "failed" when there is none.
func last(runs []float64) string {
	if len(runs) == 0 {
		return "failed"
	}
	return num(runs[len(runs)-1])
}
