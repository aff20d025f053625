package swarm

// This file owns the narrow origin paths of scenario L1: on the origin's
// side of its veth an htb root qdisc whose parent class is the origin's
// whole link (rate = ceil = B_origin) and which holds one class per node,
// matched by the packet's destination address (u32 `ip dst`), at
// rate = ceil = B_o. Each node then reads the origin at most at B_o, as a
// node behind an S3 per-connection cap, a NAT gateway or in another region
// would, while the fabric between nodes stays at B. The bridge side of the
// origin's veth (requests towards the origin) is shaped to B_origin by tbf.

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

const (
	// htbQuantum is the bytes a class may send per round when classes
	// share spare rate. Every node class has ceil = rate, so it borrows
	// nothing and the quantum only has to exceed an MTU; set explicitly,
	// since htb's default (rate/10) is too big above ~16 Mbit/s and tc
	// warns about it.
	htbQuantum = 60000
	// htbDefaultMinor is the class (hex minor, under 1:) of traffic no
	// filter matches (ARP replies, ...): it may use the whole link.
	htbDefaultMinor = 0xfff
	// htbLinkMinor is the parent class: the origin's whole link.
	htbLinkMinor = 1
)

// htbNodeClass is the classid of lab host i's path from the origin
// ("1:101" for host 1). Hosts go up to MaxHosts, so classes stay below
// htbDefaultMinor.
func htbNodeClass(i int) string {
	return fmt.Sprintf("1:%x", 0x100+i)
}

// htbClassArgs is the tc command that adds class classid under parent at
// rate = ceil = rateBits.
func htbClassArgs(ns, dev, parent, classid string, rateBits int64) []string {
	r := strconv.FormatInt(rateBits, 10) + "bit"
	b := strconv.FormatInt(TBFBurst(rateBits), 10)
	return []string{"tc", "-n", ns, "class", "add", "dev", dev, "parent", parent, "classid", classid,
		"htb", "rate", r, "ceil", r, "burst", b, "cburst", b, "quantum", strconv.Itoa(htbQuantum)}
}

// originPathArgs returns the tc commands that put, on dev in namespace ns,
// an htb root limiting the whole link to linkBits and traffic to each of
// dsts (lab host ids, addresses HostAddr(labID, i)) to pathBits. The root
// is added, not replaced: the caller deletes any root qdisc first, so a
// second call starts from no classes.
func originPathArgs(ns, dev string, labID int, dsts []int, linkBits, pathBits int64) [][]string {
	link := fmt.Sprintf("1:%x", htbLinkMinor)
	cmds := [][]string{
		{"tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb",
			"default", fmt.Sprintf("%x", htbDefaultMinor)},
		htbClassArgs(ns, dev, "1:", link, linkBits),
		htbClassArgs(ns, dev, link, fmt.Sprintf("1:%x", htbDefaultMinor), linkBits),
	}
	for _, i := range dsts {
		cls := htbNodeClass(i)
		cmds = append(cmds, htbClassArgs(ns, dev, link, cls, pathBits),
			[]string{"tc", "-n", ns, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1",
				"u32", "match", "ip", "dst", HostAddr(labID, i).String() + "/32", "flowid", cls})
	}
	return cmds
}

// OriginLinkBits is the rate L1 gives the origin's own link: room for
// every node's path at once (nodes x pathBits), so the origin's link is
// never the bottleneck, within what tc accepts.
func OriginLinkBits(nodes int, pathBits int64) int64 {
	return min(int64(nodes)*pathBits, 100e9)
}

// ShapeOriginPaths reshapes the link of the lab's host 0 (the origin): its
// egress becomes htb with one class per other host at pathBits under a
// parent at linkBits, and its ingress (the bridge side) a tbf at linkBits.
// It may be called again with other rates.
func (l *Lab) ShapeOriginPaths(ctx context.Context, linkBits, pathBits int64) error {
	if len(l.Hosts) < 2 {
		return fmt.Errorf("%w: origin paths need an origin and at least one node", ErrLab)
	}
	for _, r := range []int64{linkBits, pathBits} {
		if r < 1e6 || r > 100e9 {
			return fmt.Errorf("%w: rate %d bit/s outside 1mbit..100gbit", ErrLab, r)
		}
	}
	o := l.Hosts[0]
	// No root qdisc (a fresh veth) is not an error here.
	_ = runCmd(ctx, "tc", "-n", o.NS, "qdisc", "del", "dev", o.Dev, "root")
	dsts := make([]int, 0, len(l.Hosts)-1)
	for i := 1; i < len(l.Hosts); i++ {
		dsts = append(dsts, i)
	}
	cmds := append(originPathArgs(o.NS, o.Dev, l.ID, dsts, linkBits, pathBits), tbfArgs(l.BridgeNS, o.Peer, linkBits))
	for _, c := range cmds {
		if err := runCmd(ctx, c...); err != nil {
			return err
		}
	}
	l.log.Info("origin paths shaped", "origin_link_bits", linkBits, "path_bits", pathBits, "nodes", len(dsts))
	return nil
}

// parseClassBytes reads, from `tc -s class show` output, the bytes each
// htb class has sent, by classid.
func parseClassBytes(out string) map[string]int64 {
	m := map[string]int64{}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "class" && f[1] == "htb":
			cur = f[2]
		case len(f) >= 2 && f[0] == "Sent" && cur != "":
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				m[cur] = n
			}
			cur = ""
		}
	}
	return m
}

// OriginPathBytes returns the bytes the origin has sent so far down each
// node's path (index i-1 for lab host i), from the htb counters that
// ShapeOriginPaths set up; they count from that call.
func (l *Lab) OriginPathBytes(ctx context.Context) ([]int64, error) {
	o := l.Hosts[0]
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tc", "-n", o.NS, "-s", "class", "show", "dev", o.Dev).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: tc class show: %v: %s", ErrLab, err, strings.TrimSpace(string(out)))
	}
	m := parseClassBytes(string(out))
	b := make([]int64, len(l.Hosts)-1)
	for i := range b {
		b[i] = m[htbNodeClass(i+1)]
	}
	return b, nil
}
