package httpserve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waitLong bounds every wait for something that must happen; the checks
// are on what happens, not on how fast.
const waitLong = 20 * time.Second

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	addr string
	reg  *prometheus.Registry
	log  *syncBuffer
}

// serve runs a Server for h on 127.0.0.1:0 until the test ends.
func serve(t *testing.T, cfg Config, h http.Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	s, err := New(ln, h, cfg, WithLogger(slog.New(slog.NewTextHandler(ts.log, nil))), WithRegisterer(ts.reg))
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func (ts *testServer) gauge(t *testing.T, name string) float64 {
	t.Helper()
	return ts.metric(t, name, "", "")
}

// metric sums the samples of a gauge or counter, those with label=value
// when label is not empty.
func (ts *testServer) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
		samples:
			for _, m := range mf.GetMetric() {
				if label != "" {
					for _, lp := range m.GetLabel() {
						if lp.GetName() == label && lp.GetValue() != value {
							continue samples
						}
					}
				}
				switch {
				case m.Gauge != nil:
					sum += m.Gauge.GetValue()
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				}
			}
			return sum
		}
	}
	return 0
}

// eventually polls cond until it holds or waitLong passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: did not happen within %v", what, waitLong)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })

// get makes one request on a new connection; closed says whether the
// server announced it closes the connection after the response.
func get(t *testing.T, url string) (status int, body string, closed bool) {
	t.Helper()
	c := &http.Client{Timeout: waitLong, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Close
}

func TestConfigValidate(t *testing.T) {
	c := Config{Name: "x", MaxConns: 1}
	if err := c.Validate(); err != nil || c.IdleTimeout != DefaultIdleTimeout || c.BodyTimeout != DefaultBodyTimeout ||
		c.ReadHeaderTimeout != DefaultReadHeaderTimeout || c.MaxHeaderBytes != http.DefaultMaxHeaderBytes {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	for name, bad := range map[string]Config{
		"no name":           {MaxConns: 1},
		"no cap":            {Name: "x"},
		"negative reserve":  {Name: "x", MaxConns: 1, ReservedConns: -1},
		"reserve, no paths": {Name: "x", MaxConns: 1, ReservedConns: 2},
		"negative timeout":  {Name: "x", MaxConns: 1, BodyTimeout: -time.Second},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// At the cap, a new connection waits (it is not accepted, so it holds no
// descriptor) until an open one closes; the wait is counted and logged.
func TestConnectionCap(t *testing.T) {
	ts := serve(t, Config{Name: "gateway", MaxConns: 2}, ok)
	if got := ts.gauge(t, "shoal_http_connections_max"); got != 2 {
		t.Fatalf("connections_max = %v", got)
	}
	idle1, idle2 := dial(t, ts.addr), dial(t, ts.addr)
	_ = idle2
	eventually(t, "two connections open", func() bool { return ts.gauge(t, "shoal_http_connections") == 2 })

	type result struct {
		status int
		err    error
	}
	got := make(chan result, 3)
	for range 3 {
		go func() {
			c := &http.Client{Timeout: waitLong, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + ts.addr + "/x")
			if err != nil {
				got <- result{err: err}
				return
			}
			resp.Body.Close()
			got <- result{status: resp.StatusCode}
		}()
	}
	eventually(t, "a connection waits at the cap", func() bool { return ts.gauge(t, "shoal_http_connection_waits_total") >= 1 })
	select {
	case r := <-got:
		t.Fatalf("a request was answered while the cap was reached: %+v", r)
	default:
	}
	idle1.Close()
	for range 3 {
		if r := <-got; r.err != nil || r.status != 200 {
			t.Fatalf("after a slot freed: %+v", r)
		}
	}
	if n := strings.Count(ts.log.String(), "connection limit reached"); n != 1 {
		t.Errorf("logged the limit %d times, want once (rate-limited):\n%s", n, ts.log.String())
	}
	if !strings.Contains(ts.log.String(), "listener=gateway") || !strings.Contains(ts.log.String(), "limit=2") {
		t.Errorf("log line lacks the listener or the limit:\n%s", ts.log.String())
	}
}

// The reserve lets health checks through while the cap is reached, and
// nothing else.
func TestReservedConnectionsServeOnlyReservedPaths(t *testing.T) {
	ts := serve(t, Config{Name: "admin", MaxConns: 1, ReservedConns: 1, ReservedPaths: []string{"/healthz"}}, ok)
	dial(t, ts.addr)
	eventually(t, "the slot is taken", func() bool { return ts.gauge(t, "shoal_http_connections") == 1 })
	status, body, closed := get(t, "http://"+ts.addr+"/healthz")
	if status != 200 || body != "ok /healthz" || !closed {
		t.Fatalf("/healthz on a reserved connection: %d %q (closed %v)", status, body, closed)
	}
	status, body, _ = get(t, "http://"+ts.addr+"/v1/pin")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "/healthz") {
		t.Fatalf("other path on a reserved connection: %d %q", status, body)
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	ts := serve(t, Config{Name: "t", MaxConns: 4, IdleTimeout: 100 * time.Millisecond}, ok)
	c := dial(t, ts.addr)
	fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	_ = c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: read %v, want EOF (closed by the server)", err)
	}
	eventually(t, "the slot is released", func() bool { return ts.gauge(t, "shoal_http_connections") == 0 })
}

// bodyHandler reads the whole body and answers 200 with its length, or
// 400 with the read error.
func bodyHandler(errs chan<- error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if errs != nil {
			errs <- err
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	})
}

// A PUT that announces 100 MB and sends 10 bytes is cut once no byte came
// for BodyTimeout.
func TestStalledRequestBodyIsCut(t *testing.T) {
	errs := make(chan error, 1)
	ts := serve(t, Config{Name: "t", MaxConns: 4, BodyTimeout: 200 * time.Millisecond}, bodyHandler(errs))
	c := dial(t, ts.addr)
	fmt.Fprintf(c, "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n0123456789")
	select {
	case err := <-errs:
		if !errors.Is(err, ErrBodyTimeout) {
			t.Fatalf("body read error %v, want a body timeout", err)
		}
	case <-time.After(waitLong):
		t.Fatal("a stalled body was not cut")
	}
	_ = c.SetReadDeadline(time.Now().Add(waitLong))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("response %v %v", resp, err)
	}
	if got := ts.gauge(t, "shoal_http_body_timeouts_total"); got != 1 {
		t.Errorf("body_timeouts_total = %v", got)
	}
	eventually(t, "the connection is closed", func() bool { return ts.gauge(t, "shoal_http_connections") == 0 })
}

// A body that keeps moving is never cut, however long it takes in all.
func TestMovingBodyIsNotCut(t *testing.T) {
	const timeout = time.Second
	ts := serve(t, Config{Name: "t", MaxConns: 4, BodyTimeout: timeout}, bodyHandler(nil))
	pr, pw := io.Pipe()
	go func() {
		for range 8 { // 8 pieces, timeout/5 apart: 1.6 timeouts in all
			time.Sleep(timeout / 5)
			if _, err := pw.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", "http://"+ts.addr+"/slow", pr)
	req.ContentLength = 8000
	resp, err := (&http.Client{Timeout: waitLong}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "8000" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// A client that stops reading a response is cut the same way.
func TestStalledResponseIsCut(t *testing.T) {
	errs := make(chan error, 1)
	ts := serve(t, Config{Name: "t", MaxConns: 4, BodyTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<20)
		for range 1024 { // 1 GiB: far more than the socket buffers hold
			if _, err := w.Write(buf); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}))
	c := dial(t, ts.addr)
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-errs:
		if !errors.Is(err, ErrBodyTimeout) {
			t.Fatalf("write error %v, want a body timeout", err)
		}
	case <-time.After(waitLong):
		t.Fatal("a response nobody reads was not cut")
	}
	if got := ts.metric(t, "shoal_http_body_timeouts_total", "direction", "response"); got != 1 {
		t.Errorf("response body timeouts = %v", got)
	}
}

// Deadlines set for one request's body never reach the next request on the
// same connection, nor work the handler does after the body.
func TestDeadlinesEndWithTheBody(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ts := serve(t, Config{Name: "t", MaxConns: 4, BodyTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(3 * timeout) // e.g. a batch delete after reading its XML
		if err := r.Context().Err(); err != nil {
			http.Error(w, "request cancelled: "+err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "done")
	}))
	c := dial(t, ts.addr)
	br := bufio.NewReader(c)
	for i := range 2 {
		// Expect: 100-continue makes the server write before the handler does.
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(waitLong))
		cont, err := http.ReadResponse(br, nil)
		if err != nil || cont.StatusCode != http.StatusContinue {
			t.Fatalf("request %d: no 100 Continue: %v %v", i, cont, err)
		}
		io.WriteString(c, "abc")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "done" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		time.Sleep(2 * timeout) // idle, well below the idle timeout
	}
}

// A handler that works long after its last Write still gets its response
// out: the final flush is not held to the deadline of that Write.
func TestWorkAfterTheLastWriteIsNotCut(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ts := serve(t, Config{Name: "t", MaxConns: 4, BodyTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the whole answer") // buffered: sent by the server after the handler
		time.Sleep(3 * timeout)               // e.g. cleaning up
	}))
	status, body, _ := get(t, "http://"+ts.addr+"/x")
	if status != 200 || body != "the whole answer" {
		t.Fatalf("%d %q", status, body)
	}
}
