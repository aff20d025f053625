package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/origin"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "123": 123, "64MiB": 64 << 20, "64 MiB": 64 << 20, "4m": 4 << 20,
		"1GiB": 1 << 30, "1GB": 1e9, "10kb": 10e3, "2K": 2 << 10, "1TiB": 1 << 40,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12XB", "1.5GiB", "99999999999TiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseParamsDefaults(t *testing.T) {
	p, err := parseParams(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if p.ObjectSize != 64<<20 || p.ChunkSize != 4<<20 || p.BootstrapK != 0 || !p.Baseline ||
		p.Origin != originDir || p.Timeout != 10*time.Minute || p.Membership != "auth" {
		t.Errorf("defaults: %+v", p)
	}
}

func TestParseParamsValues(t *testing.T) {
	vals := map[string]string{"object_size": "32MiB", "chunk_size": "1MiB", "bootstrap_k": "3",
		"baseline": "false", "bandwidth": "100MB", "timeout": "90s", "objects": "5"}
	p, err := parseParams(func(n string) string { return vals[n] })
	if err != nil {
		t.Fatal(err)
	}
	if p.ObjectSize != 32<<20 || p.ChunkSize != 1<<20 || p.BootstrapK != 3 || p.Baseline ||
		p.Bandwidth != 100e6 || p.Timeout != 90*time.Second || p.Objects != 5 {
		t.Errorf("parsed: %+v", p)
	}
}

func TestParseParamsRejectsBadInput(t *testing.T) {
	vals := map[string]string{"object_size": "big", "bootstrap_k": "-1", "baseline": "maybe",
		"timeout": "soon", "chunk_size": "1KiB", "origin": "ftp"}
	_, err := parseParams(func(n string) string { return vals[n] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"object_size", "baseline", "timeout"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	// Range checks run on otherwise well-formed values.
	vals = map[string]string{"bootstrap_k": "-1", "chunk_size": "1KiB", "origin": "ftp"}
	_, err = parseParams(func(n string) string { return vals[n] })
	for _, want := range []string{"bootstrap_k", "chunk_size", "ftp"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	vals = map[string]string{"origin": "s3"}
	if _, err := parseParams(func(n string) string { return vals[n] }); err == nil || !strings.Contains(err.Error(), "s3_endpoint") {
		t.Errorf("s3 without endpoint: %v", err)
	}
}

func TestBootstrapTargets(t *testing.T) {
	for _, tc := range []struct {
		seq, n, k int
		want      []int
	}{
		{1, 4, 0, []int{2, 3, 4}},
		{3, 4, 0, []int{1, 2, 4}},
		{3, 5, 2, []int{1, 2}},
		{1, 5, 2, []int{2, 3}},
		{2, 5, 2, []int{1, 3}},
		{2, 3, 9, []int{1, 3}},
		{1, 1, 0, nil},
	} {
		if got := bootstrapTargets(tc.seq, tc.n, tc.k); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("bootstrapTargets(%d, %d, %d) = %v, want %v", tc.seq, tc.n, tc.k, got, tc.want)
		}
	}
}

func TestExpectedNeighboursIsSymmetric(t *testing.T) {
	for _, k := range []int{0, 1, 2, 3} {
		const n = 7
		for a := 1; a <= n; a++ {
			na := expectedNeighbours(a, n, k)
			if k == 0 && len(na) != n-1 {
				t.Errorf("k=0: instance %d has %d neighbours, want %d", a, len(na), n-1)
			}
			for _, b := range na {
				if !contains(expectedNeighbours(b, n, k), a) {
					t.Errorf("k=%d: %d lists %d but not the reverse", k, a, b)
				}
			}
		}
	}
	// With k=2 of 5, instance 5 dials 1 and 2, and nobody dials it.
	if got := expectedNeighbours(5, 5, 2); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("expectedNeighbours(5, 5, 2) = %v", got)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for p, want := range map[float64]float64{0: 1, 10: 1, 50: 5, 90: 9, 99: 10, 100: 10} {
		if got := percentile(xs, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its input")
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestAggregateSwarmRead(t *testing.T) {
	const size, chunk = 64 << 20, 4 << 20
	base := summary{TestCase: "swarm-read", Run: "r1", Instances: 3, ObjectSize: size, ChunkSize: chunk, Objects: 1,
		Bandwidth: 100 << 20, Shaped: true, ReadBytes: size, Verified: true}
	a, b, c := base, base, base
	a.Instance, a.ReadSeconds, a.OriginBytes, a.OriginGets = 1, 1, size/2, 8
	b.Instance, b.ReadSeconds, b.OriginBytes, b.OriginGets = 2, 2, size/2, 8
	c.Instance, c.ReadSeconds = 3, 4
	reps := aggregate([]summary{a, b, c})
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	r := reps[0]
	if r.Instances != 3 || !r.Verified || r.ReadMax != 4 || r.ReadMin != 1 || r.ReadMedian != 2 {
		t.Errorf("read figures: %+v", r)
	}
	if r.OriginBytesPerObject != 1 || r.OriginGetsPerChunk != 1 {
		t.Errorf("origin per object %v, per chunk %v; want 1 and 1", r.OriginBytesPerObject, r.OriginGetsPerChunk)
	}
	if r.PhysicalLimit != 0.64 || math.Abs(r.SlowestOverLimit-4/0.64) > 1e-9 {
		t.Errorf("limit %v, slowest/limit %v", r.PhysicalLimit, r.SlowestOverLimit)
	}
	if want := 3 * float64(size) / 4 / 1e6; math.Abs(r.AggregateMBps-want) > 1e-6 {
		t.Errorf("aggregate %v MB/s, want %v", r.AggregateMBps, want)
	}
	// One unverified instance fails the whole case.
	c.Verified = false
	if aggregate([]summary{a, b, c})[0].Verified {
		t.Error("an unverified instance did not fail the report")
	}
}

func TestAggregateProvideFind(t *testing.T) {
	s1 := summary{TestCase: "provide-find", Run: "r", Instance: 1, FindMillis: []float64{1, 2, 3}, FindableMillis: []float64{100}}
	s2 := summary{TestCase: "provide-find", Run: "r", Instance: 2, FindMillis: []float64{4, 50}, FindableMillis: []float64{300, 200}, FindFailures: 1}
	r := aggregate([]summary{s1, s2})[0]
	if r.Lookups != 5 || r.FindP50 != 3 || r.FindP99 != 50 || r.FindableP50 != 200 || r.FindableP99 != 300 || r.FindFailures != 1 {
		t.Errorf("report: %+v", r)
	}
}

func TestSummarizeReadsOutputsAndFailsOnErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(sub string, s summary) {
		d := filepath.Join(dir, "single", sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(s)
		if err := os.WriteFile(filepath.Join(d, summaryFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := summary{TestCase: "swarm-read", Run: "r", Instances: 2, ObjectSize: 1 << 20, ChunkSize: 1 << 20, Objects: 1,
		ReadBytes: 1 << 20, ReadSeconds: 0.5, Verified: true}
	s.Instance = 2
	write("1", s)
	s.Instance = 1
	write("0", s)
	var out bytes.Buffer
	if err := summarize(&out, dir); err != nil {
		t.Fatalf("summarize: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "== swarm-read") || !strings.Contains(out.String(), "all reads verified (sha256): true") {
		t.Errorf("output:\n%s", out.String())
	}
	s.Instance, s.Error, s.Verified = 3, "boom", false
	write("2", s)
	out.Reset()
	if err := summarize(&out, dir); err == nil || !strings.Contains(out.String(), "instance 3: boom") {
		t.Errorf("an instance error was not reported: %v\n%s", err, out.String())
	}
	if err := summarize(io.Discard, t.TempDir()); err == nil {
		t.Error("an empty directory summarized without error")
	}
}

func TestObjectReaderIsDeterministic(t *testing.T) {
	a, _ := io.ReadAll(objectReader(7, 1000))
	b, _ := io.ReadAll(objectReader(7, 1000))
	c, _ := io.ReadAll(objectReader(8, 1000))
	if len(a) != 1000 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("lengths %d; same seed equal %v; other seed equal %v", len(a), bytes.Equal(a, b), bytes.Equal(a, c))
	}
}

func TestSwarmKeyPerRun(t *testing.T) {
	a, b := swarmKeyFor("run-a"), swarmKeyFor("run-b")
	if len(a) != 32 || bytes.Equal(a, b) || !bytes.Equal(a, swarmKeyFor("run-a")) {
		t.Errorf("keys: %x %x", a, b)
	}
}

// TestCountingOriginOverDir seeds an object into a real directory origin
// and reads parts of it through the counting decorator.
func TestCountingOriginOverDir(t *testing.T) {
	ctx := context.Background()
	p := params{Origin: originDir, OriginDir: t.TempDir(), Bucket: "b"}
	org, closeOrg, err := openOrigin(ctx, p, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrg()
	sum, err := seedObject(ctx, org, "b", "k", 3, 10000)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(objectReader(3, 10000))
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
		t.Fatalf("seeded sha256 %s does not match the data", sum)
	}
	co := &countingOrigin{Origin: org}
	info, err := co.HeadObject(ctx, "b", "k")
	if err != nil || info.Size != 10000 {
		t.Fatalf("head: %+v %v", info, err)
	}
	before := co.counts()
	for _, off := range []int64{0, 4000} {
		rc, err := co.GetRange(ctx, "b", "k", info.ETag, off, 3000)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[off:off+3000]) {
			t.Fatalf("range at %d: %d bytes, %v", off, len(got), err)
		}
	}
	if d := co.counts().sub(before); d != (originCounts{Gets: 2, Bytes: 6000}) {
		t.Errorf("counted %+v, want 2 GETs and 6000 bytes", d)
	}
	if c := co.counts(); c.Heads != 1 {
		t.Errorf("heads %d, want 1", c.Heads)
	}
	if _, err := co.GetRange(ctx, "b", "missing", "", 0, 1); err == nil {
		t.Error("missing key read without error")
	}
	_ = origin.ErrNotFound
}
