package swarm

// This file owns the scenarios: S4 (N nodes read one cold object at once,
// against S/B and against the same N readers going straight to the origin)
// and S3 (node B reads a 1 GiB object held by node A, against iperf3 and
// kubo between the same two namespaces).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-cache/shoal/internal/cpucost"
	"github.com/shoal-cache/shoal/routing"
)

const (
	bucket = "swarm"
	// readerLead is how far ahead of now the readers' common start is set:
	// enough for N reader processes to start on 2 cores.
	readerLead = 2 * time.Second
	// peerWait bounds the wait for a fresh cluster to connect.
	peerWait = 60 * time.Second
	// startConcurrency bounds nodes starting at once on 2 cores.
	startConcurrency = 8
)

// Env is where the scenarios find their tools and put their files.
type Env struct {
	ShoalBin     string
	VersitygwBin string
	IPFSBin      string // "" skips the kubo baseline
	// ReaderExe is run as a reader with ReaderEnv set (the test binary).
	ReaderExe string
	ReaderArg []string
	WorkDir   string
	// KeepLogs leaves each run's node logs in WorkDir (data directories
	// are removed either way).
	KeepLogs bool
	Log      *slog.Logger
}

// WriteObject writes size pseudo-random bytes (seeded, so reproducible)
// to path and returns their SHA-256 in hex.
func WriteObject(path string, size int64, seed uint64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rng := rand.NewChaCha8(s)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		rng.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			return "", err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// readAll runs one reader per host at once (host i reads urls[i]) and
// returns their results in order, with times relative to a common start.
func readAll(ctx context.Context, env Env, hosts []*Host, urls []string, timeout time.Duration) ([]ReadResult, int64) {
	startAt := time.Now().Add(readerLead).UnixNano()
	out := make([]ReadResult, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			spec, _ := json.Marshal(ReadSpec{URL: urls[i], StartAt: startAt, Timeout: timeout})
			ctx, cancel := context.WithTimeout(ctx, timeout+readerLead+30*time.Second)
			defer cancel()
			cmd := h.Command(ctx, env.ReaderExe, env.ReaderArg...)
			cmd.Env = append(os.Environ(), ReaderEnv+"="+string(spec))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.Output()
			var res ReadResult
			if jerr := json.Unmarshal(lastLine(stdout), &res); jerr != nil {
				res.Err = fmt.Sprintf("reader in %s: %v %v: %s", h.NS, err, jerr, strings.TrimSpace(stderr.String()))
			}
			out[i] = res
		})
	}
	wg.Wait()
	return out, startAt
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// check returns an error text for a read that failed or returned the
// wrong bytes, "" for a good one.
func check(r ReadResult, size int64, sum string) string {
	switch {
	case r.Err != "":
		return r.Err
	case r.Bytes != size:
		return fmt.Sprintf("read %d bytes, want %d", r.Bytes, size)
	case r.SHA256 != sum:
		return "sha256 mismatch: wrong bytes"
	}
	return ""
}

