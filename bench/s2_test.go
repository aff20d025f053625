package bench

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// s2RequestTimeout bounds one small GET; anything near it is an error, not
// a latency sample worth keeping.
const s2RequestTimeout = 10 * time.Second

// runS2 measures S2: many small cached objects read by cfg.Conns concurrent
// connections through the gateway, against the origin read directly by the
// same generator.
func runS2(t *testing.T, cfg Settings, rp *report) {
	ctx := t.Context()
	s := testenv.StartS3(t)
	s.CreateBucket(t, benchBucket)
	pre := presigner(s)

	n, size := cfg.Objects, cfg.ObjectSize
	keys := make([]string, n)
	sums := make([][32]byte, n)
	originURLs := make([]string, n)
	seed := NewClient(16, time.Minute)
	defer seed.CloseIdleConnections()
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		keys[i] = fmt.Sprintf("s2/obj-%06d", i)
		g.Go(func() error {
			data, err := io.ReadAll(io.LimitReader(content(keys[i]), size))
			if err != nil {
				return err
			}
			sums[i] = sha256.Sum256(data)
			if err := putPresigned(gctx, seed, pre, benchBucket, keys[i], bytes.NewReader(data), size); err != nil {
				return err
			}
			originURLs[i], err = presignGet(gctx, pre, benchBucket, keys[i])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("S2: seed: %v", err)
	}
	t.Logf("S2: seeded %d objects of %d bytes in %v", n, size, time.Since(start).Round(time.Millisecond))

	node := testenv.StartNode(t, nodeOptions(cfg, s, ""))
	nodeURLs := make([]string, n)
	for i, k := range keys {
		nodeURLs[i] = node.Endpoint + "/" + benchBucket + "/" + k
	}
	verifyAll := func(urls []string) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for i, u := range urls {
			g.Go(func() error { return verifyRead(gctx, seed, u, size, sums[i]) })
		}
		return g.Wait()
	}
	if err := verifyAll(originURLs); err != nil {
		t.Fatalf("S2: origin read: %v", err)
	}
	warm := warmNode(t, s, "S2 objects", func() error { return verifyAll(nodeURLs) })

	oc, nc := NewClient(cfg.Conns, s2RequestTimeout), NewClient(cfg.Conns, s2RequestTimeout)
	defer oc.CloseIdleConnections()
	defer nc.CloseIdleConnections()
	type side struct {
		rps, p50, p99 []float64
		errs          int64
		firstErr      string
	}
	var origin, gw side
	var originGets int64
	lc := LoadConfig{Size: size, Conns: cfg.Conns, Warmup: cfg.Warmup, Duration: cfg.Duration}
	load := func(who string, sd *side, hc *http.Client, urls []string) {
		c := lc
		c.URLs = urls
		before := s.Counts().GetObject
		r, err := Load(ctx, hc, c)
		if who == "gateway" {
			originGets += s.Counts().GetObject - before
		}
		if err != nil {
			t.Fatalf("S2 %s load: %v", who, err)
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		sd.rps = append(sd.rps, r.RPS())
		sd.p50 = append(sd.p50, ms(r.P50))
		sd.p99 = append(sd.p99, ms(r.P99))
		sd.errs += r.Errors
		if sd.firstErr == "" && r.FirstError != "" {
			sd.firstErr = r.FirstError
		}
		t.Logf("S2 %s: %.0f req/s, p50 %v, p99 %v, max %v, %d ok, %d errors %s",
			who, r.RPS(), r.P50, r.P99, r.Max, r.OK, r.Errors, r.FirstError)
	}

	// The generator's own ceiling, measured in the same runs: an in-process
	// server answering from memory.
	ceiling := ceilingServer(t, size)
	cc := NewClient(cfg.Conns, s2RequestTimeout)
	defer cc.CloseIdleConnections()
	var ceil side
	steps := []func(){
		func() { load("origin", &origin, oc, originURLs) },
		func() { load("gateway", &gw, nc, nodeURLs) },
		func() { load("generator ceiling", &ceil, cc, []string{ceiling.URL}) },
	}
	for i := range cfg.RunsS2 {
		t.Logf("S2 run %d of %d", i+1, cfg.RunsS2)
		for j := range steps { // rotate who goes first: drift hits all alike
			steps[(i+j)%len(steps)]()
		}
	}
	ceiling.Close()
	ref := NewResult("S2", "req/s", NewFigure("generator ceiling req/s", ceil.rps, ceil.errs), nil, nil)
	ref.Notes = []string{"reference, not a target: the same generator against an in-process net/http server " +
		"answering from memory, in the same runs; no gateway figure can exceed it by much"}
	rp.add(ref)
	notes := []string{
		fmt.Sprintf("%d objects of %d bytes, %d connections, %v warm-up + %v measured per run",
			n, size, cfg.Conns, cfg.Warmup, cfg.Duration),
		"origin via presigned URLs straight to versitygw; gateway anonymous on loopback; same generator",
		"p50/p99: each run's percentile over all its requests; median/min/max over runs",
		fmt.Sprintf("origin GETs caused by the measured gateway load: %d", originGets),
	}
	if originGets != 0 {
		notes = append(notes, "NOT all cache hits: the gateway went to the origin during measurement")
	}
	if !warm {
		notes = append(notes, "warm-up never reached a pass without origin GETs")
	}
	add := func(variant, baseVariant, unit string, runs, baseRuns []float64, target *Target) {
		base := NewFigure(baseVariant, baseRuns, origin.errs)
		res := NewResult("S2", unit, NewFigure(variant, runs, gw.errs), &base, target)
		res.FirstError = gw.firstErr
		if res.FirstError == "" && origin.firstErr != "" {
			res.FirstError = "origin: " + origin.firstErr
		}
		res.Notes = notes
		rp.add(res)
	}
	add("gateway req/s", "origin req/s", "req/s", gw.rps, origin.rps, &Target{MinRatio: 2, MinValue: 20000})
	add("gateway p99", "origin p99", "ms", gw.p99, origin.p99, &Target{MaxValue: 10})
	add("gateway p50", "origin p50", "ms", gw.p50, origin.p50, nil)
}
