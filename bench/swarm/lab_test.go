package swarm

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// needLab skips unless this process may create network namespaces.
func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (iproute2)", tool)
		}
	}
}

func nsExists(t *testing.T, name string) bool {
	t.Helper()
	names, err := listNetns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(names, name)
}

func TestLab(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := NewLab(ctx, LabConfig{Hosts: 2, RateBits: 50e6}, nil)
	if err != nil {
		t.Skipf("cannot build a lab here: %v", err)
	}
	t.Cleanup(func() { lab.Close() })

	// Both ends of every link are shaped.
	for _, h := range lab.Hosts {
		for _, q := range [][2]string{{h.NS, h.Dev}, {lab.BridgeNS, h.Peer}} {
			out, err := exec.Command("tc", "-n", q[0], "qdisc", "show", "dev", q[1]).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "rate 50Mbit") {
				t.Errorf("%s %s: want a 50Mbit tbf, got %v %s", q[0], q[1], err, out)
			}
		}
	}
	// Host 0 reaches host 1 over the bridge, and bytes arrive intact.
	sendAcross(t, ctx, lab.Hosts[0], lab.Hosts[1], 1<<20)
	// The lab's addresses exist only inside it: no interface of this
	// namespace carries one (checked passively: nothing is sent outside
	// the lab).
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), fmt.Sprintf("10.77.%d.", lab.ID)) {
			t.Errorf("lab address %s is on an interface outside the lab", a)
		}
	}
	// The swarm name resolves inside the namespaces to the nodes.
	hosts, err := os.ReadFile(filepath.Join("/etc/netns", lab.Hosts[0].NS, "hosts"))
	if err != nil || !strings.Contains(string(hosts), HostAddr(lab.ID, 1).String()+" "+SwarmName) {
		t.Errorf("hosts file: %v %q", err, hosts)
	}

	names := []string{lab.BridgeNS, lab.Hosts[0].NS, lab.Hosts[1].NS}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if nsExists(t, n) {
			t.Errorf("namespace %s left after Close", n)
		}
		if _, err := os.Stat(filepath.Join("/etc/netns", n)); err == nil {
			t.Errorf("/etc/netns/%s left after Close", n)
		}
	}
}

func TestCleanupStale(t *testing.T) {
	needLab(t)
	id, lock, err := claimID()
	if err != nil {
		t.Skip(err)
	}
	// A crashed run: its namespace is there, its lock is not held.
	lock.Close()
	name := fmt.Sprintf("%s%d-stale", nsPrefix, id)
	if err := runCmd(context.Background(), "ip", "netns", "add", name); err != nil {
		t.Skipf("cannot create a namespace here: %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	// A live lab is left alone.
	live, err := NewLab(context.Background(), LabConfig{Hosts: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if nsExists(t, name) {
		t.Fatalf("NewLab did not remove the stale namespace %s", name)
	}
	if err := CleanupStale(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if !nsExists(t, live.Hosts[0].NS) {
		t.Fatal("CleanupStale removed a live lab")
	}
}

// sendAcross sends size bytes over TCP from one lab host to another and
// fails the test unless all of them arrive.
func sendAcross(t *testing.T, ctx context.Context, from, to *Host, size int) {
	t.Helper()
	ln, err := to.Listen("tcp", net.JoinHostPort(to.Addr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := from.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial across the lab: %v", err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-got; n != int64(size) {
		t.Fatalf("%s received %d bytes, want %d", to.NS, n, size)
	}
}
