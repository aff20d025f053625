package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type fakeNode struct {
	mu    sync.Mutex
	calls []string
	// storeDown adds a failing critical check.
	storeDown atomic.Bool
}

func (f *fakeNode) record(op, bucket, prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+bucket+"/"+prefix)
}

func (f *fakeNode) Checks(context.Context) []Check {
	cs := []Check{{Name: "origin", OK: false, Detail: "3 calls failed"}}
	if f.storeDown.Load() {
		cs = append(cs, Check{Name: "store", Detail: "closed", Critical: true})
	}
	return cs
}

func (f *fakeNode) Status(context.Context) (any, error) {
	return map[string]int{"objects": 3}, nil
}

func (f *fakeNode) Pin(_ context.Context, b, p string) (any, error) {
	f.record("pin", b, p)
	if b == "broken" {
		return nil, errors.New("origin unavailable")
	}
	if b == "bad-request" {
		return nil, fmt.Errorf("%w: nope", ErrBadRequest)
	}
	return map[string]any{"objects": 2, "bytes": 10}, nil
}

func (f *fakeNode) Unpin(_ context.Context, b, p string) (any, error) {
	f.record("unpin", b, p)
	return map[string]any{}, nil
}

func (f *fakeNode) Prefetch(_ context.Context, b, p string) (any, error) {
	f.record("prefetch", b, p)
	return map[string]any{"objects": 1}, nil
}

func start(t *testing.T) (*Server, *fakeNode, *Client, string) {
	t.Helper()
	fn := &fakeNode{}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	s, err := New(Config{}, fn, WithGatherer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	cl, err := NewClient(ts.URL, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	return s, fn, cl, ts.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = fmt.Fprint(&sb, readAll(t, resp))
	return resp.StatusCode, sb.String()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	s, fake, _, base := start(t)
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before ready = %d", code)
	}
	s.SetReady(true)
	// A degraded origin is reported, but the node stays ready (it serves
	// what it holds).
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "origin: degraded: 3 calls failed") {
		t.Fatalf("readyz = %d %q", code, body)
	}
	fake.storeDown.Store(true)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store: degraded: closed") {
		t.Fatalf("readyz with a critical check failing = %d %q", code, body)
	}
	fake.storeDown.Store(false)
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "shoal_test_total 1") {
		t.Fatalf("metrics = %d %q", code, body)
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("unknown path = %d", code)
	}
}

func TestClientOps(t *testing.T) {
	_, fn, cl, _ := start(t)
	ctx := context.Background()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]int
	if err := json.Unmarshal(st, &m); err != nil || m["objects"] != 3 {
		t.Fatalf("status = %s, %v", st, err)
	}
	if _, err := cl.Pin(ctx, "data", "logs/2024/"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Prefetch(ctx, "data", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Unpin(ctx, "data", "logs/2024/"); err != nil {
		t.Fatal(err)
	}
	want := "pin data/logs/2024/,prefetch data/,unpin data/logs/2024/"
	if got := strings.Join(fn.calls, ","); got != want {
		t.Fatalf("calls = %q, want %q", got, want)
	}
	_, err = cl.Pin(ctx, "broken", "x")
	if err == nil || !strings.Contains(err.Error(), "origin unavailable") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("backend error = %v", err)
	}
	_, err = cl.Pin(ctx, "bad-request", "x")
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad request = %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	_, fn, _, base := start(t)
	for _, body := range []string{"", "{", `{"bucket":"A"}`, `{"bucket":"ok-bucket","extra":1}`, `{"bucket":"b"}`, strings.Repeat("x", 1<<20)} {
		resp, err := http.Post(base+"/v1/pin", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("body %.20q: status %d, want 400", body, resp.StatusCode)
		}
	}
	resp, err := http.Get(base + "/v1/pin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/pin = %d", resp.StatusCode)
	}
	if len(fn.calls) != 0 {
		t.Fatalf("backend called on bad input: %v", fn.calls)
	}
}

func TestParseS3URL(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/a/b/": "bucket|a/b/",
		"s3://bucket":      "bucket|",
		"s3://bucket/":     "bucket|",
	} {
		b, p, err := ParseS3URL(in)
		if err != nil || b+"|"+p != want {
			t.Errorf("ParseS3URL(%q) = %q %q %v", in, b, p, err)
		}
	}
	for _, in := range []string{"bucket/a", "s3://", "s3:///x", "s3://UPPER/x", "http://b/x"} {
		if _, _, err := ParseS3URL(in); err == nil {
			t.Errorf("ParseS3URL(%q): no error", in)
		}
	}
}

