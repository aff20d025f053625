package originfetch

import (
	"context"
	"slices"
	"sync"
	"time"
)

// orderGate bounds the origin fetches of one version that run at once on
// this node and, when more are waiting, admits the lowest chunk index
// first. In a cluster every home node reads its share of a cold object from
// the same origin link: with no bound, all the chunks the readers' windows
// ask for share that link at once and none completes until all do, so no
// home can pass a chunk on early. Admitting a few at a time, in object
// order, makes the first chunks land early and keeps the link busy with the
// ones readers need next.
//
// A version's first fetches arrive together (a reader starts its whole
// read-ahead window at once, peers ask for their windows at once) but in no
// particular order: the Go scheduler runs the last goroutine started
// first, and a home saw the chunk of its second window take its one slot
// before the chunk of its first, delaying every reader's first byte by a
// chunk's transfer time (S4). So when a version's gate is created, it
// collects arrivals for settle before admitting any, lowest index first.
type orderGate struct {
	settle   time.Duration // collection time of a new version's gate
	mu       sync.Mutex    // guards versions
	versions map[string]*versionGate
}

type versionGate struct {
	active  int
	waiting []*gateWaiter // sorted by index
	// opens is when the gate starts admitting (creation + settle); until
	// then every arrival waits.
	opens time.Time
	timer *time.Timer // admits the waiters at opens
}

type gateWaiter struct {
	index   int64
	granted chan struct{} // closed when admitted
}

func newOrderGate(settle time.Duration) *orderGate {
	return &orderGate{settle: settle, versions: make(map[string]*versionGate)}
}

// acquire waits for one of limit slots of version vid, lower indexes first,
// and returns the function that gives it back (never nil on success).
func (g *orderGate) acquire(ctx context.Context, vid string, index int64, limit int) (func(), error) {
	g.mu.Lock()
	vg := g.versions[vid]
	if vg == nil {
		vg = &versionGate{}
		g.versions[vid] = vg
		if g.settle > 0 {
			vg.opens = time.Now().Add(g.settle)
			vg.timer = time.AfterFunc(g.settle, func() { g.open(vid, vg, limit) })
		}
	}
	if vg.active < limit && len(vg.waiting) == 0 && !time.Now().Before(vg.opens) {
		vg.active++
		g.mu.Unlock()
		return func() { g.release(vid, limit) }, nil
	}
	w := &gateWaiter{index: index, granted: make(chan struct{})}
	at, _ := slices.BinarySearchFunc(vg.waiting, index, func(w *gateWaiter, i int64) int {
		switch {
		case w.index <= i: // equal indexes keep arrival order
			return -1
		default:
			return 1
		}
	})
	vg.waiting = slices.Insert(vg.waiting, at, w)
	g.mu.Unlock()

	select {
	case <-w.granted:
		return func() { g.release(vid, limit) }, nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		select {
		case <-w.granted:
			// Admitted just as the caller left: pass the slot on.
			g.releaseLocked(vid, limit)
		default:
			vg.waiting = slices.DeleteFunc(vg.waiting, func(x *gateWaiter) bool { return x == w })
			g.dropIfIdleLocked(vid, vg)
		}
		return nil, ctx.Err()
	}
}

// open admits vg's waiters once its settle time is over (if vg is still
// the version's gate).
func (g *orderGate) open(vid string, vg *versionGate, limit int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.versions[vid] != vg {
		return
	}
	vg.opens = time.Time{}
	if vg.timer != nil {
		vg.timer.Stop()
	}
	g.admitLocked(vid, vg, limit)
}

func (g *orderGate) release(vid string, limit int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked(vid, limit)
}

// releaseLocked gives a slot back and admits waiters, lowest index first,
// while slots are free.
func (g *orderGate) releaseLocked(vid string, limit int) {
	vg := g.versions[vid]
	vg.active--
	g.admitLocked(vid, vg, limit)
}

// admitLocked admits waiters, lowest index first, while slots are free,
// then drops the gate if idle.
func (g *orderGate) admitLocked(vid string, vg *versionGate, limit int) {
	for vg.active < limit && len(vg.waiting) > 0 {
		w := vg.waiting[0]
		vg.waiting = vg.waiting[1:]
		vg.active++
		close(w.granted)
	}
	g.dropIfIdleLocked(vid, vg)
}

// dropIfIdleLocked forgets an idle gate, unless it is still settling (its
// timer then finds it gone or idle and does nothing).
func (g *orderGate) dropIfIdleLocked(vid string, vg *versionGate) {
	if vg.active == 0 && len(vg.waiting) == 0 && !time.Now().Before(vg.opens) {
		delete(g.versions, vid)
	}
}
