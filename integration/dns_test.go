package integration

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// dnsLeaveTimeout bounds how long the survivors take to drop a stopped
// node from their members: its connections close at once on loopback, and
// the members view is cached for a second; the rest is margin.
const dnsLeaveTimeout = 15 * time.Second

// The Kubernetes headless-service case, end to end: three nodes listen for
// P2P on the same port at three loopback addresses (as pods do at three pod
// IPs) and know each other only through one DNS name, served by a real DNS
// server whose answer changes as nodes come and go.
func TestDNSBootstrapHeadlessService(t *testing.T) {
	t.Parallel()
	const name = "shoal-headless.test"
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	port := testenv.FreePort(t, ips...)
	dns := testenv.StartDNS(t)
	answer := func(idx ...int) {
		var as []netip.Addr
		for _, i := range idx {
			as = append(as, netip.MustParseAddr(ips[i]))
		}
		dns.Set(name, as...)
	}

	s := testenv.StartS3(t)
	s.CreateBucket(t, "dns")
	opts := clusterOpts()
	opts.Origin, opts.S3 = "s3", s
	opts.SwarmKeyFile = testenv.NewSwarmKey(t)
	// The only way to find a peer: no static address, no mDNS.
	opts.Bootstrap = []string{fmt.Sprintf("/dns4/%s/tcp/%d", name, port)}
	opts.ExtraArgs = []string{"--bootstrap-dns-server", dns.Addr}
	start := func(i int) *testenv.Node {
		o := opts
		o.P2PListen = []string{"/ip4/" + ips[i] + "/tcp/" + strconv.Itoa(port)}
		return testenv.StartNode(t, o)
	}

	// Nodes 1 and 2 start before the name lists anyone (Kubernetes
	// publishes a pod's address once the pod is ready): each finds nobody
	// and keeps re-resolving; once the answer lists both, they meet.
	n1 := start(0)
	n2 := start(1)
	if m := n1.P2P(t).Members; len(m) != 0 {
		t.Fatalf("node 1 has members %v before DNS lists anyone", m)
	}
	answer(0, 1)
	listed := time.Now()
	testenv.WaitMembers(t, n1, n2)
	t.Logf("nodes 1 and 2 met %v after DNS listed them", time.Since(listed).Round(time.Millisecond))
	if q := dns.Queries(name); q == 0 {
		t.Fatalf("nodes are members of each other, but nobody asked the DNS server for %s", name)
	}
	const size = 3*mib + 5
	data := randomBytes(size, 201)
	s.PutObject(t, "dns", "obj.bin", data)
	mustGet(t, n1.Client(t), "dns", "obj.bin", data)

	// Node 3 starts; once up, its address joins the answer.
	n3 := start(2)
	answer(0, 1, 2)
	testenv.WaitMembers(t, n1, n2, n3)

	// Node 3 reads what node 1 read: from the cluster, not the origin.
	s.ResetCounts()
	mustGet(t, n3.Client(t), "dns", "obj.bin", data)
	cn := s.Counts()
	t.Logf("node 3 read after joining through DNS: origin GETs %d, HEADs %d", cn.GetObject, cn.HeadObject)
	if cn.GetObject != 0 {
		t.Fatalf("node 3 sent %d GETs to the origin for an object node 1 holds; want 0", cn.GetObject)
	}

	// Node 2's pod goes away: out of the answer, process stopped.
	answer(0, 2)
	if err := n2.Stop(); err != nil {
		t.Fatalf("stop node 2: %v", err)
	}
	waitExactMembers(t, n1, n3.PeerID)
	waitExactMembers(t, n3, n1.PeerID)

	// The two survivors keep working as a cluster: a new object read on
	// node 3 is served to node 1 without the origin.
	data2 := randomBytes(2*mib+7, 202)
	s.PutObject(t, "dns", "obj2.bin", data2)
	mustGet(t, n3.Client(t), "dns", "obj2.bin", data2)
	s.ResetCounts()
	mustGet(t, n1.Client(t), "dns", "obj2.bin", data2)
	mustGet(t, n1.Client(t), "dns", "obj.bin", data)
	if cn := s.Counts(); cn.GetObject != 0 {
		t.Fatalf("node 1 sent %d GETs to the origin after node 2 left, for objects the cluster holds; want 0", cn.GetObject)
	}
}

// waitExactMembers waits until n lists exactly want as members.
func waitExactMembers(t *testing.T, n *testenv.Node, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(dnsLeaveTimeout)
	for {
		got := n.P2P(t).Members
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s lists members %v, want exactly %v within %v", n.PeerID, got, want, dnsLeaveTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