func TestNewClientBadAddr(t *testing.T) {
	for _, a := range []string{"", "ftp://x", "http://"} {
		if _, err := NewClient(a, nil); err == nil {
			t.Errorf("NewClient(%q): no error", a)
		}
	}
}

// send makes one request to the admin server at base with the given
// headers ("Host" sets the Host header) and returns status and body.
func send(t *testing.T, method, base, path string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(t, resp)
}

// A DNS-rebinding page reaches the loopback admin API under its own name.
func TestForeignHostsAreRefused(t *testing.T) {
	_, fn, _, base := start(t)
	port := base[strings.LastIndex(base, ":")+1:]
	for _, tc := range []struct {
		host, path string
		status     int
	}{
		{"127.0.0.1:" + port, "/v1/status", 200},
		{"localhost:" + port, "/v1/status", 200},
		{"[::1]:" + port, "/healthz", 200},
		{"evil.example:" + port, "/v1/status", 403},
		{"evil.example:" + port, "/healthz", 403},
		{"evil.example:" + port, "/metrics", 403},
		{"localhost:1", "/v1/status", 403},
		{"a.localhost:" + port, "/v1/status", 403},
	} {
		status, body := send(t, "GET", base, tc.path, map[string]string{"Host": tc.host}, "")
		if status != tc.status {
			t.Errorf("Host %s %s: %d %s, want %d", tc.host, tc.path, status, body, tc.status)
		}
		if status == 403 && !strings.Contains(body, `"error"`) {
			t.Errorf("refusal is not a JSON error: %s", body)
		}
	}
	status, _ := send(t, "POST", base, "/v1/pin", map[string]string{"Host": "evil.example:" + port, "Content-Type": "application/json"}, `{"bucket":"data"}`)
	if status != 403 || len(fn.calls) != 0 {
		t.Fatalf("pin under a foreign Host: %d, backend calls %v", status, fn.calls)
	}
}

func TestAllowedHostsOption(t *testing.T) {
	s, err := New(Config{AllowedHosts: []string{"shoal-0.shoal.svc", "metrics.example:9100"}}, &fakeNode{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for host, want := range map[string]int{"shoal-0.shoal.svc:7071": 200, "metrics.example:9100": 200, "metrics.example:7071": 403} {
		if status, body := send(t, "GET", ts.URL, "/healthz", map[string]string{"Host": host}, ""); status != want {
			t.Errorf("Host %s: %d %s, want %d", host, status, body, want)
		}
	}
	for _, bad := range []string{"", "http://x", "x/y", "x:port"} {
		if _, err := New(Config{AllowedHosts: []string{bad}}, &fakeNode{}); err == nil {
			t.Errorf("allowed host %q accepted", bad)
		}
	}
}

// A page can POST text/plain or a form without a preflight; the admin API
// takes JSON only, so such a request never reaches the node.
func TestStateChangingRequestsNeedJSONFromThisSite(t *testing.T) {
	_, fn, _, base := start(t)
	body := `{"bucket":"data","prefix":""}`
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"text/plain", map[string]string{"Content-Type": "text/plain"}, 415},
		{"form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"no content type", map[string]string{}, 415},
		{"json from another site", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
		{"json, opaque origin", map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403},
		{"json, cross-site fetch", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		{"json, same-site fetch", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []string{"/v1/pin", "/v1/unpin", "/v1/prefetch"} {
				if status, rb := send(t, "POST", base, op, tc.hdr, body); status != tc.status {
					t.Errorf("%s: %d %s, want %d", op, status, rb, tc.status)
				}
			}
			if len(fn.calls) != 0 {
				t.Fatalf("the backend was called: %v", fn.calls)
			}
		})
	}
	if status, rb := send(t, "POST", base, "/v1/pin", map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": base, "Sec-Fetch-Site": "same-origin"}, body); status != 200 {
		t.Fatalf("same-origin JSON pin: %d %s", status, rb)
	}
	if status, rb := send(t, "GET", base, "/v1/status", map[string]string{"Sec-Fetch-Site": "cross-site"}, ""); status != 403 {
		t.Fatalf("cross-site status read: %d %s", status, rb)
	}
}

func TestExtraHandlersShareTheGuard(t *testing.T) {
	s, err := New(Config{}, &fakeNode{}, WithHandler("/debug/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "debug "+r.URL.Path)
	})))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	if status, body := send(t, "GET", ts.URL, "/debug/x", nil, ""); status != 200 || body != "debug /debug/x" {
		t.Fatalf("extra handler: %d %q", status, body)
	}
	if status, _ := send(t, "GET", ts.URL, "/debug/x", map[string]string{"Host": "evil.example"}, ""); status != 403 {
		t.Fatalf("extra handler under a foreign Host: %d", status)
	}
}
