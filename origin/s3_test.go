package origin_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/shoal-cache/shoal/internal/integrity"
	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/origin/origintest"
)

func TestS3DeadEndpointIsUnavailableThenRecovers(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	s.PutObject(t, "bkt", "k", []byte("hello"))
	o := newS3Origin(t, s, origin.S3Config{MaxRetries: 2, RetryBaseDelay: 10 * time.Millisecond, RetryMaxBackoff: 50 * time.Millisecond})

	s.Stop()
	// The context only bounds a broken retry loop; the retries themselves
	// must give up long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := o.HeadObject(ctx, "bkt", "k")
	if !errors.Is(err, origin.ErrUnavailable) {
		t.Fatalf("HeadObject on a dead endpoint: %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Fatal("retries ran until the test's context expired")
	}
	if _, err := o.GetRange(ctx, "bkt", "k", "", 0, -1); !errors.Is(err, origin.ErrUnavailable) {
		t.Fatalf("GetRange on a dead endpoint: %v, want ErrUnavailable", err)
	}

	s.Start()
	info, err := o.HeadObject(ctx, "bkt", "k")
	if err != nil || info.Size != 5 {
		t.Fatalf("after restart: %+v, %v", info, err)
	}
}

func TestS3RetriesServerErrors(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>`)
	}))
	defer srv.Close()
	o, err := origin.NewS3(context.Background(), origin.S3Config{
		Endpoint: srv.URL, Region: "us-east-1", PathStyle: true, AccessKey: "a", SecretKey: "s",
		MaxRetries: 3, RetryBaseDelay: time.Millisecond, RetryMaxBackoff: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.ListObjects(context.Background(), origin.ListParams{Bucket: "bkt"})
	if !errors.Is(err, origin.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := hits.Load(); got != 4 {
		t.Fatalf("server saw %d attempts, want 1 + 3 retries", got)
	}
}

// gatedProxy forwards to target but holds every GET until the gate opens,
// recording how many were waiting at once.
type gatedProxy struct {
	gate           chan struct{}
	inflight, peak atomic.Int64
	gets           atomic.Int64
	rp             *httputil.ReverseProxy
}

func (g *gatedProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		g.gets.Add(1)
		n := g.inflight.Add(1)
		for {
			p := g.peak.Load()
			if n <= p || g.peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-g.gate
		defer g.inflight.Add(-1)
	}
	g.rp.ServeHTTP(w, r)
}

func TestS3MaxInFlightBoundsConcurrentGets(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	data := origintest.RandomBytes(64 << 10)
	s.PutObject(t, "bkt", "k", data)

	target, _ := url.Parse(s.Endpoint)
	gp := &gatedProxy{gate: make(chan struct{}), rp: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}}}
	proxy := httptest.NewServer(gp)
	defer proxy.Close()
	var once sync.Once
	openGate := func() { once.Do(func() { close(gp.gate) }) }
	defer openGate()

	const limit, requests = 3, 12
	o, err := origin.NewS3(context.Background(), origin.S3Config{
		Endpoint: proxy.URL, Region: s.Region, PathStyle: true, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		MaxInFlight: limit,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var g errgroup.Group
	for i := range requests {
		g.Go(func() error {
			rc, err := o.GetRange(ctx, "bkt", "k", "", int64(i), 100)
			if err != nil {
				return err
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, data[i:i+100]) {
				return errors.New("wrong bytes")
			}
			return nil
		})
	}
	// Wait until the limit is reached at the proxy, give the other requests
	// a moment to (wrongly) get through, then let everything finish.
	for gp.inflight.Load() < limit && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	openGate()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if peak := gp.peak.Load(); peak != limit {
		t.Fatalf("peak concurrent GETs at the proxy = %d, want exactly MaxInFlight = %d", peak, limit)
	}
	if n := gp.gets.Load(); n != requests {
		t.Fatalf("proxy saw %d GETs, want %d", n, requests)
	}

	// A caller whose context ends while waiting for a slot gets its
	// context error, and the slot accounting stays intact.
	var bodies []io.ReadCloser
	for range limit {
		rc, err := o.GetRange(ctx, "bkt", "k", "", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, rc)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if _, err := o.GetRange(short, "bkt", "k", "", 0, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetRange with all slots taken and a canceled context: %v", err)
	}
	for _, rc := range bodies {
		rc.Close()
		rc.Close() // double close must not free two slots
	}
	for range limit {
		rc, err := o.GetRange(ctx, "bkt", "k", "", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
	}
}

func TestS3Metrics(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	data := origintest.RandomBytes(10_000)
	s.PutObject(t, "bkt", "k", data)
	reg := prometheus.NewRegistry()
	o := newS3Origin(t, s, origin.S3Config{MaxRetries: -1}, origin.WithRegisterer(reg))
	// A second origin on the same registry shares the collectors.
	o2 := newS3Origin(t, s, origin.S3Config{MaxRetries: -1}, origin.WithRegisterer(reg))

	ctx := context.Background()
	for _, oo := range []*origin.S3{o, o2} {
		rc, err := oo.GetRange(ctx, "bkt", "k", "", 100, 1000)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	if _, err := o.HeadObject(ctx, "bkt", "missing"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				vals[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				vals[name] = m.Gauge.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"shoal_origin_requests_total,op=get,result=ok":         2,
		"shoal_origin_requests_total,op=head,result=not_found": 1,
		"shoal_origin_read_bytes_total":                        2000,
		"shoal_origin_gets_in_flight":                          0,
	} {
		if vals[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, vals[name], want, vals)
		}
	}
	// Outcomes not seen yet exist at zero (the error-ratio alert needs them).
	if v, ok := vals["shoal_origin_requests_total,op=get,result=unavailable"]; !ok || v != 0 {
		t.Errorf("get/unavailable series: %v, present %v; want a zero series", v, ok)
	}
}

func TestS3PutUnknownSizeMultipart(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	o := newS3Origin(t, s, origin.S3Config{})
	data := origintest.RandomBytes(9<<20 + 123) // more than one 8 MiB part
	s.ResetCounts()
	info, err := o.PutObject(context.Background(), origin.PutParams{Bucket: "bkt", Key: "big", Body: io.MultiReader(bytes.NewReader(data)), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("size %d", info.Size)
	}
	if c := s.Counts(); c.Put != 2 {
		t.Fatalf("PUTs at the server: %d, want 2 parts", c.Put)
	}
	rc, err := o.GetRange(context.Background(), "bkt", "big", info.ETag, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
}

func TestS3ConfigValidate(t *testing.T) {
	for _, cfg := range []origin.S3Config{
		{MaxInFlight: -1},
		{MaxRetries: -2},
		{AccessKey: "a"},
		{Endpoint: "ftp://x"},
		{Endpoint: "http://"},
		{HeaderTimeout: -time.Second},
	} {
		if err := cfg.Validate(); !errors.Is(err, origin.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidArgument", cfg, err)
		}
		if _, err := origin.NewS3(context.Background(), cfg); err == nil {
			t.Errorf("NewS3(%+v) succeeded", cfg)
		}
	}
	if err := (origin.S3Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

// TestS3HeadReportsIntegrityData: the S3 test server keeps a full-object
// CRC64NVME of every object (as S3 does since December 2024) and single-part MD5
// ETags; HEAD passes both on, and never calls a multipart ETag an MD5.
func TestS3HeadReportsIntegrityData(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	data := origintest.RandomBytes(50_000)
	s.PutObject(t, "bkt", "k", data)
	o := newS3Origin(t, s, origin.S3Config{})
	ctx := context.Background()
	info, err := o.HeadObject(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if !info.ETagIsMD5 || info.ETag != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Fatalf("single-part object: ETag %s, ETagIsMD5 %v", info.ETag, info.ETagIsMD5)
	}
	if want := integrity.EncodeCRC64(integrity.ChecksumCRC64NVME(data)); info.Checksums.CRC64NVME != want || info.Checksums.Type != origin.ChecksumFullObject {
		t.Fatalf("checksums %+v, want CRC64NVME %s FULL_OBJECT", info.Checksums, want)
	}
	big := origintest.RandomBytes(9 << 20)
	mp, err := o.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "mp", Body: io.MultiReader(bytes.NewReader(big)), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if mp.ETagIsMD5 || !strings.HasSuffix(mp.ETag, `-2"`) {
		t.Fatalf("multipart object: ETag %s, ETagIsMD5 %v", mp.ETag, mp.ETagIsMD5)
	}
}