// startNodes starts one node per host, at most startConcurrency at once.
func startNodes(ctx context.Context, hosts []*Host, cfg func(i int) NodeConfig) ([]*Node, error) {
	nodes := make([]*Node, len(hosts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(startConcurrency)
	for i, h := range hosts {
		g.Go(func() error {
			n, err := StartNode(gctx, h, cfg(i))
			nodes[i] = n
			return err
		})
	}
	err := g.Wait()
	if err != nil {
		stopNodes(nodes)
		return nil, err
	}
	return nodes, nil
}

func stopNodes(nodes []*Node) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n == nil {
			continue
		}
		wg.Go(func() {
			if err := n.Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitPeers waits until every node sees at least want connected peers,
// or peerWait passes; it returns the smallest count seen last.
func waitPeers(ctx context.Context, nodes []*Node, want int) int {
	deadline := time.Now().Add(peerWait)
	for {
		least := -1
		for _, n := range nodes {
			c := n.ConnectedPeers(ctx)
			if least < 0 || c < least {
				least = c
			}
		}
		if least >= want || least < 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return least
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func writeSwarmKey(dir string) (string, error) {
	p := filepath.Join(dir, "swarm.key")
	return p, os.WriteFile(p, routing.GenerateSwarmKey(), 0o600)
}

// RunS4 runs scenario S4 s.Runs times.
func RunS4(ctx context.Context, env Env, s Settings, rep *Report) (*S4Result, error) {
	log := env.Log.With("scenario", "S4")
	p2p, err := SupportsP2P(ctx, env.ShoalBin)
	if err != nil {
		return nil, err
	}
	if !p2p {
		rep.Notes = append(rep.Notes, "S4: the shoal binary has no --p2p-listen: nodes ran without a cluster, each fetching from the origin")
	}
	work := filepath.Join(env.WorkDir, "s4")
	lab, origin, sum, direct, err := startSwarmLab(ctx, env, s, work, "s4/object", 4)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	defer origin.Close()
	keyFile, err := writeSwarmKey(work)
	if err != nil {
		return nil, err
	}
	hosts := lab.Hosts[1:]
	// The goodput one TCP stream gets from the shaped origin link: headers
	// and tbf make it a little less than B, so S/B is a strict limit.
	ir, err := iperf(ctx, lab.Hosts[0], hosts[0], "-t", "3")
	linkMBps := ir.MBps
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("S4: link goodput not measured: %v", err))
	}
	limit := float64(s.Size) * 8 / float64(s.RateBits)
	timeout := time.Duration(4*limit*float64(s.Nodes))*time.Second + time.Minute
	res := &S4Result{Nodes: s.Nodes, Size: s.Size, RateBits: s.RateBits, Chunk: s.Chunk, P2P: p2p, LimitSec: limit, LinkMBps: linkMBps}
	if err == nil {
		res.LinkCPU = CPUCost{Sender: NewStat([]float64{cpucost.PerGiB(ir.SenderCPU, ir.Bytes)}),
			Receiver: NewStat([]float64{cpucost.PerGiB(ir.ReceiverCPU, ir.Bytes)})}
	}
	chunks := float64((s.Size + s.Chunk - 1) / s.Chunk)
	var slowest, slowestX, mean, directSlowest, originX, perChunk, cpuMean, cpuMax []float64
	gwURLs := make([]string, len(hosts))
	directURLs := make([]string, len(hosts))
	for i := range hosts {
		gwURLs[i] = "http://" + gatewayAddr + "/" + bucket + "/s4/object"
		directURLs[i] = direct
	}
	for run := range s.Runs {
		var r S4Run
		// Baseline: the same N namespaces read straight from the origin.
		origin.Reset()
		var dr []ReadResult
		var startAt int64
		if !s.NoDirect {
			log.Info("direct baseline", "run", run+1)
			dr, startAt = readAll(ctx, env, hosts, directURLs, timeout)
		}
		r.DirectOrigin = origin.Counts()
		worst := 0.0
		for i, x := range dr {
			if e := check(x, s.Size, sum); e != "" {
				r.Errors = append(r.Errors, fmt.Sprintf("direct reader %d: %s", i, e))
			}
			sec := float64(x.End-startAt) / 1e9
			r.DirectSeconds = append(r.DirectSeconds, sec)
			worst = max(worst, sec)
		}
		worst0 := worst
		if !s.NoDirect {
			directSlowest = append(directSlowest, worst)
		}

		// Shoal: fresh (cold) nodes, all reading through their gateways.
		runDir := filepath.Join(work, fmt.Sprintf("run%d", run+1))
		nodes, err := startNodes(ctx, hosts, func(i int) NodeConfig {
			return NodeConfig{Bin: env.ShoalBin, DataDir: filepath.Join(runDir, fmt.Sprintf("node%d", i+1)), Origin: origin,
				P2P: p2p, SwarmKeyFile: keyFile, ChunkSize: s.ChunkFlag, ExtraArgs: s.NodeArgs}
		})
		if err != nil {
			return nil, err
		}
		if p2p {
			got := waitPeers(ctx, nodes, s.Nodes-1)
			log.Info("cluster formed", "run", run+1, "least_connected_peers", got, "want", s.Nodes-1)
			if got < s.Nodes-1 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("S4 run %d: a node saw only %d of %d peers when reads began", run+1, got, s.Nodes-1))
			}
		}
		origin.Reset()
		log.Info("shoal read", "run", run+1)
		cpu0 := cpuTimes()
		pids := make([]int, len(nodes))
		for i, n := range nodes {
			pids[i] = n.PID()
		}
		meter := cpucost.Start(pids...)
		sr, startAt := readAll(ctx, env, hosts, gwURLs, timeout)
		nodeCPU, cpuErr := meter.Stop()
		r.Origin = origin.Counts()
		r.CPUBusy = cpuTimes().busySince(cpu0)
		if cpuErr != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("S4 run %d: node CPU not measured: %v", run+1, cpuErr))
		} else {
			var mean, busiest float64
			r.NodeCPU, mean, busiest = clusterCPU(nodeCPU, s.Size)
			cpuMean, cpuMax = append(cpuMean, mean), append(cpuMax, busiest)
		}
		if r.Origin.LastByte > 0 {
			r.OriginDone = float64(r.Origin.LastByte-startAt) / 1e9
		}
		if err := stopNodes(nodes); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("S4 run %d: %v", run+1, err))
		}
		worst, total := 0.0, 0.0
		for i, x := range sr {
			if e := check(x, s.Size, sum); e != "" {
				r.Errors = append(r.Errors, fmt.Sprintf("node %d: %s (log %s)", i+1, e, nodes[i].LogPath))
			}
			sec := float64(x.End-startAt) / 1e9
			r.NodeSeconds = append(r.NodeSeconds, sec)
			marks := make([]float64, len(x.Marks))
			for k, m := range x.Marks {
				marks[k] = float64(m-startAt) / 1e9
			}
			r.NodeMarks = append(r.NodeMarks, marks)
			if x.FirstByte > 0 {
				r.NodeFirstByte = append(r.NodeFirstByte, float64(x.FirstByte-startAt)/1e9)
			}
			worst = max(worst, sec)
			total += sec
		}
		slowest = append(slowest, worst)
		slowestX = append(slowestX, worst/limit)
		mean = append(mean, total/float64(len(sr)))
		originX = append(originX, float64(r.Origin.BytesOut)/float64(s.Size))
		perChunk = append(perChunk, float64(r.Origin.GetObject)/chunks)
		res.Errors += len(r.Errors)
		res.RunsDetail = append(res.RunsDetail, r)
		log.Info("S4 run done", "run", run+1, "slowest_s", worst, "limit_s", limit, "direct_slowest_s", worst0,
			"origin_bytes", r.Origin.BytesOut, "origin_gets", r.Origin.GetObject, "errors", len(r.Errors),
			"cpu_busy", r.CPUBusy, "origin_done_s", r.OriginDone)
		cleanRun(env, runDir)
	}
	res.Slowest, res.SlowestX, res.Mean = NewStat(slowest), NewStat(slowestX), NewStat(mean)
	res.Direct, res.OriginX, res.ReqPerChnk = NewStat(directSlowest), NewStat(originX), NewStat(perChunk)
	res.NodeCPUMean, res.NodeCPUMax = NewStat(cpuMean), NewStat(cpuMax)
	return res, nil
}

