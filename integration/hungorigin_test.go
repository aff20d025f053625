package integration

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// An origin that accepts connections and never answers (issue: clients
// waited for minutes: a 30 s header timeout times 5 retries). A client
// gets an S3 503 with Retry-After after --origin-wait, /readyz reports the
// origin as degraded (the node stays ready: it serves what it holds), a
// cached object still reads, and once the origin answers again the same
// request succeeds.
func TestHungOriginAnswers503InBoundedTime(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3(t)
	s.CreateBucket(t, "hang")
	cached := randomBytes(2*mib, 301)
	cold := randomBytes(2*mib, 302)
	s.PutObject(t, "hang", "cached.bin", cached)
	s.PutObject(t, "hang", "cold.bin", cold)
	const wait = 2 * time.Second
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "s3", S3: s, ChunkSize: "1MiB",
		ExtraArgs: []string{"--origin-wait", wait.String(), "--s3-header-timeout", "2s", "--metadata-ttl", "10m"}})
	mustGet(t, n.Client(t), "hang", "cached.bin", cached)

	s.Hang()
	t.Cleanup(s.Unhang)
	client := &http.Client{Timeout: time.Minute}
	start := time.Now()
	resp, err := client.Get(n.Endpoint + "/hang/cold.bin")
	if err != nil {
		t.Fatalf("GET with the origin hung: %v (after %v)", err, time.Since(start))
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	t.Logf("GET with the origin hung: %d after %v, Retry-After %q", resp.StatusCode, took.Round(time.Millisecond), resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "<Code>ServiceUnavailable</Code>") {
		t.Fatalf("GET with the origin hung: %d %.300s, want a 503 ServiceUnavailable", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Errorf("Retry-After %q, want a positive number of seconds", resp.Header.Get("Retry-After"))
	}
	// The bound is --origin-wait (plus a HEAD's own wait): far from the
	// minutes of a header timeout times the retries.
	if took > 4*wait+5*time.Second {
		t.Errorf("the answer took %v with --origin-wait %v", took, wait)
	}

	// /readyz: still ready (200), the origin reported degraded.
	var ready string
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := http.Get("http://" + n.AdminAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		ready = string(b)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("/readyz %d with a hung origin: %s (a degraded origin leaves the node ready)", r.StatusCode, ready)
		}
		if strings.Contains(ready, "origin: degraded") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(ready, "origin: degraded") {
		t.Errorf("/readyz does not report the hung origin: %q", ready)
	}
	// What the node holds still reads.
	mustGet(t, n.Client(t), "hang", "cached.bin", cached)
	if v := metricSum(t, n, "shoal_node_origin_wait_exceeded_total"); v < 1 {
		t.Errorf("shoal_node_origin_wait_exceeded_total = %v after a client's wait ended", v)
	}

	// The origin answers again: the same request succeeds.
	s.Unhang()
	deadline = time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(n.Endpoint + "/hang/cold.bin")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if string(b) != string(cold) {
					t.Fatal("after the origin recovered: wrong bytes")
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the object never read after the origin recovered (last: %v)", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
