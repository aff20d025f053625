package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadSettingsOriginPath(t *testing.T) {
	s, err := LoadSettings(envOf(nil), "/mod")
	if err != nil || s.OriginPathBits != 50e6 {
		t.Fatalf("default B_o: %d, %v; want B/4 = 50e6", s.OriginPathBits, err)
	}
	if slices.Contains(s.Scenarios, "L1") {
		t.Fatalf("L1 runs only when asked for: %v", s.Scenarios)
	}
	s, err = LoadSettings(envOf(map[string]string{"SHOAL_SWARM_SCENARIOS": "l1", "SHOAL_SWARM_RATE": "1gbit"}), "/mod")
	if err != nil || !slices.Equal(s.Scenarios, []string{"L1"}) || s.OriginPathBits != 250e6 {
		t.Fatalf("B=1gbit: %+v, %v; want L1 and B_o = 250e6", s, err)
	}
	for in, want := range map[string]int64{"20mbit": 20e6, "1.5gbit": 1.5e9, "30000000": 30e6} {
		s, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_ORIGIN_PATH_RATE": in}), "/mod")
		if err != nil || s.OriginPathBits != want {
			t.Errorf("SHOAL_SWARM_ORIGIN_PATH_RATE=%s: %d, %v; want %d", in, s.OriginPathBits, err, want)
		}
	}
	for _, in := range []string{"slow", "10kbit", "-1mbit"} {
		_, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_ORIGIN_PATH_RATE": in}), "/mod")
		if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "SHOAL_SWARM_ORIGIN_PATH_RATE") {
			t.Errorf("SHOAL_SWARM_ORIGIN_PATH_RATE=%s: err %v, want ErrSettings naming the variable", in, err)
		}
	}
	// B/4 below what tc accepts is refused only when L1 runs.
	if _, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_RATE": "2mbit"}), "/mod"); err != nil {
		t.Errorf("S3/S4 at 2mbit: %v", err)
	}
	_, err = LoadSettings(envOf(map[string]string{"SHOAL_SWARM_RATE": "2mbit", "SHOAL_SWARM_SCENARIOS": "L1"}), "/mod")
	if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "SHOAL_SWARM_ORIGIN_PATH_RATE") {
		t.Errorf("L1 at 2mbit without a path rate: %v, want an error pointing at SHOAL_SWARM_ORIGIN_PATH_RATE", err)
	}
	if _, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_RATE": "2mbit", "SHOAL_SWARM_SCENARIOS": "L1",
		"SHOAL_SWARM_ORIGIN_PATH_RATE": "1mbit"}), "/mod"); err != nil {
		t.Errorf("L1 at 2mbit with a 1mbit path: %v", err)
	}
}

