package origin_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/origin"
)

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestHealthTracksARealOrigin: a stopped S3 server makes the origin
// degraded after FailuresToDegrade calls, with the reason and the gauge to
// show it; the first answer after it is back, even a "no such key", makes
// it ok again.
func TestHealthTracksARealOrigin(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	s.PutObject(t, "bkt", "k", []byte("hello"))
	reg := prometheus.NewRegistry()
	h, err := origin.NewHealth(newS3Origin(t, s, origin.S3Config{MaxRetries: -1}), origin.HealthConfig{FailuresToDegrade: 2},
		origin.WithHealthRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := h.HeadObject(ctx, "bkt", "k"); err != nil {
		t.Fatal(err)
	}
	if ok, reason := h.State(); !ok || reason != "" {
		t.Fatalf("healthy origin: %v %q", ok, reason)
	}

	s.Stop()
	if _, err := h.HeadObject(ctx, "bkt", "k"); !errors.Is(err, origin.ErrUnavailable) {
		t.Fatalf("stopped server: %v", err)
	}
	if ok, _ := h.State(); !ok {
		t.Fatal("degraded after one failure, FailuresToDegrade is 2")
	}
	if _, err := h.GetRange(ctx, "bkt", "k", "", 0, -1); !errors.Is(err, origin.ErrUnavailable) {
		t.Fatalf("stopped server: %v", err)
	}
	ok, reason := h.State()
	if ok || !strings.Contains(reason, "2 calls failed in a row") || !strings.Contains(reason, "unavailable") {
		t.Fatalf("after two failures: ok %v, reason %q", ok, reason)
	}
	if g := gauge(t, reg, "shoal_origin_degraded"); g != 1 {
		t.Fatalf("shoal_origin_degraded = %v", g)
	}
	if g := gauge(t, reg, "shoal_origin_consecutive_failures"); g != 2 {
		t.Fatalf("shoal_origin_consecutive_failures = %v", g)
	}

	s.Start()
	if _, err := h.HeadObject(ctx, "bkt", "missing"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("after restart: %v", err)
	}
	if ok, reason := h.State(); !ok {
		t.Fatalf("an answer (no such key) after the restart: still degraded: %q", reason)
	}
	if g := gauge(t, reg, "shoal_origin_degraded"); g != 0 {
		t.Fatalf("shoal_origin_degraded = %v after recovery", g)
	}
	if g := gauge(t, reg, "shoal_origin_last_success_timestamp_seconds"); g < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("last success timestamp %v", g)
	}
}

// TestHealthHungOrigin: calls to a server that never answers fail within
// their bound and make the origin degraded; a caller that gives up first
// leaves no verdict.
func TestHealthHungOrigin(t *testing.T) {
	hs := startHungServer(t)
	h, err := origin.NewHealth(hs.origin(t, origin.S3Config{HeaderTimeout: 100 * time.Millisecond, MaxRetries: -1}),
		origin.HealthConfig{FailuresToDegrade: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.HeadObject(ctx, "bkt", "k"); err == nil {
		t.Fatal("canceled call succeeded")
	}
	for range 2 {
		if _, err := h.HeadObject(context.Background(), "bkt", "k"); !errors.Is(err, origin.ErrUnavailable) {
			t.Fatalf("hung server: %v", err)
		}
	}
	if ok, reason := h.State(); ok || !strings.Contains(reason, "2 calls failed in a row") {
		t.Fatalf("after two timeouts (and one canceled call): ok %v, %q", ok, reason)
	}
}

// stuckOrigin is an in-memory origin whose HeadObject and PutObject wait
// until released (only what these unit tests call is implemented).
type stuckOrigin struct {
	origin.Inner
	release chan struct{}
	mu      sync.Mutex
	instant map[string]bool // keys answered at once
}

func (s *stuckOrigin) HeadObject(ctx context.Context, bucket, key string) (origin.ObjectInfo, error) {
	s.mu.Lock()
	instant := s.instant[key]
	s.mu.Unlock()
	if !instant {
		<-s.release
	}
	return origin.ObjectInfo{Bucket: bucket, Key: key}, nil
}

func (s *stuckOrigin) PutObject(ctx context.Context, p origin.PutParams) (origin.ObjectInfo, error) {
	<-s.release
	return origin.ObjectInfo{}, nil
}

// TestHealthStalledCall: a call that has waited StallAfter, with no answer
// to any call since it began, makes the origin degraded while it waits; an
// answer to another call, or to itself, ends that; uploads are not watched.
func TestHealthStalledCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		so := &stuckOrigin{release: make(chan struct{}), instant: map[string]bool{"fast": true}}
		h, err := origin.NewHealth(so, origin.HealthConfig{StallAfter: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		go h.PutObject(ctx, origin.PutParams{Bucket: "b", Key: "upload"})
		time.Sleep(time.Minute)
		if ok, reason := h.State(); !ok {
			t.Fatalf("an upload running for a minute made the origin degraded: %q", reason)
		}

		var wg sync.WaitGroup
		wg.Go(func() { h.HeadObject(ctx, "b", "stuck") })
		time.Sleep(9 * time.Second)
		if ok, _ := h.State(); !ok {
			t.Fatal("degraded before StallAfter")
		}
		time.Sleep(2 * time.Second)
		ok, reason := h.State()
		if ok || !strings.Contains(reason, "waited 11s") {
			t.Fatalf("a call waiting 11s: ok %v, %q", ok, reason)
		}
		// Another call is answered: the origin answers, one call is stuck.
		if _, err := h.HeadObject(ctx, "b", "fast"); err != nil {
			t.Fatal(err)
		}
		if ok, reason := h.State(); !ok {
			t.Fatalf("degraded although the origin just answered: %q", reason)
		}
		close(so.release)
		wg.Wait()
		if ok, reason := h.State(); !ok {
			t.Fatalf("after every call was answered: %q", reason)
		}
	})
}

func TestHealthConfigValidate(t *testing.T) {
	for _, cfg := range []origin.HealthConfig{{FailuresToDegrade: -1}, {StallAfter: -time.Second}} {
		if _, err := origin.NewHealth(&stuckOrigin{}, cfg); !errors.Is(err, origin.ErrInvalidArgument) {
			t.Errorf("NewHealth(%+v) = %v, want ErrInvalidArgument", cfg, err)
		}
	}
}
