package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeOps is a node that also serves the jobs and introspection routes.
type fakeOps struct {
	fakeNode
	started []JobRequest
}

func (f *fakeOps) Jobs(context.Context) (any, error) { return []string{"j1"}, nil }
func (f *fakeOps) Job(_ context.Context, id string) (any, error) {
	if id != "j1" {
		return nil, fmt.Errorf("%w: job %s", ErrNotFound, id)
	}
	return map[string]string{"id": id}, nil
}
func (f *fakeOps) StartJob(_ context.Context, r JobRequest) (any, error) {
	f.started = append(f.started, r)
	return map[string]string{"id": "j1"}, nil
}
func (f *fakeOps) CancelJob(ctx context.Context, id string) (any, error) { return f.Job(ctx, id) }
func (f *fakeOps) Where(_ context.Context, b, k string) (any, error) {
	return map[string]string{"bucket": b, "key": k}, nil
}
func (f *fakeOps) Cached(_ context.Context, b, p string) (any, error) {
	return []string{b + "/" + p}, nil
}
func (f *fakeOps) Peers(context.Context) (any, error) { return []string{}, nil }

func TestOpsRoutes(t *testing.T) {
	fo := &fakeOps{}
	s, err := New(Config{}, fo)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c, err := NewClient(ts.URL, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw, err := c.StartJob(ctx, JobRequest{Bucket: "bkt", Prefix: "p/", Pin: true, Replicas: 2, Local: true})
	if err != nil || !strings.Contains(string(raw), "j1") {
		t.Fatalf("start: %v %s", err, raw)
	}
	if len(fo.started) != 1 || fo.started[0] != (JobRequest{Bucket: "bkt", Prefix: "p/", Pin: true, Replicas: 2, Local: true}) {
		t.Fatalf("started %+v", fo.started)
	}
	if _, err := c.StartJob(ctx, JobRequest{Bucket: "B!"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad bucket: %v", err)
	}
	if _, err := c.Job(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown job: %v", err)
	}
	if _, err := c.CancelJob(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	raw, err = c.Where(ctx, "bkt", "a key/with spaces")
	var w map[string]string
	if err != nil || json.Unmarshal(raw, &w) != nil || w["key"] != "a key/with spaces" {
		t.Fatalf("where: %v %s", err, raw)
	}
	if code, _ := get(t, ts.URL+"/v1/where?bucket=bkt"); code != 400 {
		t.Fatalf("where without a key: %d", code)
	}
	if raw, err = c.Cached(ctx, "bkt", "p/"); err != nil || !strings.Contains(string(raw), "bkt/p/") {
		t.Fatalf("cached: %v %s", err, raw)
	}
	if _, err := c.Peers(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Jobs(ctx); err != nil {
		t.Fatal(err)
	}
}

// A Backend without Ops serves no jobs routes.
func TestNoOpsNoRoutes(t *testing.T) {
	_, _, c, _ := start(t)
	_, err := c.Jobs(context.Background())
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "405") {
		t.Fatalf("jobs on a plain backend: %v", err)
	}
}
