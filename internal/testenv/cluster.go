package testenv

// This file owns the multi-node harness: swarm keys, starting a cluster of
// shoal node processes bootstrapped to each other, and reading their P2P
// status.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/routing"
)

// clusterJoinTimeout bounds how long a cluster takes to see every member:
// a TCP connect, the membership handshake and identify per pair, well under
// a second on loopback; the rest is margin for a loaded CI box.
const clusterJoinTimeout = 30 * time.Second

// NewSwarmKey writes a fresh swarm key file into a temporary directory and
// returns its path.
func NewSwarmKey(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(p, routing.GenerateSwarmKey(), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// StartCluster starts n nodes with opts (each with its own data directory),
// P2P on with one swarm key (opts.SwarmKeyFile, or a new one), each
// bootstrapped to all nodes started before it, and waits until every node
// lists every other as a member.
func StartCluster(t testing.TB, n int, opts NodeOptions) []*Node {
	t.Helper()
	if opts.SwarmKeyFile == "" {
		opts.SwarmKeyFile = NewSwarmKey(t)
	}
	var nodes []*Node
	var known []string
	for range n {
		o := opts
		o.DataDir = ""
		o.Bootstrap = append(slices.Clone(opts.Bootstrap), known...)
		nd := StartNode(t, o)
		nodes = append(nodes, nd)
		known = append(known, nd.P2PAddrs...)
	}
	WaitMembers(t, nodes...)
	return nodes
}

// WaitMembers waits until each of nodes lists all the others as members.
func WaitMembers(t testing.TB, nodes ...*Node) {
	t.Helper()
	deadline := time.Now().Add(clusterJoinTimeout)
	for _, nd := range nodes {
		var want []string
		for _, o := range nodes {
			if o != nd {
				want = append(want, o.PeerID)
			}
		}
		for {
			members := nd.P2P(t).Members
			missing := false
			for _, w := range want {
				if !slices.Contains(members, w) {
					missing = true
				}
			}
			if !missing {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testenv: node %s sees members %v, want all of %v within %v", nd.PeerID, members, want, clusterJoinTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// P2PStatus is the "P2P" part of a node's /v1/status.
type P2PStatus struct {
	PeerID           string
	Addrs            []string
	ConnectedPeers   []string
	Members          []string
	RoutingTableSize int
}

// P2P returns the node's P2P status (zero when P2P is off).
func (n *Node) P2P(t testing.TB) P2PStatus {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr + "/v1/status")
	if err != nil {
		t.Fatalf("testenv: status: %v", err)
	}
	defer resp.Body.Close()
	var st struct{ P2P *P2PStatus }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: status: %s %v", resp.Status, err)
	}
	if st.P2P == nil {
		return P2PStatus{}
	}
	return *st.P2P
}
