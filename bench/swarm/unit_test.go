package swarm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTBF(t *testing.T) {
	// 200 Mbit/s = 25 MB/s; 4 ms of it is 100 kB.
	if got := TBFBurst(200e6); got != 100_000 {
		t.Fatalf("burst at 200mbit: %d", got)
	}
	if got := TBFBurst(2e6); got != minBurst {
		t.Fatalf("burst at 2mbit: %d, want the floor %d", got, minBurst)
	}
	got := tbfArgs("shs1-2", "eth0", 200e6)
	want := []string{"tc", "-n", "shs1-2", "qdisc", "replace", "dev", "eth0", "root", "tbf",
		"rate", "200000000bit", "burst", "100000", "latency", tbfLatency}
	if !slices.Equal(got, want) {
		t.Fatalf("tbf args:\n got %v\nwant %v", got, want)
	}
}

func TestLabConfigValidate(t *testing.T) {
	for _, c := range []LabConfig{{Hosts: 0}, {Hosts: MaxHosts + 1}, {Hosts: 2, RateBits: -1}, {Hosts: 2, RateBits: 1000}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	if err := (LabConfig{Hosts: 33, RateBits: 200e6}).Validate(); err != nil {
		t.Fatal(err)
	}
	if a := HostAddr(7, 0).String(); a != "10.77.7.1" {
		t.Fatalf("host 0 of lab 7: %s", a)
	}
}

func TestWriteObject(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	s1, err := WriteObject(p1, 3<<20+17, 9)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := WriteObject(p2, 3<<20+17, 9)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p1)
	sum := sha256.Sum256(data)
	if len(data) != 3<<20+17 || hex.EncodeToString(sum[:]) != s1 || s1 != s2 {
		t.Fatalf("size %d, sum %s vs %s vs %s", len(data), hex.EncodeToString(sum[:]), s1, s2)
	}
	if s3, _ := WriteObject(p2, 3<<20+17, 10); s3 == s1 {
		t.Fatal("another seed gave the same bytes")
	}
}

func TestReaderMain(t *testing.T) {
	body := bytes.Repeat([]byte("shoal"), 200_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	run := func(spec string) ReadResult {
		t.Helper()
		var out bytes.Buffer
		if code := ReaderMain(spec, &out); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var r ReadResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("output %q: %v", out.String(), err)
		}
		return r
	}
	spec, _ := json.Marshal(ReadSpec{URL: srv.URL + "/ok", StartAt: time.Now().Add(50 * time.Millisecond).UnixNano(), Timeout: time.Minute})
	r := run(string(spec))
	sum := sha256.Sum256(body)
	if r.Err != "" || r.Status != 200 || r.Bytes != int64(len(body)) || r.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("good read: %+v", r)
	}
	if check(r, int64(len(body)), hex.EncodeToString(sum[:])) != "" {
		t.Fatal("check rejected a good read")
	}
	if r.FirstByte < r.Start || r.End < r.FirstByte || r.Seconds() <= 0 {
		t.Fatalf("times out of order: %+v", r)
	}
	if check(r, int64(len(body)), strings.Repeat("0", 64)) == "" {
		t.Fatal("check accepted wrong bytes")
	}
	if check(r, int64(len(body))+1, r.SHA256) == "" {
		t.Fatal("check accepted a short read")
	}

	spec, _ = json.Marshal(ReadSpec{URL: srv.URL + "/missing"})
	if r := run(string(spec)); r.Status != 404 || r.Err == "" {
		t.Fatalf("404: %+v", r)
	}
	if r := run("{not json"); !strings.Contains(r.Err, ReaderEnv) {
		t.Fatalf("bad spec: %+v", r)
	}
	if r := run(`{}`); r.Err == "" {
		t.Fatalf("empty spec: %+v", r)
	}
	if r := Read(context.Background(), ReadSpec{URL: "http://127.0.0.1:1/x", Timeout: 5 * time.Second}); r.Err == "" {
		t.Fatalf("refused: %+v", r)
	}
}

