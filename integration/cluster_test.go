package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/routing"
)

// A node reads an object another node read before without going to the
// origin for its bytes.
func TestClusterPeerServesWarmObject(t *testing.T) {
	t.Parallel()
	const size = 4*mib + 1234
	data := randomBytes(size, 101)
	s, nodes := startS3Cluster(t, "warm", 2, clusterOpts())
	s.PutObject(t, "warm", "obj.bin", data)
	a, b := nodes[0], nodes[1]

	mustGet(t, a.Client(t), "warm", "obj.bin", data)
	first := s.Counts()
	t.Logf("node A cold read: origin GETs %d (ranged %d), HEADs %d", first.GetObject, first.RangedGet, first.HeadObject)

	s.ResetCounts()
	mustGet(t, b.Client(t), "warm", "obj.bin", data)
	cn := s.Counts()
	t.Logf("node B read after A: origin GETs %d, HEADs %d", cn.GetObject, cn.HeadObject)
	if cn.GetObject != 0 {
		t.Fatalf("node B sent %d GETs to the origin for an object node A holds; want 0", cn.GetObject)
	}
}

// Five nodes read the same cold object at once: each chunk leaves the
// origin about once.
func TestClusterFiveColdReadersShareOriginFetches(t *testing.T) {
	t.Parallel()
	const chunks = 6
	const size = chunks*mib - 4321 // the last chunk is short
	data := randomBytes(size, 102)
	s, nodes := startS3Cluster(t, "cold", 5, clusterOpts())
	s.PutObject(t, "cold", "obj.bin", data)
	s.ResetCounts()

	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		c := n.Client(t)
		wg.Go(func() {
			got, _, err := get(ctxT(t), c, "cold", "obj.bin", "")
			switch {
			case err != nil:
				errs[i] = err
			case !bytes.Equal(got, data):
				errs[i] = fmt.Errorf("%d bytes, want %d; %s", len(got), len(data), firstDiff(got, data))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	cn := s.Counts()
	t.Logf("5 concurrent cold readers of a %d-chunk object: origin GETs %d (ranged %d), HEADs %d, bytes out %d (object %d)",
		chunks, cn.GetObject, cn.RangedGet, cn.HeadObject, cn.BytesOut, size)
	// Slack: a home node that is slow to answer may make a reader fall back
	// to the origin for a chunk once or twice.
	if maxGets := int64(chunks + 2); cn.GetObject > maxGets {
		t.Errorf("origin served %d GETs for %d chunks read by 5 nodes; want at most %d", cn.GetObject, chunks, maxGets)
	}
	if cn.HeadObject > 2 {
		t.Errorf("origin served %d HEADs for one object read by 5 nodes; want about 1", cn.HeadObject)
	}
}

// A node killed while others are pulling chunks from it: their readers
// still get the right bytes.
func TestClusterPeerKilledMidTransfer(t *testing.T) {
	t.Parallel()
	const size = 8 * mib
	data := randomBytes(size, 103)
	opts := clusterOpts()
	// Slow uploads so the kill lands while chunks are still in flight.
	opts.ExtraArgs = []string{"--p2p-upload-limit", "1MiB"}
	s, nodes := startS3Cluster(t, "kill", 3, opts)
	s.PutObject(t, "kill", "obj.bin", data)
	a, b, c := nodes[0], nodes[1], nodes[2]
	mustGet(t, a.Client(t), "kill", "obj.bin", data)

	type result struct {
		got []byte
		err error
	}
	read := func(n *testenv.Node, killAfter int, kill func()) result {
		out, err := n.Client(t).GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String("kill"), Key: aws.String("obj.bin")})
		if err != nil {
			return result{err: err}
		}
		defer out.Body.Close()
		head := make([]byte, killAfter)
		if _, err := io.ReadFull(out.Body, head); err != nil {
			return result{err: err}
		}
		if kill != nil {
			kill()
		}
		rest, err := io.ReadAll(out.Body)
		return result{got: append(head, rest...), err: err}
	}
	var wg sync.WaitGroup
	var rb, rc result
	wg.Go(func() { rb = read(b, mib, func() { a.Kill() }) })
	wg.Go(func() { rc = read(c, 1, nil) })
	wg.Wait()
	if a.Running() {
		t.Fatal("node A still running")
	}
	for name, r := range map[string]result{"B": rb, "C": rc} {
		if r.err != nil {
			t.Errorf("node %s: read failed after node A was killed: %v", name, r.err)
		} else if !bytes.Equal(r.got, data) {
			t.Errorf("node %s: %s", name, firstDiff(r.got, data))
		}
	}
	// And afterwards, a fresh read on a survivor is still whole.
	mustGet(t, b.Client(t), "kill", "obj.bin", data)
	t.Logf("origin after the kill: %+v", s.Counts())
}

// A node with another swarm key cannot join; one without a key cannot
// start with P2P on.
func TestClusterRefusesWrongSwarmKey(t *testing.T) {
	t.Parallel()
	const size = 3 * mib
	data := randomBytes(size, 104)
	s, nodes := startS3Cluster(t, "key", 2, clusterOpts())
	s.PutObject(t, "key", "obj.bin", data)
	a, b := nodes[0], nodes[1]
	mustGet(t, a.Client(t), "key", "obj.bin", data)

	o := clusterOpts()
	o.Origin, o.S3 = "s3", s
	o.SwarmKeyFile = testenv.NewSwarmKey(t) // another cluster's key
	o.Bootstrap = append(slices.Clone(a.P2PAddrs), b.P2PAddrs...)
	intruder := testenv.StartNode(t, o)

	s.ResetCounts()
	mustGet(t, intruder.Client(t), "key", "obj.bin", data)
	cn := s.Counts()
	t.Logf("intruder read: origin GETs %d", cn.GetObject)
	if cn.GetObject < 3 {
		t.Errorf("intruder got the object with %d origin GETs; it must not have reached the cluster's 3 cached chunks", cn.GetObject)
	}
	if p := intruder.P2P(t); len(p.ConnectedPeers) != 0 || len(p.Members) != 0 {
		t.Errorf("intruder has peers %v, members %v; want none", p.ConnectedPeers, p.Members)
	}
	for name, n := range map[string]*testenv.Node{"A": a, "B": b} {
		p := n.P2P(t)
		if slices.Contains(p.ConnectedPeers, intruder.PeerID) || slices.Contains(p.Members, intruder.PeerID) {
			t.Errorf("node %s lists the intruder: peers %v, members %v", name, p.ConnectedPeers, p.Members)
		}
	}

	// No key at all: refused before anything starts.
	_, stderr, code := testenv.RunShoal(t, nil, "node", "--origin", "s3", "--data-dir", t.TempDir(),
		"--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0")
	if code != 2 || !strings.Contains(stderr, "swarm-key") {
		t.Errorf("node with P2P on and no swarm key: exit %d, stderr %s; want exit 2 naming --swarm-key", code, stderr)
	}
	// A key file that is not one.
	bad := t.TempDir() + "/bad.key"
	writeFile(t, bad, "not a key\n")
	_, stderr, code = testenv.RunShoal(t, nil, "node", "--origin", "s3", "--data-dir", t.TempDir(),
		"--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--swarm-key", bad)
	if code == 0 || !strings.Contains(stderr, "swarm key") {
		t.Errorf("node with a malformed swarm key: exit %d, stderr %s; want a swarm key error", code, stderr)
	}
}

// A restarted node (same data directory) serves its chunks to others.
func TestClusterRestartedNodeServesItsChunks(t *testing.T) {
	t.Parallel()
	const size = 3*mib + 77
	data := randomBytes(size, 105)
	s, nodes := startS3Cluster(t, "restart", 2, clusterOpts())
	s.PutObject(t, "restart", "obj.bin", data)
	a, b := nodes[0], nodes[1]
	peerID := a.PeerID
	mustGet(t, a.Client(t), "restart", "obj.bin", data)

	a.Restart(t)
	if a.PeerID != peerID {
		t.Fatalf("restarted node has peer ID %s, was %s", a.PeerID, peerID)
	}
	testenv.WaitMembers(t, a, b)
	s.ResetCounts()
	mustGet(t, b.Client(t), "restart", "obj.bin", data)
	cn := s.Counts()
	t.Logf("node B read after node A restarted: origin GETs %d, HEADs %d", cn.GetObject, cn.HeadObject)
	if cn.GetObject != 0 {
		t.Fatalf("node B sent %d GETs to the origin; the restarted node A holds the object", cn.GetObject)
	}
}

// `shoal id` prints the ID the node runs with; `shoal swarm-key` writes a
// loadable key.
func TestClusterIDAndSwarmKeyCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, stderr, code := testenv.RunShoal(t, nil, "id", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("shoal id: exit %d: %s", code, stderr)
	}
	id := strings.TrimSpace(out)
	again, _, _ := testenv.RunShoal(t, nil, "id", "--data-dir", dir)
	if strings.TrimSpace(again) != id {
		t.Fatalf("shoal id changed: %q then %q", id, again)
	}

	key1, _, code := testenv.RunShoal(t, nil, "swarm-key")
	if code != 0 {
		t.Fatalf("shoal swarm-key: exit %d", code)
	}
	key2, _, _ := testenv.RunShoal(t, nil, "swarm-key")
	k1, err := routing.ParseSwarmKey([]byte(key1))
	if err != nil {
		t.Fatalf("shoal swarm-key output does not load: %v\n%s", err, key1)
	}
	if k2, err := routing.ParseSwarmKey([]byte(key2)); err != nil || bytes.Equal(k1, k2) {
		t.Fatalf("two swarm keys: equal or bad (%v)", err)
	}
	keyFile := t.TempDir() + "/swarm.key"
	writeFile(t, keyFile, key1)

	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + t.TempDir(), DataDir: dir, SwarmKeyFile: keyFile})
	if n.PeerID != id {
		t.Fatalf("node logs peer ID %s, `shoal id` printed %s", n.PeerID, id)
	}
	if p := n.P2P(t); p.PeerID != id || len(p.Addrs) == 0 || !strings.HasSuffix(p.Addrs[0], "/p2p/"+id) {
		t.Fatalf("status P2P = %+v, want peer %s with /p2p/ addresses", p, id)
	}
}

