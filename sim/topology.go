package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Fabric describes the network of a simulated cluster. Rates are in bytes
// per second.
type Fabric struct {
	// NIC is every node's link rate B, each way.
	NIC float64
	// OriginPath is every node's own path to the origin (a NAT gateway, a
	// per-node egress cap); 0: NIC.
	OriginPath float64
	// OriginLink is the origin's own link, shared by every origin read; 0:
	// unlimited (an S3 region).
	OriginLink float64
	// RackSize is the nodes per rack; 0: one switch, no rack links.
	RackSize int
	// Oversubscription of a rack's uplink: the uplink (and downlink) of a
	// rack carries RackSize*NIC/Oversubscription; 0 or 1: none.
	Oversubscription float64
}

// Validate reports a fabric that cannot be built.
func (f Fabric) Validate() error {
	var errs []error
	if !(f.NIC > 0) {
		errs = append(errs, fmt.Errorf("sim: NIC rate %v must be > 0", f.NIC))
	}
	if f.OriginPath < 0 || f.OriginLink < 0 || f.RackSize < 0 || f.Oversubscription < 0 {
		errs = append(errs, errors.New("sim: negative fabric setting"))
	}
	return errors.Join(errs...)
}

// topology is a fabric built for n nodes in a Network: which links a
// transfer between two nodes, or from the origin to a node, crosses.
type topology struct {
	net              *Network
	up, down, origin []Link // per node
	rackUp, rackDown []Link // per rack
	rackOf           []int
	originLink       Link
	hasOriginLink    bool
	racks            bool
}

func buildTopology(net *Network, f Fabric, n int) *topology {
	t := &topology{net: net, up: make([]Link, n), down: make([]Link, n), origin: make([]Link, n), rackOf: make([]int, n)}
	op := f.OriginPath
	if op == 0 {
		op = f.NIC
	}
	for i := range n {
		t.up[i] = net.AddLink(f.NIC)
		t.down[i] = net.AddLink(f.NIC)
		t.origin[i] = net.AddLink(op)
	}
	if f.OriginLink > 0 {
		t.originLink, t.hasOriginLink = net.AddLink(f.OriginLink), true
	}
	if f.RackSize > 0 && f.RackSize < n {
		t.racks = true
		over := max(1, f.Oversubscription)
		nr := (n + f.RackSize - 1) / f.RackSize
		for r := range nr {
			size := min(f.RackSize, n-r*f.RackSize)
			c := float64(size) * f.NIC / over
			t.rackUp = append(t.rackUp, net.AddLink(c))
			t.rackDown = append(t.rackDown, net.AddLink(c))
		}
		for i := range n {
			t.rackOf[i] = i / f.RackSize
		}
	}
	return t
}

// peerPath is the links from node a to node b.
func (t *topology) peerPath(a, b int) []Link {
	if t.racks && t.rackOf[a] != t.rackOf[b] {
		return []Link{t.up[a], t.rackUp[t.rackOf[a]], t.rackDown[t.rackOf[b]], t.down[b]}
	}
	return []Link{t.up[a], t.down[b]}
}

// originPath is the links from the origin to node a (the origin sits
// outside every rack).
func (t *topology) originPath(a int) []Link {
	p := make([]Link, 0, 4)
	if t.hasOriginLink {
		p = append(p, t.originLink)
	}
	p = append(p, t.origin[a])
	if t.racks {
		p = append(p, t.rackDown[t.rackOf[a]])
	}
	return append(p, t.down[a])
}

// peerIDs draws n libp2p identities (Ed25519, as routing makes them) from
// rng: the nodes of one seed.
func peerIDs(rng *rand.Rand, n int) ([]peer.ID, error) {
	out := make([]peer.ID, n)
	r := rngReader{rng}
	for i := range out {
		priv, _, err := crypto.GenerateEd25519Key(r)
		if err != nil {
			return nil, err
		}
		if out[i], err = peer.IDFromPrivateKey(priv); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}