func TestFindList(t *testing.T) {
	var m map[string]any
	_ = json.Unmarshal([]byte(`{"Node":{"x":1},"P2P":{"PeerID":"a","ConnectedPeers":["b","c"]}}`), &m)
	if n := findList(m, "ConnectedPeers"); n != 2 {
		t.Fatalf("got %d", n)
	}
	m = nil
	_ = json.Unmarshal([]byte(`{"P2P":{"ConnectedPeers":null}}`), &m)
	if n := findList(m, "ConnectedPeers"); n != 0 {
		t.Fatalf("null list: %d", n)
	}
	m = nil
	_ = json.Unmarshal([]byte(`{"Node":{}}`), &m)
	if n := findList(m, "ConnectedPeers"); n != -1 {
		t.Fatalf("no list: %d", n)
	}
}

func TestOriginClassify(t *testing.T) {
	o := &Origin{ranges: map[string]int{}}
	reqs := []struct{ method, target, rng string }{
		{"GET", "/b/k", "bytes=0-99"},
		{"GET", "/b/k", "bytes=0-99"},
		{"GET", "/b/k", "bytes=100-199"},
		{"GET", "/b/dir/k", ""},
		{"HEAD", "/b/k", ""},
		{"GET", "/b?list-type=2", ""},
		{"GET", "/b/k?tagging", ""},
		{"PUT", "/b/k", ""},
	}
	for _, r := range reqs {
		req := httptest.NewRequest(r.method, r.target, nil)
		if r.rng != "" {
			req.Header.Set("Range", r.rng)
		}
		o.classify(req)
	}
	c := o.Counts()
	want := OriginCounts{GetObject: 4, RangedGet: 3, HeadObject: 1, Other: 3, DistinctRanges: 3, MaxPerRange: 2}
	if c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
	o.Reset()
	if c := o.Counts(); c != (OriginCounts{}) {
		t.Fatalf("after reset: %+v", c)
	}
}