// A peer that stops answering (frozen: its connections stay open, nothing
// flows, as behind a partition) costs readers a stall timeout, not the
// read: they get the right bytes from another peer or the origin.
// frozenReadBound is how long a 4-chunk read may take while a peer hangs:
// several stall timeouts (2 s each) and DHT lookups, well under the 60 s
// that would mean a whole-request timeout was waited out.
const frozenReadBound = 25 * time.Second

func TestClusterFrozenPeer(t *testing.T) {
	t.Parallel()
	const size = 4*mib + 99
	data := randomBytes(size, 107)
	s, nodes := startS3Cluster(t, "frozen", 3, clusterOpts())
	s.PutObject(t, "frozen", "obj.bin", data)
	a, b, c := nodes[0], nodes[1], nodes[2]
	mustGet(t, a.Client(t), "frozen", "obj.bin", data)

	a.Freeze()
	t.Cleanup(a.Thaw)
	start := time.Now()
	// A hung peer must be given up on after the transfer's stall timeout
	// (seconds), not after a whole-request timeout: the read gets a bound
	// far above the stall timeout but far below a total timeout.
	ctx, cancel := context.WithTimeout(ctxT(t), frozenReadBound)
	defer cancel()
	got, _, err := get(ctx, b.Client(t), "frozen", "obj.bin", "")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read on B with A frozen (bound %v): err %v, %s", frozenReadBound, err, firstDiff(got, data))
	}
	t.Logf("read on B with A (the only holder) frozen took %v; origin %+v", time.Since(start).Round(time.Millisecond), s.Counts())
	// C reads after B: B holds the object now.
	s.ResetCounts()
	mustGet(t, c.Client(t), "frozen", "obj.bin", data)
	t.Logf("read on C afterwards: origin %+v", s.Counts())
	a.Thaw()
	mustGet(t, a.Client(t), "frozen", "obj.bin", data)
}
