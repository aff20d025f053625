package swarm

// This file owns scenario L1, the lone cold reader: N nodes up as a
// cluster, every fabric link at B, each node's path from the origin
// narrower (B_o, see htb.go); ONE node reads a cold object through its
// gateway. Baselines in the same run and the same namespace: (a) one GET
// straight from the origin, (b) a standalone node (no cluster) reading it
// cold through its gateway. A second pass at B_o = B shows the case with
// nothing to gain.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// l1Key is L1's object in the origin bucket.
const l1Key = "l1/object"

// l1Passes are the origin path rates L1 runs at: the configured one, then
// B (unless that is the configured one).
func l1Passes(s Settings) []int64 {
	if s.OriginPathBits == s.RateBits {
		return []int64{s.RateBits}
	}
	return []int64{s.OriginPathBits, s.RateBits}
}

// l1Ideal is the fastest a lone reader can get an object of size bytes
// through the cluster: its own link (B) or all N origin paths together,
// whichever is narrower.
func l1Ideal(size int64, nodes int, rateBits, pathBits int64) float64 {
	return float64(size) * 8 / float64(min(rateBits, int64(nodes)*pathBits))
}

// RunL1 runs scenario L1: for each pass, s.Runs runs.
func RunL1(ctx context.Context, env Env, s Settings, rep *Report) (*L1Result, error) {
	log := env.Log.With("scenario", "L1")
	p2p, err := SupportsP2P(ctx, env.ShoalBin)
	if err != nil {
		return nil, err
	}
	if !p2p {
		rep.Notes = append(rep.Notes, "L1: the shoal binary has no --p2p-listen: the \"cluster\" reader ran alone, like baseline (b)")
	}
	work := filepath.Join(env.WorkDir, "l1")
	lab, origin, sum, direct, err := startSwarmLab(ctx, env, s, work, l1Key, 5)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	defer origin.Close()
	keyFile, err := writeSwarmKey(work)
	if err != nil {
		return nil, err
	}
	res := &L1Result{Nodes: s.Nodes, Size: s.Size, RateBits: s.RateBits, Chunk: s.Chunk, P2P: p2p,
		LimitSec: float64(s.Size) * 8 / float64(s.RateBits)}
	for _, pathBits := range l1Passes(s) {
		p, err := runL1Pass(ctx, env, s, lab, origin, direct, sum, keyFile, p2p, pathBits, rep)
		if err != nil {
			return nil, err
		}
		log.Info("L1 pass done", "path_bits", pathBits, "cluster_s", p.Cluster.Median, "standalone_s", p.Standalone.Median,
			"direct_s", p.Direct.Median, "speedup", p.Speedup.Median, "errors", p.Errors)
		res.Passes = append(res.Passes, *p)
	}
	return res, nil
}