func TestReportTableAndJSON(t *testing.T) {
	r := NewReport("cmd")
	r.S4 = &S4Result{Nodes: 8, Size: 256 << 20, RateBits: 200e6, P2P: true, LimitSec: 10.7,
		Slowest: NewStat([]float64{12, 13, 14}), SlowestX: NewStat([]float64{1.12, 1.2, 1.3}),
		OriginX: NewStat([]float64{1, 1, 1}), ReqPerChnk: NewStat([]float64{1, 1, 1}), Direct: NewStat([]float64{86, 87, 88})}
	r.S3 = &S3Result{Size: 1 << 30, Shoal: NewStat([]float64{500}), TCP: NewStat([]float64{2000}), OfTCP: 0.25, KuboNote: "none"}
	tab := r.Table()
	for _, want := range []string{"S4 N=8 S=256MiB B=200mbit p2p=true", "slowest / (S/B)", "1.2 x [1.12..1.3]", "S3 S=1GiB", "shoal / iperf3"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	p := filepath.Join(t.TempDir(), "sub", "swarm.json")
	if err := r.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	var back Report
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &back); err != nil || back.S4.Slowest.Median != 13 || back.S3.OfTCP != 0.25 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestClusterCPU(t *testing.T) {
	// Three nodes, each reader got 512 MiB: 1 s, 2 s and 0.5 s of CPU.
	per, mean, busiest := clusterCPU([]time.Duration{time.Second, 2 * time.Second, 500 * time.Millisecond}, 512<<20)
	if want := []float64{2, 4, 1}; !slices.Equal(per, want) {
		t.Errorf("per node = %v CPU-s/GiB, want %v", per, want)
	}
	// 3.5 CPU-s over 1.5 GiB delivered.
	if math.Abs(mean-3.5/1.5) > 1e-9 || busiest != 4 {
		t.Errorf("mean %v (want %v), busiest %v (want 4)", mean, 3.5/1.5, busiest)
	}
	if per, mean, busiest := clusterCPU(nil, 1<<30); per != nil || mean != 0 || busiest != 0 {
		t.Errorf("no nodes: %v %v %v", per, mean, busiest)
	}
}

func TestReportCostRows(t *testing.T) {
	r := NewReport("cmd")
	r.S3 = &S3Result{Size: 1 << 30, Shoal: NewStat([]float64{300}), TCP: NewStat([]float64{2500}), KuboNote: "none",
		ShoalCPU: CPUCost{Sender: NewStat([]float64{0.4, 0.45, 0.5}), Receiver: NewStat([]float64{3, 4, 5})},
		TCPCPU:   CPUCost{Sender: NewStat([]float64{0.2}), Receiver: NewStat([]float64{0.35})},
		KuboCPU:  &CPUCost{Sender: NewStat([]float64{6}), Receiver: NewStat([]float64{9})}}
	r.S4 = &S4Result{Nodes: 8, Size: 256 << 20, RateBits: 200e6,
		NodeCPUMean: NewStat([]float64{1.5, 1.9, 2.5}), NodeCPUMax: NewStat([]float64{3, 3.2, 4}),
		LinkCPU: CPUCost{Sender: NewStat([]float64{0.3}), Receiver: NewStat([]float64{0.45})}}
	lines := strings.Split(r.Table(), "\n")
	row := func(figure string) string {
		for _, l := range lines {
			if strings.Contains(l, figure) {
				return l
			}
		}
		t.Fatalf("no row %q in:\n%s", figure, r.Table())
		return ""
	}
	// The sender meets <= 0.5 (median 0.45), the receiver misses <= 1.5.
	for figure, want := range map[string][]string{
		"CPU: A sends":                           {"0.45 CPU-s/GiB [0.4..0.5]", "iperf3 0.2 CPU-s/GiB", "kubo 6 CPU-s/GiB", "<= 0.5", "yes"},
		"CPU: B receives+verifies+stores+serves": {"4 CPU-s/GiB [3..5]", "iperf3 0.35", "kubo 9", "<= 1.5", "NO"},
		"CPU per node (all roles), mean":         {"1.9 CPU-s/GiB [1.5..2.5]", "send 0.3 + receive 0.45", "<= 1.5 + 0.5", "yes"},
		"CPU of the busiest node":                {"3.2 CPU-s/GiB [3..4]"},
	} {
		l := row(figure)
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("row %q lacks %q", l, w)
			}
		}
	}
	p := filepath.Join(t.TempDir(), "swarm.json")
	if err := r.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	var back struct{ S3, S4 map[string]any }
	data, _ := os.ReadFile(p)
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"shoal_cpu", "iperf3_cpu", "kubo_cpu"} {
		if _, ok := back.S3[k].(map[string]any)["receiver_cpu_s_per_gib"]; !ok {
			t.Errorf("s3.%s lacks receiver_cpu_s_per_gib: %s", k, data)
		}
	}
	if m := back.S4["node_cpu_s_per_gib_mean"].(map[string]any); m["median"] != 1.9 {
		t.Errorf("s4 node_cpu_s_per_gib_mean = %v", m)
	}
}

func TestParseCPU(t *testing.T) {
	s0 := parseCPU("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")
	s1 := parseCPU("cpu  200 0 200 800 100 0 0 0 0 0\n")
	if s0.total != 1000 || s0.busy != 200 {
		t.Fatalf("s0 = %+v", s0)
	}
	if got := s1.busySince(s0); got < 0.66 || got > 0.67 {
		t.Errorf("busy = %v, want 2/3", got)
	}
	if got := parseCPU("garbage"); got != (cpuSample{}) {
		t.Errorf("garbage parsed as %+v", got)
	}
	if got := s0.busySince(cpuSample{}); got != 0 {
		t.Errorf("busy since zero sample = %v", got)
	}
}