// hungServer accepts TCP connections and reads from them but never writes
// a byte: an S3 endpoint that is up but stuck. It counts connections.
type hungServer struct {
	ln    net.Listener
	conns atomic.Int64
	mu    sync.Mutex // guards open
	open  []net.Conn
}

func startHungServer(t *testing.T) *hungServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungServer{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns.Add(1)
			h.mu.Lock()
			h.open = append(h.open, c)
			h.mu.Unlock()
			go io.Copy(io.Discard, c) // take the request, answer nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.open {
			c.Close()
		}
	})
	return h
}

func (h *hungServer) origin(t *testing.T, cfg origin.S3Config) *origin.S3 {
	t.Helper()
	cfg.Endpoint, cfg.Region, cfg.PathStyle, cfg.AccessKey, cfg.SecretKey = "http://"+h.ln.Addr().String(), "us-east-1", true, "a", "s"
	o, err := origin.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestS3HungServerFailsInBoundedTime: against a server that accepts
// connections and never answers, a HEAD or ranged GET fails with
// ErrUnavailable once its attempts have each waited HeaderTimeout, or once
// RetryBudget has run out, whichever is first; not after the caller's own
// deadline.
func TestS3HungServerFailsInBoundedTime(t *testing.T) {
	// The caller's context only catches a call that is not bounded at all.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(o *origin.S3, get bool) (time.Duration, error) {
		start := time.Now()
		var err error
		if get {
			var rc io.ReadCloser
			if rc, err = o.GetRange(ctx, "bkt", "k", `"etag"`, 0, 100); err == nil {
				rc.Close()
			}
		} else {
			_, err = o.HeadObject(ctx, "bkt", "k")
		}
		return time.Since(start), err
	}
	for _, get := range []bool{false, true} {
		op := map[bool]string{false: "HeadObject", true: "GetRange"}[get]
		t.Run(op+"/header timeout per attempt", func(t *testing.T) {
			h := startHungServer(t)
			o := h.origin(t, origin.S3Config{HeaderTimeout: 200 * time.Millisecond, MaxRetries: 2,
				RetryBaseDelay: 10 * time.Millisecond, RetryMaxBackoff: 20 * time.Millisecond})
			took, err := call(o, get)
			if !errors.Is(err, origin.ErrUnavailable) || ctx.Err() != nil {
				t.Fatalf("%s on a hung server: %v after %v, want ErrUnavailable", op, err, took)
			}
			if n := h.conns.Load(); n != 3 {
				t.Fatalf("%d connections, want 3 (one per attempt: 1 + 2 retries)", n)
			}
		})
		t.Run(op+"/retry budget caps the attempts", func(t *testing.T) {
			h := startHungServer(t)
			const budget = 300 * time.Millisecond
			// One attempt alone would wait 30 s for headers; the budget ends it.
			o := h.origin(t, origin.S3Config{HeaderTimeout: 30 * time.Second, RetryBudget: budget})
			took, err := call(o, get)
			if !errors.Is(err, origin.ErrUnavailable) || !strings.Contains(err.Error(), "retry budget") {
				t.Fatalf("%s on a hung server: %v after %v, want ErrUnavailable (retry budget)", op, err, took)
			}
			if took > 10*time.Second { // a third of one header timeout: only the budget can have ended it
				t.Fatalf("%s took %v with a budget of %v", op, took, budget)
			}
		})
	}
}

// TestS3RetryBudgetSparesSlowBodies: the budget ends at the response
// headers; a body that keeps moving may take longer than the budget.
func TestS3RetryBudgetSparesSlowBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "80")
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.WriteHeader(http.StatusOK)
		for range 8 {
			w.Write([]byte("0123456789"))
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()
	o, err := origin.NewS3(context.Background(), origin.S3Config{
		Endpoint: srv.URL, Region: "us-east-1", PathStyle: true, AccessKey: "a", SecretKey: "s",
		RetryBudget: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := o.GetRange(context.Background(), "bkt", "k", "", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || len(got) != 80 {
		t.Fatalf("slow body: %d bytes, %v", len(got), err)
	}
}
