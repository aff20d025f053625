package bench

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// objectServer serves one object with range support and records the Range
// headers it saw.
func objectServer(t *testing.T, data []byte) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		http.ServeContent(w, r, "obj", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ranges)
	}
}

func testClient(t *testing.T, conns int) *http.Client {
	hc := NewClient(conns, 10*time.Second)
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		size    int64
		streams int
		want    []string
	}{
		{10, 1, []string{"bytes=0-9"}},
		{10, 3, []string{"bytes=0-3", "bytes=4-7", "bytes=8-9"}},
		{16, 8, []string{"bytes=0-1", "bytes=2-3", "bytes=4-5", "bytes=6-7", "bytes=8-9", "bytes=10-11", "bytes=12-13", "bytes=14-15"}},
		{5, 5, []string{"bytes=0-0", "bytes=1-1", "bytes=2-2", "bytes=3-3", "bytes=4-4"}},
	} {
		got, lens, err := Ranges(tc.size, tc.streams)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Ranges(%d, %d) = %q, %v; want %q", tc.size, tc.streams, got, err, tc.want)
		}
		var sum int64
		for _, l := range lens {
			sum += l
		}
		if sum != tc.size {
			t.Errorf("Ranges(%d, %d) lengths add up to %d", tc.size, tc.streams, sum)
		}
	}
	for _, bad := range [][2]int64{{0, 1}, {10, 0}, {3, 4}, {-1, 1}} {
		if _, _, err := Ranges(bad[0], int(bad[1])); !errors.Is(err, ErrConfig) {
			t.Errorf("Ranges(%d, %d): err %v, want ErrConfig", bad[0], bad[1], err)
		}
	}
}

func TestReadObjectReadsEveryByteOnce(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10+1) // not a multiple of 8
	for _, streams := range []int{1, 3, 8} {
		srv, seen := objectServer(t, data)
		r, err := ReadObject(t.Context(), testClient(t, 8), srv.URL, int64(len(data)), streams)
		if err != nil {
			t.Fatalf("%d streams: %v", streams, err)
		}
		if r.Bytes != int64(len(data)) || r.Elapsed <= 0 || r.MBps() <= 0 {
			t.Errorf("%d streams: %+v", streams, r)
		}
		got := seen()
		slices.Sort(got)
		want, _, _ := Ranges(int64(len(data)), streams)
		if streams == 1 {
			want = []string{""}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%d streams: server saw ranges %q, want %q", streams, got, want)
		}
	}
}

func TestReadObjectWrongSizeIsAnError(t *testing.T) {
	data := make([]byte, 1000)
	srv, _ := objectServer(t, data)
	for _, streams := range []int{1, 4} {
		// The object is shorter than the reader expects.
		_, err := ReadObject(t.Context(), testClient(t, 4), srv.URL, 1001, streams)
		if err == nil {
			t.Errorf("%d streams: a 1000-byte object read as 1001 bytes did not fail", streams)
		}
	}
	if _, err := ReadObject(t.Context(), testClient(t, 1), srv.URL, 999, 1); !errors.Is(err, ErrSize) {
		t.Errorf("a 1000-byte body where 999 were expected: err %v, want ErrSize", err)
	}
}

func TestGetChecksStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no such key", http.StatusNotFound)
		default: // ignores Range, answers 200 with the whole body
			w.Write([]byte("abcd"))
		}
	}))
	t.Cleanup(srv.Close)
	hc := testClient(t, 1)
	buf := make([]byte, 16)
	if _, err := Get(t.Context(), hc, srv.URL+"/missing", "", -1, buf, nil); !errors.Is(err, ErrStatus) {
		t.Errorf("404: err %v, want ErrStatus", err)
	}
	if _, err := Get(t.Context(), hc, srv.URL+"/x", "bytes=0-1", 2, buf, nil); !errors.Is(err, ErrStatus) {
		t.Errorf("200 to a range request: err %v, want ErrStatus", err)
	}
	if n, err := Get(t.Context(), hc, srv.URL+"/x", "", 4, buf, nil); err != nil || n != 4 {
		t.Errorf("good GET: %d, %v", n, err)
	}
	if _, err := Get(t.Context(), hc, "http://127.0.0.1:0/x", "", 4, buf, nil); err == nil {
		t.Error("GET of an unreachable address did not fail")
	}
}

func TestLoadCountsEveryRequestItStarts(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if strings.HasSuffix(r.URL.Path, "/bad") {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("four"))
	}))
	t.Cleanup(srv.Close)
	cfg := LoadConfig{
		URLs:     []string{srv.URL + "/a/ok", srv.URL + "/b/ok", srv.URL + "/c/bad"},
		Size:     4,
		Conns:    4,
		Duration: 200 * time.Millisecond,
	}
	r, err := Load(t.Context(), testClient(t, 4), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.Errors == 0 {
		t.Fatalf("want both successes and errors, got %+v", r)
	}
	if served.Load() != r.OK+r.Errors {
		t.Errorf("server answered %d requests, load counted %d (no warm-up: they must agree)", served.Load(), r.OK+r.Errors)
	}
	if !strings.Contains(r.FirstError, "500") {
		t.Errorf("first error %q does not name the status", r.FirstError)
	}
	if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.Elapsed <= 0 || r.RPS() <= 0 {
		t.Errorf("inconsistent figures: %+v, %.0f req/s", r, r.RPS())
	}

	// With a warm-up, what it sends before the window is not counted.
	served.Store(0)
	cfg.Warmup = 100 * time.Millisecond
	r, err = Load(t.Context(), testClient(t, 4), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.OK + r.Errors; n == 0 || n >= served.Load() {
		t.Errorf("with warm-up: counted %d of %d served requests", n, served.Load())
	}
}

func TestLoadRejectsBadConfig(t *testing.T) {
	ok := LoadConfig{URLs: []string{"http://127.0.0.1:1/"}, Size: 1, Conns: 1, Duration: time.Second}
	for name, mutate := range map[string]func(*LoadConfig){
		"no urls":       func(c *LoadConfig) { c.URLs = nil },
		"no conns":      func(c *LoadConfig) { c.Conns = 0 },
		"no duration":   func(c *LoadConfig) { c.Duration = 0 },
		"neg warm-up":   func(c *LoadConfig) { c.Warmup = -time.Second },
		"negative size": func(c *LoadConfig) { c.Size = -1 },
	} {
		c := ok
		mutate(&c)
		if _, err := Load(t.Context(), http.DefaultClient, c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
}

func TestLoadStopsWithContext(t *testing.T) {
	srv, _ := objectServer(t, []byte("x"))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	cfg := LoadConfig{URLs: []string{srv.URL}, Size: 1, Conns: 2, Duration: time.Hour}
	if _, err := Load(ctx, testClient(t, 2), cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the context's", err)
	}
}