// clusterCPU turns the CPU time of each node during a read in which every
// node's reader received size bytes into CPU-seconds per GiB: per node, for
// the whole cluster (its total over N x size bytes) and for the busiest node.
func clusterCPU(cpu []time.Duration, size int64) (perNode []float64, mean, busiest float64) {
	if len(cpu) == 0 {
		return nil, 0, 0
	}
	var total time.Duration
	for _, c := range cpu {
		perNode = append(perNode, cpucost.PerGiB(c, size))
		total += c
	}
	return perNode, cpucost.PerGiB(total, int64(len(cpu))*size), slices.Max(perNode)
}

// cleanRun removes a run's directory, or with env.KeepLogs only the
// directories in it (node data), leaving the node logs.
func cleanRun(env Env, dir string) {
	if !env.KeepLogs {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// startSwarmLab builds S4's lab (N nodes and the origin, links at B), starts
// the origin in it and stores a fresh object of S bytes (seed) under key.
// It returns the object's SHA-256 and a presigned URL of it; on success the
// caller closes lab and origin.
func startSwarmLab(ctx context.Context, env Env, s Settings, work, key string, seed uint64) (lab *Lab, origin *Origin, sum, direct string, err error) {
	lab, err = NewLab(ctx, LabConfig{Hosts: s.Nodes + 1, RateBits: s.RateBits}, env.Log)
	if err != nil {
		return nil, nil, "", "", err
	}
	origin, err = StartOrigin(ctx, lab.Hosts[0], env.VersitygwBin, filepath.Join(work, "origin"), env.Log)
	if err != nil {
		lab.Close()
		return nil, nil, "", "", err
	}
	fail := func(err error) (*Lab, *Origin, string, string, error) {
		origin.Close()
		lab.Close()
		return nil, nil, "", "", err
	}
	obj := filepath.Join(work, "object")
	if sum, err = WriteObject(obj, s.Size, seed); err != nil {
		return fail(err)
	}
	defer os.Remove(obj)
	if err := origin.Put(ctx, bucket, key, obj); err != nil {
		return fail(err)
	}
	if direct, err = origin.PresignGet(ctx, bucket, key); err != nil {
		return fail(err)
	}
	return lab, origin, sum, direct, nil
}
