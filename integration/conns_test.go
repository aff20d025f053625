package integration

// Connections that never end (docs/SECURITY.md): a node under a low
// file-descriptor limit, flooded with connections that send nothing, and
// uploads that stall.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// waitFor bounds what a test waits for to happen; it checks that it does,
// not how fast.
const waitFor = 60 * time.Second

// nodeMetric reads one sample from the node's /metrics ("" labels: the
// sample without labels); -1 if absent.
func nodeMetric(t *testing.T, n *testenv.Node, name, labels string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + n.AdminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// healthz asks /healthz on a new connection, bounded in time.
func healthz(t *testing.T, n *testenv.Node) error {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + n.AdminAddr + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func eventuallyT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitFor)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileOrigin(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for p, b := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return "file://" + root
}

// With 256 file descriptors, 300 connections that send nothing once made
// the node unreachable, /healthz included. Now the gateway takes at most
// half the descriptors; /healthz answers while it is full; the gateway
// serves again once the connections close or idle out.
func TestGatewayFloodKeepsHealthzAndRecovers(t *testing.T) {
	t.Parallel()
	const fds, flood = 256, 300
	n := testenv.StartNode(t, testenv.NodeOptions{
		Origin:      fileOrigin(t, map[string][]byte{"data/k": []byte("value")}),
		NoFileLimit: fds,
		ExtraArgs:   []string{"--http-idle-timeout", "1s"},
	})
	const capLabels = `{listener="gateway"}`
	if got := nodeMetric(t, n, "shoal_http_connections_max", capLabels); got != fds/2 {
		t.Fatalf("gateway connection cap %v, want %d (half the descriptors)", got, fds/2)
	}

	// 1. Connections that send nothing, closed by the client.
	var idle []net.Conn
	for range flood {
		c, err := net.DialTimeout("tcp", n.GatewayAddr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		idle = append(idle, c)
	}
	eventuallyT(t, "the gateway is at its cap", func() bool {
		return nodeMetric(t, n, "shoal_http_connections", capLabels) == fds/2
	})
	for i := range 5 {
		if err := healthz(t, n); err != nil {
			t.Fatalf("/healthz %d while the gateway is full: %v", i, err)
		}
	}
	eventuallyT(t, "the limit is logged", func() bool {
		return strings.Contains(n.Log(), "connection limit reached") && strings.Contains(n.Log(), "listener=gateway")
	})
	for _, c := range idle {
		c.Close()
	}
	mustGet(t, n.Client(t), "data", "k", []byte("value"))

	// 2. Keep-alive connections that made one request and stay open: the
	// idle timeout frees their slots, so every one of them is served.
	var wg sync.WaitGroup
	errs := make(chan error, flood)
	for range flood {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", n.GatewayAddr, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(waitFor))
			fmt.Fprintf(c, "GET /data/k HTTP/1.1\r\nHost: %s\r\n\r\n", n.GatewayAddr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "value" {
				errs <- fmt.Errorf("%d %q", resp.StatusCode, b)
				return
			}
			// Keep the connection open: only the server's idle timeout ends it.
			_, err = c.Read(make([]byte, 1))
			if err != io.EOF {
				errs <- fmt.Errorf("idle connection: %v, want EOF", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a keep-alive client: %v", err)
	}
	if err := healthz(t, n); err != nil {
		t.Fatalf("/healthz after the flood: %v", err)
	}
}

// A PUT that announces 100 MB and sends 10 bytes is cut after
// --http-body-timeout; an upload that keeps moving is not, however long it
// takes.
func TestStalledUploadIsCut(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	n := testenv.StartNode(t, testenv.NodeOptions{
		Origin:    fileOrigin(t, map[string][]byte{"data/keep": []byte("x")}),
		ExtraArgs: []string{"--http-body-timeout", timeout.String()},
	})
	c, err := net.DialTimeout("tcp", n.GatewayAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /data/stalled HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000000\r\n\r\n0123456789", n.GatewayAddr)
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "RequestTimeout") {
		t.Fatalf("stalled upload: %d %s", resp.StatusCode, b)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after a stalled upload the connection stays open: %v", err)
	}
	if got := nodeMetric(t, n, "shoal_http_body_timeouts_total", `{direction="request",listener="gateway"}`); got != 1 {
		t.Errorf("body timeouts metric = %v", got)
	}
	_, _, err = get(ctxT(t), n.Client(t), "data", "stalled", "")
	wantStatus(t, "the stalled object", err, 404, "NoSuchKey")

	// 8 pieces, 300 ms apart: 2.4 s in all, never a second without a byte.
	want := bytes.Repeat([]byte("moving "), 8*1000)
	pr, pw := io.Pipe()
	go func() {
		for i := range 8 {
			time.Sleep(300 * time.Millisecond)
			if _, err := pw.Write(want[i*7000 : (i+1)*7000]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(ctxT(t), "PUT", n.Endpoint+"/data/moving", pr)
	req.ContentLength = int64(len(want))
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(put.Body)
	put.Body.Close()
	if put.StatusCode != 200 {
		t.Fatalf("moving upload: %d %s", put.StatusCode, pb)
	}
	mustGet(t, n.Client(t), "data", "moving", want)
}
