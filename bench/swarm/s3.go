package swarm

// This file owns scenario S3: node A holds an object (read once through
// it), node B reads it cold through its gateway; baselines between the same
// two namespaces on an unshaped link: iperf3 (one TCP stream) and kubo
// (`ipfs cat` between two daemons).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/shoal-cache/shoal/internal/cpucost"
)

// iperfPort is iperf3's port inside host A's namespace.
const iperfPort = "5201"

// RunS3 runs scenario S3 s.Runs times.
func RunS3(ctx context.Context, env Env, s Settings, rep *Report) (*S3Result, error) {
	log := env.Log.With("scenario", "S3")
	p2p, err := SupportsP2P(ctx, env.ShoalBin)
	if err != nil {
		return nil, err
	}
	if !p2p {
		rep.Notes = append(rep.Notes, "S3: the shoal binary has no --p2p-listen: B read from the origin, not from A")
	}
	lab, err := NewLab(ctx, LabConfig{Hosts: 3}, env.Log)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	hostA, hostB := lab.Hosts[1], lab.Hosts[2]
	work := filepath.Join(env.WorkDir, "s3")
	origin, err := StartOrigin(ctx, lab.Hosts[0], env.VersitygwBin, filepath.Join(work, "origin"), env.Log)
	if err != nil {
		return nil, err
	}
	defer origin.Close()
	obj := filepath.Join(work, "object")
	sum, err := WriteObject(obj, s.S3Size, 3)
	if err != nil {
		return nil, err
	}
	defer os.Remove(obj)
	if err := origin.Put(ctx, bucket, "s3/object", obj); err != nil {
		return nil, err
	}
	keyFile, err := writeSwarmKey(work)
	if err != nil {
		return nil, err
	}
	res := &S3Result{Size: s.S3Size, P2P: p2p}
	fail := func(f string, a ...any) {
		res.ErrorsText = append(res.ErrorsText, fmt.Sprintf(f, a...))
	}
	timeout := 10 * time.Minute
	url := []string{"http://" + gatewayAddr + "/" + bucket + "/s3/object"}
	nodeCfg := func(name string) NodeConfig {
		// --pprof: run 1's CPU profiles of A and B (see profileRead).
		return NodeConfig{Bin: env.ShoalBin, DataDir: filepath.Join(work, name), Origin: origin,
			P2P: p2p, SwarmKeyFile: keyFile, ChunkSize: s.ChunkFlag, ExtraArgs: append([]string{"--pprof"}, s.NodeArgs...)}
	}
	a, err := StartNode(ctx, hostA, nodeCfg("nodeA"))
	if err != nil {
		return nil, err
	}
	defer a.Close()
	warm, _ := readAll(ctx, env, []*Host{hostA}, url, timeout)
	if e := check(warm[0], s.S3Size, sum); e != "" {
		return nil, fmt.Errorf("S3: warming A: %s (log %s)", e, a.LogPath)
	}
	log.Info("A holds the object", "seconds", warm[0].Seconds())

	var shoal, originB, sendCPU, recvCPU []float64
	for run := range s.Runs {
		b, err := StartNode(ctx, hostB, nodeCfg(fmt.Sprintf("nodeB-%d", run+1)))
		if err != nil {
			return nil, err
		}
		if p2p {
			if got := waitPeers(ctx, []*Node{b}, 1); got < 1 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("S3 run %d: B saw no peer when its read began", run+1))
			}
		}
		origin.Reset()
		var profiled func() []string
		if run == 0 {
			profiled = profileRead(ctx, s.S3Size, filepath.Dir(s.Out), map[string]*Node{"s3-A-send": a, "s3-B-receive": b})
		}
		meter := cpucost.Start(a.PID(), b.PID())
		r, _ := readAll(ctx, env, []*Host{hostB}, url, timeout)
		cpu, cpuErr := meter.Stop()
		if profiled != nil {
			rep.Notes = append(rep.Notes, profiled()...)
		}
		oc := origin.Counts()
		if err := b.Close(); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("S3 run %d: %v", run+1, err))
		}
		if e := check(r[0], s.S3Size, sum); e != "" {
			fail("run %d: B: %s (log %s)", run+1, e, b.LogPath)
			continue
		}
		if oc.BytesOut > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("S3 run %d: B took %d of %d bytes from the origin, not from A", run+1, oc.BytesOut, s.S3Size))
		}
		mbps := float64(s.S3Size) / r[0].Seconds() / 1e6
		shoal = append(shoal, mbps)
		originB = append(originB, float64(oc.BytesOut))
		if cpuErr != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("S3 run %d: CPU not measured: %v", run+1, cpuErr))
		} else {
			sendCPU = append(sendCPU, cpucost.PerGiB(cpu[0], s.S3Size))
			recvCPU = append(recvCPU, cpucost.PerGiB(cpu[1], s.S3Size))
		}
		log.Info("S3 run done", "run", run+1, "mb_per_s", mbps, "origin_bytes", oc.BytesOut,
			"a_cpu_s", cpu[0].Seconds(), "b_cpu_s", cpu[1].Seconds())
		os.RemoveAll(filepath.Join(work, fmt.Sprintf("nodeB-%d", run+1)))
	}
	if err := a.Close(); err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("S3: %v", err))
	}
	res.Shoal, res.OriginB = NewStat(shoal), NewStat(originB)
	res.ShoalCPU = CPUCost{Sender: NewStat(sendCPU), Receiver: NewStat(recvCPU)}

	var tcp []float64
	sendCPU, recvCPU = nil, nil
	for run := range s.Runs {
		ir, err := iperf(ctx, hostA, hostB, "-n", fmt.Sprint(s.S3Size))
		if err != nil {
			fail("iperf3 run %d: %v", run+1, err)
			continue
		}
		tcp = append(tcp, ir.MBps)
		sendCPU = append(sendCPU, cpucost.PerGiB(ir.SenderCPU, ir.Bytes))
		recvCPU = append(recvCPU, cpucost.PerGiB(ir.ReceiverCPU, ir.Bytes))
	}
	res.TCP = NewStat(tcp)
	res.TCPCPU = CPUCost{Sender: NewStat(sendCPU), Receiver: NewStat(recvCPU)}
	if res.TCP.Median > 0 {
		res.OfTCP = res.Shoal.Median / res.TCP.Median
	}

	if env.IPFSBin == "" {
		res.KuboNote = "no kubo binary (set SHOAL_IPFS or put ipfs in bin/): baseline not measured"
	} else {
		k, err := kuboRuns(ctx, env, hostA, hostB, obj, sum, s.S3Size, s.Runs)
		if err != nil {
			res.KuboNote = err.Error()
			fail("kubo: %v", err)
		} else {
			var mbps, send, recv []float64
			for _, r := range k {
				mbps = append(mbps, r.MBps)
				send = append(send, cpucost.PerGiB(r.SenderCPU, r.Bytes))
				recv = append(recv, cpucost.PerGiB(r.ReceiverCPU, r.Bytes))
			}
			st := NewStat(mbps)
			res.Kubo = &st
			res.KuboCPU = &CPUCost{Sender: NewStat(send), Receiver: NewStat(recv)}
			if st.Median > 0 {
				res.OverKubo = res.Shoal.Median / st.Median
			}
		}
	}
	res.Errors = len(res.ErrorsText)
	return res, nil
}

