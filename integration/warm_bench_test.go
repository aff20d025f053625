package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/node"
)

// TestWarmFigures measures what the closing note of the jobs issue asks
// for, and writes them to .bench/warm.json: a warm-up of SIZE bytes
// (SHOAL_BENCH_WARM_SIZE, default 2 GiB, 64 MiB objects) over 4 nodes
// against one node warming alone, in the same run over the same origin,
// with the origin amplification counted at the origin; then the time from
// the SIGKILL of a replica holder to two copies of every chunk again.
//
// The origin caps each GET connection (SHOAL_BENCH_WARM_GET_RATE, default
// 8 MiB/s), as an object store does one connection: a node's origin
// bandwidth is its fetch slots times that, so the cluster's homes, each
// with its own slots, read in parallel. Run with SHOAL_BENCH_WARM=1 (make
// bench-warm); it is not part of the test suite (minutes, gigabytes).
func TestWarmFigures(t *testing.T) {
	if os.Getenv("SHOAL_BENCH_WARM") == "" {
		t.Skip("set SHOAL_BENCH_WARM=1 (make bench-warm) to measure warm-up figures")
	}
	size := envInt(t, "SHOAL_BENCH_WARM_SIZE", 2<<30)
	rate := envInt(t, "SHOAL_BENCH_WARM_GET_RATE", 8<<20)
	const objSize = 64 << 20
	count := int(max(1, size/objSize))
	total := int64(count) * objSize

	s := testenv.StartS3(t)
	s.CreateBucket(t, "bench")
	for i := range count {
		s.PutObject(t, "bench", fmt.Sprintf("w/obj-%03d.bin", i), randomBytes(objSize, uint64(9000+i)))
	}
	opts := testenv.NodeOptions{Origin: "s3", S3: s, ChunkSize: "4MiB", MemCache: "256MiB",
		DiskCache: strconv.FormatInt(2*total/int64(1<<20), 10) + "MiB"}
	s.SetGetRate(rate)

	warm := func(n *testenv.Node, args ...string) (jobs.Job, testenv.Counts, time.Duration) {
		s.ResetCounts()
		var j jobs.Job
		// Detached and polled: the CLI harness bounds a command to a minute.
		cliJSON(t, n, &j, append([]string{"warm", "s3://bench/w/", "--detach"}, args...)...)
		j = waitJob(t, n, j.ID, 30*time.Minute, "finished", func(j jobs.Job) bool { return !j.State.Live() })
		took := j.Finished.Sub(j.Created)
		if j.State != jobs.StateDone || j.BytesDone != total {
			t.Fatalf("warm: %+v", j)
		}
		return j, s.Counts(), took
	}

	alone := testenv.StartNode(t, opts)
	ja, ca, ta := warm(alone)
	if err := alone.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("one node alone: %d bytes in %v, origin bytes %d (%.3fx)", total, ta.Round(time.Millisecond), ca.BytesOut, float64(ca.BytesOut)/float64(total))

	nodes := testenv.StartCluster(t, 4, opts)
	jc, cc, tc := warm(nodes[0])
	t.Logf("4 nodes: %d bytes in %v (%.2fx faster), origin bytes %d (%.3fx; the job says %.3f), GETs %d (alone: %d)",
		total, tc.Round(time.Millisecond), ta.Seconds()/tc.Seconds(), cc.BytesOut, float64(cc.BytesOut)/float64(total), jc.Amplification, cc.GetObject, ca.GetObject)
	for i, n := range nodes {
		st := n.Status(t)
		t.Logf("node %d: chunks from the origin %v, from homes %v, from peers %v", i, st["ChunkOrigin"], st["ChunkHome"], st["ChunkPeer"])
	}

	// Replica repair: pin a part with 2 copies, kill a holder.
	s.SetGetRate(0)
	var jr jobs.Job
	cliJSON(t, nodes[1], &jr, "warm", "s3://bench/w/obj-00", "--pin", "--replicas", "2")
	keys := []string{}
	for i := range min(count, 10) {
		keys = append(keys, fmt.Sprintf("w/obj-%03d.bin", i))
	}
	killedAt := time.Now()
	nodes[3].Kill()
	var repair time.Duration
	for {
		ok := true
		for _, k := range keys {
			var w node.WhereResult
			cliJSON(t, nodes[0], &w, "where", "s3://bench/"+k)
			if w.MinCopies < 2 || len(w.Unreached) > 0 {
				ok = false
				break
			}
		}
		if ok {
			repair = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > 5*time.Minute {
			t.Fatal("copies not restored within 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("replica repair after SIGKILL (%d objects, %d bytes pinned with 2 copies over 4 nodes): %v", len(keys), jr.BytesDone, repair.Round(time.Millisecond))

	out := map[string]any{
		"bytes": total, "objects": count, "chunk_size": 4 << 20, "get_rate_per_connection": rate,
		"alone_seconds": ta.Seconds(), "alone_origin_bytes": ca.BytesOut,
		"cluster_nodes": 4, "cluster_seconds": tc.Seconds(), "cluster_origin_bytes": cc.BytesOut,
		"speedup": ta.Seconds() / tc.Seconds(), "cluster_amplification": float64(cc.BytesOut) / float64(total),
		"job_amplification": jc.Amplification, "alone_job_amplification": ja.Amplification,
		"replica_bytes": jr.BytesDone, "replica_repair_seconds": repair.Seconds(),
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(root, ".bench"), 0o755)
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(filepath.Join(root, ".bench", "warm.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func envInt(t *testing.T, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
