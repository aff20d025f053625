package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/node"
)

// cliJSON runs a shoal client command against n with --json and decodes
// its output into out; the command must succeed.
func cliJSON(t *testing.T, n *testenv.Node, out any, args ...string) {
	t.Helper()
	start := time.Now()
	stdout, stderr, code := n.CLI(t, append(args, "--json")...)
	t.Logf("shoal %v took %v", args, time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("shoal %v: exit %d\n%s\n%s", args, code, stdout, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("shoal %v: output is not JSON: %v\n%s", args, err, stdout)
	}
}

// putPrefix writes count objects of size bytes under bucket/prefix and
// returns them by key.
func putPrefix(t *testing.T, s *testenv.S3, bucket, prefix string, count, size int, seed uint64) map[string][]byte {
	t.Helper()
	objs := make(map[string][]byte, count)
	for i := range count {
		k := fmt.Sprintf("%sobj-%03d.bin", prefix, i)
		objs[k] = randomBytes(size+i*1000, seed+uint64(i))
		s.PutObject(t, bucket, k, objs[k])
	}
	return objs
}

func totalBytes(objs map[string][]byte) int64 {
	var n int64
	for _, b := range objs {
		n += int64(len(b))
	}
	return n
}

// waitJob polls job id on n until pred holds (or fails the test after d).
func waitJob(t *testing.T, n *testenv.Node, id string, d time.Duration, what string, pred func(jobs.Job) bool) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var j jobs.Job
		cliJSON(t, n, &j, "jobs", id)
		if pred(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: not %s within %v: %+v", id, what, d, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A warm-up job on one node of three spreads the chunks over their home
// nodes (every node reads from the origin), each chunk leaves the origin
// once (origin amplification 1.00-1.02, counted at the origin), the job is
// seen from the other nodes, the cluster then serves everything with the
// origin stopped, and a re-run fetches nothing.
func TestWarmJobSpreadsOverHomesOnce(t *testing.T) {
	t.Parallel()
	s, nodes := startS3Cluster(t, "warm", 3, clusterOpts())
	objs := putPrefix(t, s, "warm", "data/", 6, 3*mib+4321, 300)
	total := totalBytes(objs)
	a, b, c := nodes[0], nodes[1], nodes[2]
	s.ResetCounts()

	var j jobs.Job
	cliJSON(t, a, &j, "warm", "s3://warm/data/")
	cn := s.Counts()
	t.Logf("warm of %d bytes over 3 nodes: state %s, origin bytes %d (job says %d, amplification %.3f), GETs %d, HEADs %d, from origin %d / peers %d / cached %d",
		total, j.State, cn.BytesOut, j.OriginBytes, j.Amplification, cn.GetObject, cn.HeadObject, j.BytesOrigin, j.BytesPeer, j.BytesCached)
	switch {
	case j.State != jobs.StateDone || j.ID == "":
		t.Fatalf("job: %+v", j)
	case !j.Listed || j.Objects != int64(len(objs)) || j.Bytes != total || j.ObjectsDone != j.Objects || j.BytesDone != total:
		t.Fatalf("job totals: objects %d/%d bytes %d/%d, want %d objects of %d bytes", j.ObjectsDone, j.Objects, j.BytesDone, j.Bytes, len(objs), total)
	case j.BytesOrigin != total || j.Amplification < 1 || j.Amplification > 1.02:
		t.Fatalf("job: %d bytes from the origin, amplification %.3f; want all %d once", j.BytesOrigin, j.Amplification, total)
	case float64(cn.BytesOut) > 1.02*float64(total) || cn.BytesOut < total:
		t.Fatalf("origin sent %d bytes for %d logical bytes (want 1.00-1.02x)", cn.BytesOut, total)
	}
	if got, orig := metricSum(t, a, "shoal_node_job_bytes_total"), metricSum(t, a, "shoal_node_job_origin_bytes_total"); got != float64(total) || orig != float64(total) {
		t.Errorf("job metrics on the job's node: %v bytes warmed, %v from the origin; want %d and %d", got, orig, total, total)
	}
	for i, n := range nodes {
		if got := n.Status(t)["ChunkOrigin"].(float64); got == 0 {
			t.Errorf("node %d read no chunk from the origin: the job did not spread the chunks over their homes", i)
		}
	}

	// Any node sees the job, and can show it.
	var list []jobs.Job
	cliJSON(t, c, &list, "jobs")
	if len(list) != 1 || list[0].ID != j.ID || list[0].State != jobs.StateDone || list[0].Node != a.PeerID {
		t.Fatalf("node C lists %+v, want job %s done on %s", list, j.ID, a.PeerID)
	}
	var one jobs.Job
	cliJSON(t, b, &one, "jobs", j.ID)
	if one.ID != j.ID || one.BytesDone != total {
		t.Fatalf("node B shows %+v", one)
	}
	var watched jobs.Job
	cliJSON(t, c, &watched, "jobs", j.ID, "--watch")
	if watched.ID != j.ID || watched.State != jobs.StateDone {
		t.Fatalf("jobs --watch from node C: %+v", watched)
	}
	if stdout, _, code := b.CLI(t, "jobs"); code != 0 || !strings.Contains(stdout, j.ID) || !strings.Contains(stdout, "done") {
		t.Fatalf("shoal jobs (text): exit %d\n%s", code, stdout)
	}

	// Origin stopped: every node serves every object.
	s.Stop()
	for i, n := range nodes {
		cl := n.Client(t)
		for k, want := range objs {
			got, _, err := get(ctxT(t), cl, "warm", k, "")
			if err != nil || string(got) != string(want) {
				t.Fatalf("node %d, origin stopped: %s: %v (%d bytes)", i, k, err, len(got))
			}
		}
	}
	s.Start()

	// A re-run finds everything in place: nothing leaves the origin.
	s.ResetCounts()
	var again jobs.Job
	cliJSON(t, a, &again, "warm", "s3://warm/data/")
	if cn := s.Counts(); cn.GetObject != 0 || again.State != jobs.StateDone || again.BytesCached != total || again.OriginBytes != 0 {
		t.Fatalf("re-run: %d origin GETs, job %+v; want everything cached", cn.GetObject, again)
	}
}

// A job interrupted by its node's restart resumes on its own when the node
// is back, fetching no finished object again (origin bytes counted at the
// origin), and is visible meanwhile from the other nodes. Cancel from
// another node stops a job everywhere.
func TestWarmJobResumesAfterRestartAndCancels(t *testing.T) {
	t.Parallel()
	s, nodes := startS3Cluster(t, "resume", 3, clusterOpts())
	objs := putPrefix(t, s, "resume", "set/", 24, 1*mib+100, 400)
	total := totalBytes(objs)
	a, b := nodes[0], nodes[1]
	s.ResetCounts()
	s.SetGetDelay(150 * time.Millisecond)

	var j jobs.Job
	cliJSON(t, a, &j, "warm", "s3://resume/set/", "--detach")
	if j.ID == "" {
		t.Fatalf("--detach printed %+v", j)
	}
	part := waitJob(t, b, j.ID, time.Minute, "part done", func(j jobs.Job) bool { return j.ObjectsDone >= 3 })
	a.Stop()
	atStop := s.Counts()
	t.Logf("at the stop: origin GETs %d, bytes %d", atStop.GetObject, atStop.BytesOut)
	if part.ObjectsDone >= part.Objects {
		t.Fatalf("job finished before the interruption: %+v", part)
	}
	// Its record waits in that node's catalog. The node comes back as a
	// deployed node does, with the others in its bootstrap list (its P2P
	// port is new, so they cannot call it back).
	a.Opts.Bootstrap = append(append([]string(nil), b.P2PAddrs...), nodes[2].P2PAddrs...)
	a.StartAgain(t)
	testenv.WaitMembers(t, nodes...)
	s.SetGetDelay(0)
	done := waitJob(t, b, j.ID, 2*time.Minute, "done", func(j jobs.Job) bool { return !j.State.Live() })
	cn := s.Counts()
	t.Logf("interrupted at %d/%d objects, resumed: state %s, runs %d, GETs %d, origin bytes %d for %d logical (job: %d, amplification %.3f)",
		part.ObjectsDone, part.Objects, done.State, done.Runs, cn.GetObject, cn.BytesOut, total, done.OriginBytes, done.Amplification)
	switch {
	case done.State != jobs.StateDone || done.Runs != 2 || done.ObjectsDone != int64(len(objs)) || done.BytesDone != total:
		t.Fatalf("resumed job: %+v", done)
	case float64(cn.BytesOut) > 1.02*float64(total):
		t.Fatalf("origin sent %d bytes for %d logical bytes across the interruption: chunks were fetched twice", cn.BytesOut, total)
	}

	// Cancel from another node: the job stops on every node.
	more := putPrefix(t, s, "resume", "more/", 24, 1*mib+100, 500)
	s.SetGetDelay(200 * time.Millisecond)
	var k jobs.Job
	cliJSON(t, a, &k, "warm", "s3://resume/more/", "--detach")
	waitJob(t, a, k.ID, time.Minute, "started", func(j jobs.Job) bool { return j.ObjectsDone >= 1 })
	var cancelled jobs.Job
	cliJSON(t, b, &cancelled, "cancel", k.ID)
	if cancelled.State != jobs.StateCancelled {
		t.Fatalf("after cancel from node B: %+v", cancelled)
	}
	time.Sleep(500 * time.Millisecond) // requests that were on the wire
	before := s.Counts().GetObject
	time.Sleep(2 * time.Second)
	if after := s.Counts().GetObject; after != before {
		t.Fatalf("origin GETs went on after cancel: %d -> %d", before, after)
	}
	s.SetGetDelay(0)
	// Re-running resumes the cancelled job (same ID) and finishes it.
	var resumed jobs.Job
	cliJSON(t, a, &resumed, "warm", "s3://resume/more/")
	if resumed.ID != k.ID || resumed.State != jobs.StateDone || resumed.BytesDone != totalBytes(more) {
		t.Fatalf("re-run after cancel: %+v, want job %s done", resumed, k.ID)
	}
}

// --replicas 2: every chunk has two holders; when one is killed (SIGKILL)
// the survivors notice and copy what it held until every chunk has two
// copies again, and the deficit in status returns to zero.
func TestReplicasRepairAfterKill(t *testing.T) {
	t.Parallel()
	s, nodes := startS3Cluster(t, "rep", 3, clusterOpts())
	objs := putPrefix(t, s, "rep", "m/", 4, 3*mib+999, 600)
	a, b, c := nodes[0], nodes[1], nodes[2]

	var j jobs.Job
	cliJSON(t, a, &j, "warm", "s3://rep/m/", "--pin", "--replicas", "2")
	if j.State != jobs.StateDone || j.Spec.Replicas != 2 {
		t.Fatalf("job: %+v", j)
	}
	minCopies := func(n *testenv.Node, key string) (int, node.WhereResult) {
		var w node.WhereResult
		cliJSON(t, n, &w, "where", "s3://rep/"+key)
		return w.MinCopies, w
	}
	for k := range objs {
		if mc, w := minCopies(b, k); mc < 2 || w.CachedCluster != 1 {
			t.Fatalf("%s after the job: fewest copies %d, cluster %.2f: %+v", k, mc, w.CachedCluster, w.Chunks)
		}
	}

	// Kill the node that holds the most chunks.
	killed := c
	s.ResetCounts()
	killedAt := time.Now()
	killed.Kill()
	survivors := []*testenv.Node{a, b}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok := true
		for k := range objs {
			mc, w := minCopies(a, k)
			if mc < 2 || len(w.Unreached) > 0 {
				ok = false
				break
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, n := range survivors {
				t.Logf("node %s status replicas: %v", n.PeerID, n.Status(t)["Replicas"])
			}
			t.Fatalf("copies not restored to 2 within 90 s of the kill")
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(killedAt)
	t.Logf("replica repair after SIGKILL of a holder: 2 copies of every chunk again after %v (origin GETs meanwhile: %d)", took.Round(time.Millisecond), s.Counts().GetObject)
	if g := s.Counts().GetObject; g != 0 {
		t.Errorf("repair read %d chunks from the origin; the surviving copies should have served them", g)
	}
	for _, n := range survivors {
		deadline := time.Now().Add(30 * time.Second)
		for {
			rs := n.Status(t)["Replicas"].(map[string]any)
			if rs["Deficit"].(float64) == 0 && rs["LastPass"] != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: replica deficit stays %v", n.PeerID, rs)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if metricSum(t, a, "shoal_node_replica_repaired_bytes_total")+metricSum(t, b, "shoal_node_replica_repaired_bytes_total") == 0 {
		t.Error("no survivor counts repaired bytes")
	}
	for _, n := range survivors {
		if d := metricSum(t, n, "shoal_node_replica_deficit_chunks"); d != 0 {
			t.Errorf("node %s: replica deficit gauge %v", n.PeerID, d)
		}
	}
	// With the origin gone, both survivors serve everything.
	s.Stop()
	for _, n := range survivors {
		for k, want := range objs {
			mustGet(t, n.Client(t), "rep", k, want)
		}
	}
	s.Start()

	// Unpin releases the pins on every member.
	if stdout, stderr, code := a.CLI(t, "unpin", "s3://rep/m/"); code != 0 {
		t.Fatalf("unpin: %d\n%s\n%s", code, stdout, stderr)
	}
	for _, n := range survivors {
		st := n.Status(t)
		if p := st["Pins"].(float64); p != 0 {
			t.Errorf("node %s still has %v pinned prefixes after unpin", n.PeerID, p)
		}
		if pb := st["Store"].(map[string]any)["Pinned"].(float64); pb != 0 {
			t.Errorf("node %s still has %v pinned blocks after unpin", n.PeerID, pb)
		}
	}
}

// --local keeps every chunk on the job's node as well; where, ls --cached,
// peers and status answer from live state, in text and in JSON.
func TestIntrospectionAfterLocalWarm(t *testing.T) {
	t.Parallel()
	s, nodes := startS3Cluster(t, "intro", 3, clusterOpts())
	objs := putPrefix(t, s, "intro", "d/", 2, 3*mib+17, 700)
	a, b, c := nodes[0], nodes[1], nodes[2]

	var j jobs.Job
	cliJSON(t, b, &j, "warm", "s3://intro/d/", "--local")
	if j.State != jobs.StateDone || !j.Spec.Local {
		t.Fatalf("job: %+v", j)
	}
	for k := range objs {
		var w node.WhereResult
		cliJSON(t, c, &w, "where", "s3://intro/"+k)
		if w.CachedCluster != 1 || len(w.Asked) != 2 || len(w.Chunks) != 4 || w.MinCopies < 1 {
			t.Fatalf("where %s from C: %+v", k, w)
		}
		for _, ch := range w.Chunks {
			// The job's node holds every chunk (--local), and so does the
			// chunk's home.
			if !slices.Contains(ch.Holders, b.PeerID) || !slices.Contains(ch.Holders, ch.Homes[0]) || ch.CID == "" {
				t.Fatalf("chunk %d of %s: holders %v, homes %v, cid %q", ch.Index, k, ch.Holders, ch.Homes, ch.CID)
			}
		}
		stdout, _, code := c.CLI(t, "where", "s3://intro/"+k)
		if code != 0 || !strings.Contains(stdout, "in the cluster 100%") {
			t.Fatalf("where (text): %d\n%s", code, stdout)
		}
	}

	var ls []node.CachedObject
	cliJSON(t, b, &ls, "ls", "--cached", "s3://intro/d/")
	if len(ls) != len(objs) {
		t.Fatalf("ls --cached on B: %+v", ls)
	}
	for _, o := range ls {
		if o.Here != 1 || o.Cluster != 1 || int(o.Size) != len(objs[o.Key]) {
			t.Fatalf("ls --cached on B: %+v", o)
		}
	}
	if _, _, code := b.CLI(t, "ls", "s3://intro/d/"); code != 2 {
		t.Fatalf("ls without --cached: exit %d, want 2", code)
	}

	// A reads everything: the chunks it does not hold come from peers.
	var total int64
	for k, want := range objs {
		mustGet(t, a.Client(t), "intro", k, want)
		total += int64(len(want))
	}
	var peers []node.PeerView
	cliJSON(t, a, &peers, "peers")
	if len(peers) != 2 {
		t.Fatalf("peers from A: %+v", peers)
	}
	var in int64
	var measured bool
	for _, p := range peers {
		if (p.ID != b.PeerID && p.ID != c.PeerID) || !strings.HasPrefix(p.Addr, "/ip4/127.0.0.1/") || p.Penalized {
			t.Fatalf("peer %+v", p)
		}
		in += p.BytesIn
		measured = measured || p.ReceiveRate > 0
		if (p.BytesIn > 0) != (p.ReceiveRate > 0) {
			t.Fatalf("peer %s: %d bytes in at %v B/s", p.ID, p.BytesIn, p.ReceiveRate)
		}
		// B warmed everything (--local): its store holds every chunk.
		if p.ID == b.PeerID && (p.BlocksHeld < 8 || p.BytesHeld < total) {
			t.Fatalf("B as seen from A holds %d blocks, %d bytes; want >= 8 chunks and %d bytes", p.BlocksHeld, p.BytesHeld, total)
		}
		if p.BlocksHeld < 0 {
			t.Fatalf("peer %s did not say what it holds: %+v", p.ID, p)
		}
	}
	if in == 0 || !measured {
		t.Fatalf("after A read %d bytes, its peers show %d bytes in and no receive rate measured: %+v", total, in, peers)
	}
	// B fetched from the homes while warming, and served A.
	var bPeers []node.PeerView
	cliJSON(t, b, &bPeers, "peers")
	var bOut int64
	for _, p := range bPeers {
		bOut += p.BytesOut
	}
	if bOut == 0 {
		t.Fatalf("B's peers show no bytes sent: %+v", bPeers)
	}
	stdout, _, code := a.CLI(t, "peers")
	if code != 0 || !strings.Contains(stdout, b.PeerID) || !strings.Contains(stdout, "BYTES IN") || !strings.Contains(stdout, " blocks, ") {
		t.Fatalf("peers (text): %d\n%s", code, stdout)
	}
	t.Logf("shoal peers on A:\n%s", stdout)

	var st struct {
		Jobs     []jobs.Job
		Replicas node.ReplicaStatus
	}
	cliJSON(t, b, &st, "status")
	if st.Jobs == nil || st.Replicas.Deficit != 0 {
		t.Fatalf("status --json: %+v", st)
	}
	if stdout, _, code := b.CLI(t, "status"); code != 0 || !strings.Contains(stdout, "replicas    deficit 0") || !strings.Contains(stdout, "jobs") {
		t.Fatalf("status (text): %d\n%s", code, stdout)
	}
	if _, stderr, code := b.CLI(t, "jobs", "nosuchjob"); code != 1 || !strings.Contains(stderr, "no such job") {
		t.Fatalf("jobs of an unknown ID: exit %d\n%s", code, stderr)
	}
}