// profileRead starts CPU profiles of the nodes (name -> node) covering a
// read of size bytes that begins readerLead from now (at a pessimistic
// 40 MB/s, 3 s to 60 s), written beside the results as <name>.cpu.pprof;
// the returned function waits for them and says where they are.
func profileRead(ctx context.Context, size int64, dir string, nodes map[string]*Node) func() []string {
	d := readerLead + min(60*time.Second, max(3*time.Second, time.Duration(float64(size)/40e6*float64(time.Second))))
	type done struct {
		name, path string
		err        error
	}
	ch := make(chan done, len(nodes))
	mkErr := os.MkdirAll(dir, 0o755)
	for name, n := range nodes {
		go func() {
			p := filepath.Join(dir, name+".cpu.pprof")
			if mkErr != nil {
				ch <- done{name, p, mkErr}
				return
			}
			ch <- done{name, p, n.Profile(ctx, d, p)}
		}()
	}
	return func() []string {
		var notes []string
		for range nodes {
			r := <-ch
			if r.err != nil {
				notes = append(notes, fmt.Sprintf("%s CPU profile: %v", r.name, r.err))
			} else {
				notes = append(notes, fmt.Sprintf("%s CPU profile (%v, run 1): %s", r.name, d, r.path))
			}
		}
		slices.Sort(notes)
		return notes
	}
}

// transferRun is one baseline transfer from A to B: its rate and what each
// end spent in CPU.
type transferRun struct {
	MBps                   float64
	Bytes                  int64
	SenderCPU, ReceiverCPU time.Duration
}

// iperf measures one TCP stream from A to B (B receives, as it does in S3),
// of the amount given by amount ("-n", bytes or "-t", seconds), and returns
// the received rate in MB/s with both processes' CPU time (getrusage of the
// exited iperf3 processes: ip netns exec execs them).
func iperf(ctx context.Context, a, b *Host, amount ...string) (transferRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// A persistent server (killed below): with -1 a failed first attempt
	// would end it.
	srv := a.Command(ctx, "iperf3", "-s", "-B", a.Addr.String(), "-p", iperfPort)
	if err := srv.Start(); err != nil {
		return transferRun{}, err
	}
	srvDone := false
	defer func() {
		if !srvDone {
			killGroup(srv)
			_ = srv.Wait()
		}
	}()
	var out []byte
	var err error
	var client *exec.Cmd
	for range 50 { // until the server listens
		time.Sleep(100 * time.Millisecond)
		// -R: the server (A) sends, the client (B) receives.
		client = b.Command(ctx, "iperf3", "-c", a.Addr.String(), "-p", iperfPort, amount[0], amount[1], "-R", "-J")
		out, err = client.Output()
		if err == nil {
			break
		}
	}
	if err != nil {
		return transferRun{}, fmt.Errorf("iperf3: %v: %.300s", err, out)
	}
	killGroup(srv)
	_ = srv.Wait()
	srvDone = true
	var j struct {
		End struct {
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &j); err != nil || j.End.SumReceived.BitsPerSecond == 0 {
		return transferRun{}, fmt.Errorf("iperf3 output: %v: %.200s", err, out)
	}
	return transferRun{
		MBps:        j.End.SumReceived.BitsPerSecond / 8 / 1e6,
		Bytes:       int64(j.End.SumReceived.Bytes),
		SenderCPU:   processCPU(srv.ProcessState),
		ReceiverCPU: processCPU(client.ProcessState),
	}, nil
}

// processCPU is the user + system time of an exited process (its rusage
// from wait4), 0 if unknown.
func processCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}
