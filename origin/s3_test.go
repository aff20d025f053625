package origin_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
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
// CRC64NVME of every object (as S3 does since 2025) and single-part MD5
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
