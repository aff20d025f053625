package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// memStore is an in-memory Store.
type memStore struct {
	mu    sync.Mutex
	jobs  map[string][]byte
	items map[string]map[string][]byte
}

func newMemStore() *memStore {
	return &memStore{jobs: map[string][]byte{}, items: map[string]map[string][]byte{}}
}

func (s *memStore) PutJob(_ context.Context, id string, rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[id] = append([]byte(nil), rec...)
	return nil
}

func (s *memStore) Job(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.jobs[id]
	if !ok {
		return nil, errors.New("not found")
	}
	return b, nil
}

func (s *memStore) Jobs(_ context.Context, fn func(string, []byte) bool) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.jobs))
	for id := range s.jobs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		b, _ := s.Job(context.Background(), id)
		if !fn(id, b) {
			break
		}
	}
	return nil
}

func (s *memStore) PutJobItem(_ context.Context, id, item string, rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items[id] == nil {
		s.items[id] = map[string][]byte{}
	}
	s.items[id][item] = append([]byte(nil), rec...)
	return nil
}

func (s *memStore) JobItems(_ context.Context, id string, fn func(string, []byte) bool) error {
	s.mu.Lock()
	its := make(map[string][]byte, len(s.items[id]))
	for k, v := range s.items[id] {
		its[k] = v
	}
	s.mu.Unlock()
	for k, v := range its {
		if !fn(k, v) {
			break
		}
	}
	return nil
}

// fakeExec serves a fixed listing; each object is two chunks; fail[key]
// attempts fail before one succeeds (-1: always); block makes Warm wait
// for ctx.
type fakeExec struct {
	mu     sync.Mutex
	objs   []Object
	fail   map[string]int
	block  bool
	warmed map[string]int // key -> successful warms
	tries  map[string][]time.Time
	cached map[string]bool // warmed before: chunks come back cached
}

func (f *fakeExec) Begin(context.Context, string, int, Spec) error { return nil }

func (f *fakeExec) List(_ context.Context, _, prefix string, fn func(Object) error) error {
	for _, o := range f.objs {
		if strings.HasPrefix(o.Key, prefix) {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeExec) Warm(ctx context.Context, _ string, _ int, _ Spec, o Object, report func(Chunk)) error {
	f.mu.Lock()
	f.tries[o.Key] = append(f.tries[o.Key], time.Now())
	n := len(f.tries[o.Key])
	fails := f.fail[o.Key]
	cached := f.cached[o.Key]
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	half := o.Size / 2
	src := SourceOrigin
	if cached {
		src = SourceCached
	}
	report(Chunk{Bytes: half, Source: src, OriginBytes: map[bool]int64{true: 0, false: half}[cached]})
	if fails < 0 || n <= fails {
		return fmt.Errorf("origin said no (attempt %d)", n)
	}
	report(Chunk{Bytes: o.Size - half, Source: src, OriginBytes: map[bool]int64{true: 0, false: o.Size - half}[cached]})
	f.mu.Lock()
	f.warmed[o.Key]++
	f.cached[o.Key] = true
	f.mu.Unlock()
	return nil
}

func newFake(objs ...Object) *fakeExec {
	return &fakeExec{objs: objs, fail: map[string]int{}, warmed: map[string]int{}, tries: map[string][]time.Time{}, cached: map[string]bool{}}
}

func startManager(t *testing.T, ex Executor, st Store) (*Manager, func()) {
	t.Helper()
	m, err := New(Config{Backoff: time.Second, MaxBackoff: 4 * time.Second}, "self", ex, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	return m, func() { cancel(); <-done }
}

func waitFinal(t *testing.T, m *Manager, id string) Job {
	t.Helper()
	m.Wait(context.Background(), id)
	j, err := m.LocalJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A job lists, warms every object, reports totals and sources, and a
// re-run of a finished job's spec is a new job that finds everything
// cached (amplification 0: nothing left the origin).
func TestJobTotalsSourcesAndAmplification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newFake(Object{Key: "p/a", ETag: "1", Size: 100}, Object{Key: "p/b", ETag: "2", Size: 50}, Object{Key: "q/x", Size: 7})
		m, stop := startManager(t, ex, newMemStore())
		defer stop()
		j, err := m.Start(context.Background(), Spec{Bucket: "b", Prefix: "p/"})
		if err != nil {
			t.Fatal(err)
		}
		j = waitFinal(t, m, j.ID)
		if j.State != StateDone || j.Objects != 2 || j.Bytes != 150 || j.BytesDone != 150 || j.BytesOrigin != 150 || j.Chunks != 4 || j.Amplification != 1 {
			t.Fatalf("job: %+v", j)
		}
		again, err := m.Start(context.Background(), Spec{Bucket: "b", Prefix: "p/"})
		if err != nil {
			t.Fatal(err)
		}
		if again.ID == j.ID {
			t.Fatal("a finished job was started again instead of a new one")
		}
		again = waitFinal(t, m, again.ID)
		if again.BytesCached != 150 || again.OriginBytes != 0 || again.Amplification != 0 {
			t.Fatalf("re-run: %+v", again)
		}
	})
}

// A failing object is retried with doubling backoff and listed with its
// reason; an object that fails a few times and then works is done.
func TestJobRetriesWithBackoffAndReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newFake(Object{Key: "bad", Size: 10}, Object{Key: "flaky", Size: 10}, Object{Key: "ok", Size: 10})
		ex.fail["bad"] = -1
		ex.fail["flaky"] = 2
		m, stop := startManager(t, ex, newMemStore())
		defer stop()
		j, _ := m.Start(context.Background(), Spec{Bucket: "b"})
		j = waitFinal(t, m, j.ID)
		if j.State != StateFailed || j.ObjectsDone != 2 || j.ObjectsFailed != 1 || j.BytesDone != 20 {
			t.Fatalf("job: %+v", j)
		}
		if len(j.Failures) != 1 || j.Failures[0].Key != "bad" || j.Failures[0].Attempts != DefaultAttempts || !strings.Contains(j.Failures[0].Reason, "origin said no") {
			t.Fatalf("failures: %+v", j.Failures)
		}
		tries := ex.tries["bad"]
		if len(tries) != DefaultAttempts {
			t.Fatalf("bad tried %d times", len(tries))
		}
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			if got := tries[i+1].Sub(tries[i]); got != want {
				t.Errorf("wait before attempt %d: %v, want %v", i+2, got, want)
			}
		}
		// Failed object partial bytes were taken back: BytesDone counts
		// the done objects only; the origin bytes stay.
		if j.OriginBytes != 20+4*5+2*5 {
			t.Errorf("origin bytes %d", j.OriginBytes)
		}
	})
}

