package node

import (
	"context"
	"slices"
	"sync"
)

// orderGate bounds the origin fetches of one version that run at once on
// this node and, when more are waiting, admits the lowest chunk index
// first. In a cluster every home node reads its share of a cold object from
// the same origin link: with no bound, all the chunks the readers' windows
// ask for share that link at once and none completes until all do, so no
// home can pass a chunk on early. Admitting a few at a time, in object
// order, makes the first chunks land early and keeps the link busy with the
// ones readers need next.
type orderGate struct {
	mu       sync.Mutex // guards versions
	versions map[string]*versionGate
}

type versionGate struct {
	active  int
	waiting []*gateWaiter // sorted by index
}

type gateWaiter struct {
	index   int64
	granted chan struct{} // closed when admitted
}

func newOrderGate() *orderGate { return &orderGate{versions: make(map[string]*versionGate)} }

// acquire waits for one of limit slots of version vid, lower indexes first,
// and returns the function that gives it back (never nil on success).
func (g *orderGate) acquire(ctx context.Context, vid string, index int64, limit int) (func(), error) {
	g.mu.Lock()
	vg := g.versions[vid]
	if vg == nil {
		vg = &versionGate{}
		g.versions[vid] = vg
	}
	if vg.active < limit && len(vg.waiting) == 0 {
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
	for vg.active < limit && len(vg.waiting) > 0 {
		w := vg.waiting[0]
		vg.waiting = vg.waiting[1:]
		vg.active++
		close(w.granted)
	}
	g.dropIfIdleLocked(vid, vg)
}

func (g *orderGate) dropIfIdleLocked(vid string, vg *versionGate) {
	if vg.active == 0 && len(vg.waiting) == 0 {
		delete(g.versions, vid)
	}
}