func TestOriginPathArgs(t *testing.T) {
	got := originPathArgs("shs3-0", "eth0", 3, []int{1, 2}, 400e6, 50e6)
	want := [][]string{
		{"tc", "-n", "shs3-0", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "fff"},
		{"tc", "-n", "shs3-0", "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:1",
			"htb", "rate", "400000000bit", "ceil", "400000000bit", "burst", "200000", "cburst", "200000", "quantum", "60000"},
		{"tc", "-n", "shs3-0", "class", "add", "dev", "eth0", "parent", "1:1", "classid", "1:fff",
			"htb", "rate", "400000000bit", "ceil", "400000000bit", "burst", "200000", "cburst", "200000", "quantum", "60000"},
		{"tc", "-n", "shs3-0", "class", "add", "dev", "eth0", "parent", "1:1", "classid", "1:101",
			"htb", "rate", "50000000bit", "ceil", "50000000bit", "burst", "32768", "cburst", "32768", "quantum", "60000"},
		{"tc", "-n", "shs3-0", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1",
			"u32", "match", "ip", "dst", "10.77.3.2/32", "flowid", "1:101"},
		{"tc", "-n", "shs3-0", "class", "add", "dev", "eth0", "parent", "1:1", "classid", "1:102",
			"htb", "rate", "50000000bit", "ceil", "50000000bit", "burst", "32768", "cburst", "32768", "quantum", "60000"},
		{"tc", "-n", "shs3-0", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1",
			"u32", "match", "ip", "dst", "10.77.3.3/32", "flowid", "1:102"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d commands, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("command %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
	// Node classes never collide with the link or default class.
	if c := htbNodeClass(MaxHosts - 1); c != "1:1fc" {
		t.Errorf("last host's class: %s", c)
	}
}

func TestL1Plan(t *testing.T) {
	if got := OriginLinkBits(8, 50e6); got != 400e6 {
		t.Errorf("origin link for 8 x 50mbit: %d", got)
	}
	if got := OriginLinkBits(250, 1e9); got != 100e9 {
		t.Errorf("origin link is capped at tc's 100gbit: %d", got)
	}
	if p := l1Passes(Settings{RateBits: 200e6, OriginPathBits: 50e6}); !slices.Equal(p, []int64{50e6, 200e6}) {
		t.Errorf("passes: %v, want the narrow path then B_o = B", p)
	}
	if p := l1Passes(Settings{RateBits: 200e6, OriginPathBits: 200e6}); !slices.Equal(p, []int64{200e6}) {
		t.Errorf("passes at B_o = B: %v", p)
	}
	// 256 MiB at 200 Mbit/s: 10.74 s through the reader's own link when
	// 8 paths of 50 Mbit/s give more; 2 paths of 50 give only 100 Mbit/s.
	if got := l1Ideal(256<<20, 8, 200e6, 50e6); got < 10.73 || got > 10.74 {
		t.Errorf("ideal, 8 x 50mbit: %v", got)
	}
	if got := l1Ideal(256<<20, 2, 200e6, 50e6); got < 21.47 || got > 21.48 {
		t.Errorf("ideal, 2 x 50mbit: %v", got)
	}
}

func TestPathDelta(t *testing.T) {
	d, used := pathDelta([]int64{10, 0, 5}, []int64{10 + 8<<20, 4 << 20, 5 + 100}, 4<<20)
	if !slices.Equal(d, []int64{8 << 20, 4 << 20, 100}) || used != 2 {
		t.Fatalf("delta %v, used %d; want 2 paths with a chunk or more", d, used)
	}
	if d, used := pathDelta([]int64{1}, []int64{1, 2}, 1); d != nil || used != 0 {
		t.Fatalf("mismatched samples: %v %d", d, used)
	}
}

func TestReportL1(t *testing.T) {
	r := NewReport("cmd")
	r.L1 = &L1Result{Nodes: 8, Size: 256 << 20, RateBits: 200e6, P2P: true, LimitSec: 10.7, Passes: []L1Pass{
		{PathBits: 50e6, OriginLinkBits: 400e6, PathLimitSec: 43, IdealSec: 10.7, PathMBps: 5.9,
			Cluster: NewStat([]float64{14, 15, 16}), Standalone: NewStat([]float64{44, 45, 46}), Direct: NewStat([]float64{44}),
			Speedup: NewStat([]float64{3, 3.1, 2.9}), OriginX: NewStat([]float64{1}), ReqPerChnk: NewStat([]float64{1}),
			PathsUsed: NewStat([]float64{8, 7, 8}), ReaderShare: NewStat([]float64{0.125})},
		{PathBits: 200e6, OriginLinkBits: 1600e6, PathLimitSec: 10.7, IdealSec: 10.7, PathMBps: 23.5,
			Cluster: NewStat([]float64{12}), Standalone: NewStat([]float64{11}), Speedup: NewStat([]float64{0.92}),
			OriginX: NewStat([]float64{1}), ReqPerChnk: NewStat([]float64{1})},
	}}
	tab := r.Table()
	for _, want := range []string{
		"L1 N=8 S=256MiB B=200mbit B_o=50mbit p2p=true", "L1 N=8 S=256MiB B=200mbit B_o=200mbit p2p=true",
		"speedup standalone / cluster", "3 x [2.9..3.1]", "> 1 (ideal 4.02)", "~1 (no gain, no loss", "origin path check",
		"origin paths used (of 8)", "8  [7..8]",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	p := filepath.Join(t.TempDir(), "swarm.json")
	if err := r.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	var back Report
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &back); err != nil || back.L1 == nil || len(back.L1.Passes) != 2 ||
		back.L1.Passes[0].Speedup.Median != 3 || back.L1.Passes[1].PathBits != 200e6 {
		t.Fatalf("round trip: %v %+v", err, back.L1)
	}
}

func TestParseClassBytes(t *testing.T) {
	out := `class htb 1:101 parent 1:1 prio 0 rate 50Mbit ceil 50Mbit burst 32Kb cburst 32Kb 
 Sent 2217642 bytes 1460 pkt (dropped 0, overlimits 12 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 1460 borrowed: 0 giants: 0
 tokens: 81000 ctokens: 81000

class htb 1:1 root rate 100Mbit ceil 100Mbit burst 50000b cburst 50000b 
 Sent 2217990 bytes 1466 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0

class htb 1:102 parent 1:1 prio 0 rate 50Mbit ceil 50Mbit burst 32Kb cburst 32Kb 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
`
	got := parseClassBytes(out)
	want := map[string]int64{"1:101": 2217642, "1:1": 2217990, "1:102": 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d, want %d", k, got[k], v)
		}
	}
	if got := parseClassBytes("garbage\n Sent x bytes"); len(got) != 0 {
		t.Errorf("garbage: %v", got)
	}
}

// TestShapeOriginPaths builds a small lab, shapes the origin's paths and
// checks (by tc's own counters, not by timing) that traffic to one node
// goes through that node's class and no other.
func TestShapeOriginPaths(t *testing.T) {
	needLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := NewLab(ctx, LabConfig{Hosts: 3, RateBits: 200e6}, nil)
	if err != nil {
		t.Skipf("cannot build a lab here: %v", err)
	}
	t.Cleanup(func() { lab.Close() })
	// Twice: the second call must replace the first shaping, not fail.
	for _, path := range []int64{100e6, 50e6} {
		if err := lab.ShapeOriginPaths(ctx, OriginLinkBits(2, path), path); err != nil {
			t.Fatal(err)
		}
	}
	o := lab.Hosts[0]
	out, err := exec.Command("tc", "-n", o.NS, "class", "show", "dev", o.Dev).CombinedOutput()
	if err != nil {
		t.Fatal(err, string(out))
	}
	if n := strings.Count(string(out), "rate 50Mbit ceil 50Mbit"); n != 2 {
		t.Errorf("want 2 node classes at 50Mbit, got %d:\n%s", n, out)
	}
	// The link and default classes at 100Mbit, nothing left from the
	// first call.
	if n, all := strings.Count(string(out), "rate 100Mbit ceil 100Mbit"), strings.Count(string(out), "class htb"); n != 2 || all != 4 {
		t.Errorf("want 4 classes, 2 of them (link, default) at 100Mbit; got %d, %d:\n%s", all, n, out)
	}
	peer, err := exec.Command("tc", "-n", lab.BridgeNS, "qdisc", "show", "dev", o.Peer).CombinedOutput()
	if err != nil || !strings.Contains(string(peer), "tbf") || !strings.Contains(string(peer), "rate 100Mbit") {
		t.Errorf("origin's bridge side: want a 100Mbit tbf, got %v %s", err, peer)
	}

	// Send 2 MiB from the origin to host 1.
	const size = 2 << 20
	sendAcross(t, ctx, o, lab.Hosts[1], size)
	b, err := lab.OriginPathBytes(ctx)
	if err != nil || len(b) != 2 {
		t.Fatalf("path bytes: %v, %v", b, err)
	}
	if b[0] < size {
		t.Errorf("host 1's path carried %d bytes, want at least %d: %v", b[0], size, b)
	}
	if b[1] > 64<<10 {
		t.Errorf("host 2's path carried %d bytes of traffic meant for host 1: %v", b[1], b)
	}
}
