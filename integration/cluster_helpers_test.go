package integration

import (
	"bufio"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// clusterOpts are the node options of the cluster tests: 1 MiB chunks, so
// objects of a few MiB span several chunks (and several home nodes).
func clusterOpts() testenv.NodeOptions {
	return testenv.NodeOptions{ChunkSize: "1MiB", MemCache: "64MiB", DiskCache: "64MiB"}
}

// startS3Cluster starts versitygw with one bucket and n nodes in front of it.
func startS3Cluster(t *testing.T, bucket string, n int, opts testenv.NodeOptions) (*testenv.S3, []*testenv.Node) {
	t.Helper()
	s := testenv.StartS3(t)
	s.CreateBucket(t, bucket)
	opts.Origin = "s3"
	opts.S3 = s
	return s, testenv.StartCluster(t, n, opts)
}

// metricSum adds up the samples of every metric on the node's admin
// /metrics whose name (without labels) is name.
func metricSum(t *testing.T, n *testenv.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		metric, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if base, _, _ := strings.Cut(metric, "{"); base != name {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
