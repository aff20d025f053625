package originfetch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestOrderGate: at most limit holders per version; waiters are admitted
// lowest index first whatever their arrival order; other versions are not
// held up; a waiter that gives up leaves no trace.
func TestOrderGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newOrderGate(0)
		ctx := t.Context()
		rel1, err := g.acquire(ctx, "v", 50, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Another version has its own slots.
		relOther, err := g.acquire(ctx, "w", 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		relOther()

		var mu sync.Mutex
		var order []int64
		var wg sync.WaitGroup
		for _, i := range []int64{9, 3, 7} {
			wg.Go(func() {
				rel, err := g.acquire(ctx, "v", i, 1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				rel()
			})
			synctest.Wait() // arrival order 9, 3, 7
		}

		// A waiter that gives up is removed.
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := g.acquire(cctx, "v", 1, 1)
			errc <- err
		}()
		synctest.Wait()
		if n := countWaiting(g, "v"); n != 4 {
			t.Fatalf("%d waiting, want 4", n)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		if n := countWaiting(g, "v"); n != 3 {
			t.Fatalf("%d waiting after a cancel, want 3", n)
		}

		rel1()
		wg.Wait()
		if want := []int64{3, 7, 9}; !slices.Equal(order, want) {
			t.Errorf("admitted in order %v, want %v", order, want)
		}
		g.mu.Lock()
		left := len(g.versions)
		g.mu.Unlock()
		if left != 0 {
			t.Errorf("%d versions left in an idle gate", left)
		}
	})
}

// TestOrderGateLimit: limit holders run at once, never more.
func TestOrderGateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newOrderGate(0)
		var mu sync.Mutex
		cur, peak := 0, 0
		var wg sync.WaitGroup
		for i := range int64(20) {
			wg.Go(func() {
				rel, err := g.acquire(t.Context(), "v", i, 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				cur++
				peak = max(peak, cur)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				cur--
				mu.Unlock()
				rel()
			})
		}
		wg.Wait()
		if peak != 3 {
			t.Errorf("peak %d holders, limit 3", peak)
		}
	})
}

func countWaiting(g *orderGate, vid string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if vg := g.versions[vid]; vg != nil {
		return len(vg.waiting)
	}
	return 0
}

// TestOrderGateSettles: a new version's gate admits nobody while it
// settles, however the first fetches arrive, and then admits the lowest
// index first (the first chunk a reader needs is not stuck behind a later
// one that happened to arrive a moment earlier).
func TestOrderGateSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newOrderGate(DefaultSettle)
		ctx := t.Context()
		var mu sync.Mutex
		var order []int64
		var wg sync.WaitGroup
		for _, i := range []int64{9, 3, 7} {
			wg.Go(func() {
				rel, err := g.acquire(ctx, "v", i, 1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				rel()
			})
		}
		time.Sleep(DefaultSettle - time.Nanosecond)
		synctest.Wait()
		if n := countWaiting(g, "v"); n != 3 {
			t.Fatalf("%d waiting while settling, want 3", n)
		}
		mu.Lock()
		if len(order) != 0 {
			t.Fatalf("admitted %v while settling", order)
		}
		mu.Unlock()
		wg.Wait() // the settle time ends: admitted lowest first
		if want := []int64{3, 7, 9}; !slices.Equal(order, want) {
			t.Fatalf("admitted in order %v, want %v", order, want)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.versions) != 0 {
			t.Fatalf("gate of an idle version kept: %v", g.versions)
		}
	})
}