// Cancel stops a job; starting the same spec resumes it (same ID, one more
// run), skipping objects an earlier run finished.
func TestJobCancelAndResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newFake(Object{Key: "a", ETag: "1", Size: 10}, Object{Key: "b", ETag: "1", Size: 10})
		st := newMemStore()
		m, stop := startManager(t, ex, st)
		defer stop()
		// First run: "a" finishes, then everything blocks.
		ex.fail["b"] = -1
		j, _ := m.Start(context.Background(), Spec{Bucket: "b"})
		synctest.Wait()
		ex.mu.Lock()
		ex.block = true
		ex.mu.Unlock()
		c, err := m.Cancel(context.Background(), j.ID)
		if err != nil || c.State != StateCancelled {
			t.Fatalf("cancel: %v %+v", err, c)
		}
		ex.mu.Lock()
		ex.block, ex.fail["b"] = false, 0
		ex.mu.Unlock()
		r, err := m.Start(context.Background(), Spec{Bucket: "b"})
		if err != nil || r.ID != j.ID {
			t.Fatalf("resume: %v %+v (want ID %s)", err, r, j.ID)
		}
		r = waitFinal(t, m, r.ID)
		if r.State != StateDone || r.Runs != 2 || r.ObjectsDone != 2 || ex.warmed["a"] != 1 {
			t.Fatalf("resumed: %+v, a warmed %d times", r, ex.warmed["a"])
		}
	})
}

// A job live in the store when the manager starts (its node stopped while
// it ran) is resumed by Run.
func TestJobResumesOnRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newFake(Object{Key: "a", Size: 10})
		ex.block = true
		st := newMemStore()
		m, stop := startManager(t, ex, st)
		j, _ := m.Start(context.Background(), Spec{Bucket: "b"})
		synctest.Wait()
		stop() // the node stops: the record stays live
		if rec, _ := m.LocalJob(context.Background(), j.ID); !rec.State.Live() {
			t.Fatalf("after stop: %+v", rec)
		}
		ex.block = false
		m2, stop2 := startManager(t, ex, st)
		defer stop2()
		synctest.Wait()
		r := waitFinal(t, m2, j.ID)
		if r.State != StateDone || r.Runs != 2 {
			t.Fatalf("after restart: %+v", r)
		}
	})
}

// Participate refuses chunk work for a cancelled run, not for a later one.
func TestParticipateRefusesCancelledRun(t *testing.T) {
	m, err := New(Config{}, "self", newFake(), newMemStore())
	if err != nil {
		t.Fatal(err)
	}
	ctx, done, err := m.Participate(context.Background(), "j1", 1)
	if err != nil {
		t.Fatal(err)
	}
	m.CancelLocal(context.Background(), "j1", 1)
	if ctx.Err() == nil || !IsCancelled(context.Cause(ctx)) {
		t.Fatalf("participation not cancelled: %v", context.Cause(ctx))
	}
	done()
	if _, _, err := m.Participate(context.Background(), "j1", 1); !IsCancelled(err) {
		t.Fatalf("cancelled run accepted: %v", err)
	}
	if _, d, err := m.Participate(context.Background(), "j1", 2); err != nil {
		t.Fatalf("later run refused: %v", err)
	} else {
		d()
	}
}

func TestSpecValidate(t *testing.T) {
	for _, s := range []Spec{{}, {Bucket: "b", Replicas: -1}, {Bucket: "b", Replicas: 2}, {Bucket: "b", Replicas: MaxReplicas + 1, Pin: true}} {
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", s, err)
		}
	}
	if err := (Spec{Bucket: "b", Pin: true, Replicas: 3}).Validate(); err != nil {
		t.Error(err)
	}
}