// runL1Pass shapes the origin paths to pathBits and runs s.Runs runs.
func runL1Pass(ctx context.Context, env Env, s Settings, lab *Lab, origin *Origin, direct, sum, keyFile string,
	p2p bool, pathBits int64, rep *Report) (*L1Pass, error) {
	log := env.Log.With("scenario", "L1", "path_bits", pathBits)
	linkBits := OriginLinkBits(s.Nodes, pathBits)
	if err := lab.ShapeOriginPaths(ctx, linkBits, pathBits); err != nil {
		return nil, err
	}
	hosts := lab.Hosts[1:]
	reader := hosts[0]
	p := &L1Pass{PathBits: pathBits, OriginLinkBits: linkBits,
		PathLimitSec: float64(s.Size) * 8 / float64(pathBits), IdealSec: l1Ideal(s.Size, s.Nodes, s.RateBits, pathBits)}
	// The shaping, checked: one TCP stream from the origin to the reader
	// gets a little less than B_o.
	ir, err := iperf(ctx, lab.Hosts[0], reader, "-t", "3")
	mbps := ir.MBps
	if err != nil {
		p.PathNote = fmt.Sprintf("path goodput not measured: %v", err)
		rep.Notes = append(rep.Notes, "L1: "+p.PathNote)
	}
	p.PathMBps = mbps
	log.Info("origin path check", "iperf3_mb_per_s", mbps, "b_o_mb_per_s", float64(pathBits)/8e6)

	timeout := time.Duration(4*p.PathLimitSec)*time.Second + time.Minute
	gw := []string{"http://" + gatewayAddr + "/" + bucket + "/" + l1Key}
	chunks := float64((s.Size + s.Chunk - 1) / s.Chunk)
	var cluster, directS, standalone, speedup, overDirect, originX, perChunk, used, readerShare []float64
	for run := range s.Runs {
		var r L1Run
		runDir := filepath.Join(env.WorkDir, "l1", fmt.Sprintf("b%d-run%d", pathBits, run+1))
		// readOne runs one read in the reader's namespace and returns its
		// seconds (first byte sent to last byte received) and the origin's
		// counts during it.
		readOne := func(what string, urls []string) (float64, OriginCounts, int64) {
			origin.Reset()
			x, startAt := readAll(ctx, env, []*Host{reader}, urls, timeout)
			c := origin.Counts()
			if e := check(x[0], s.Size, sum); e != "" {
				r.Errors = append(r.Errors, fmt.Sprintf("%s: %s", what, e))
			}
			return x[0].Seconds(), c, startAt
		}

		// (a) One GET straight from the origin.
		log.Info("baseline: one GET from the origin", "run", run+1)
		r.DirectSeconds, r.DirectOrigin, _ = readOne("direct", []string{direct})

		// (b) A standalone node, cold, in the same namespace.
		log.Info("baseline: standalone node", "run", run+1)
		alone, err := StartNode(ctx, reader, NodeConfig{Bin: env.ShoalBin, DataDir: filepath.Join(runDir, "standalone"),
			Origin: origin, ChunkSize: s.ChunkFlag, ExtraArgs: s.NodeArgs})
		if err != nil {
			return nil, err
		}
		r.StandaloneSeconds, r.StandaloneOrigin, _ = readOne("standalone node (log "+alone.LogPath+")", gw)
		if err := alone.Close(); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("L1 run %d: %v", run+1, err))
		}

		// The cluster: N fresh (cold) nodes; only the first one reads.
		log.Info("cluster read", "run", run+1)
		nodes, err := startNodes(ctx, hosts, func(i int) NodeConfig {
			return NodeConfig{Bin: env.ShoalBin, DataDir: filepath.Join(runDir, fmt.Sprintf("node%d", i+1)), Origin: origin,
				P2P: p2p, SwarmKeyFile: keyFile, ChunkSize: s.ChunkFlag, ExtraArgs: s.NodeArgs}
		})
		if err != nil {
			return nil, err
		}
		if p2p {
			if got := waitPeers(ctx, nodes, s.Nodes-1); got < s.Nodes-1 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("L1 B_o=%s run %d: a node saw only %d of %d peers when the read began",
					rateString(pathBits), run+1, got, s.Nodes-1))
			}
		}
		cpu0 := cpuTimes()
		path0, perr := lab.OriginPathBytes(ctx)
		var startAt int64
		r.ClusterSeconds, r.Origin, startAt = readOne("cluster reader (log "+nodes[0].LogPath+")", gw)
		r.CPUBusy = cpuTimes().busySince(cpu0)
		if path1, err := lab.OriginPathBytes(ctx); err == nil && perr == nil {
			r.PathBytes, r.PathsUsed = pathDelta(path0, path1, s.Chunk)
		}
		if r.Origin.LastByte > 0 {
			r.OriginDone = float64(r.Origin.LastByte-startAt) / 1e9
		}
		if err := stopNodes(nodes); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("L1 run %d: %v", run+1, err))
		}
		cleanRun(env, runDir)

		p.Errors += len(r.Errors)
		p.RunsDetail = append(p.RunsDetail, r)
		if len(r.Errors) == 0 && r.ClusterSeconds > 0 {
			cluster = append(cluster, r.ClusterSeconds)
			directS = append(directS, r.DirectSeconds)
			standalone = append(standalone, r.StandaloneSeconds)
			speedup = append(speedup, r.StandaloneSeconds/r.ClusterSeconds)
			overDirect = append(overDirect, r.DirectSeconds/r.ClusterSeconds)
			originX = append(originX, float64(r.Origin.BytesOut)/float64(s.Size))
			perChunk = append(perChunk, float64(r.Origin.GetObject)/chunks)
			if r.PathBytes != nil {
				used = append(used, float64(r.PathsUsed))
				readerShare = append(readerShare, float64(r.PathBytes[0])/float64(s.Size))
			}
		}
		log.Info("L1 run done", "run", run+1, "cluster_s", r.ClusterSeconds, "standalone_s", r.StandaloneSeconds,
			"direct_s", r.DirectSeconds, "s_over_b", float64(s.Size)*8/float64(s.RateBits), "s_over_b_o", p.PathLimitSec,
			"origin_bytes", r.Origin.BytesOut, "origin_gets", r.Origin.GetObject, "paths_used", r.PathsUsed, "cpu_busy", r.CPUBusy,
			"origin_done_s", r.OriginDone, "errors", len(r.Errors))
	}
	p.Cluster, p.Direct, p.Standalone = NewStat(cluster), NewStat(directS), NewStat(standalone)
	p.Speedup, p.OverDirect = NewStat(speedup), NewStat(overDirect)
	p.OriginX, p.ReqPerChnk = NewStat(originX), NewStat(perChunk)
	p.PathsUsed, p.ReaderShare = NewStat(used), NewStat(readerShare)
	return p, nil
}

// pathDelta is the bytes each origin path carried between two samples,
// and how many paths carried at least one chunk.
func pathDelta(before, after []int64, chunk int64) ([]int64, int) {
	if len(before) != len(after) {
		return nil, 0
	}
	d := make([]int64, len(after))
	used := 0
	for i := range after {
		d[i] = after[i] - before[i]
		if d[i] >= chunk {
			used++
		}
	}
	return d, used
}
