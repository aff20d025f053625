package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// The flow-level network. Links have a capacity (bytes per second); a flow
// carries a number of bytes over a set of links. At every moment the rates
// are the max-min fair allocation (progressive filling): all flows grow
// together until a link is full, its flows are frozen at the rate they
// reached, and the others grow on. A flow may have its own rate cap, and
// may follow another flow (cut-through: a home passes on the bytes of its
// origin read as they arrive, so what a peer has received never exceeds
// what the home has). Between events (a flow ends, a follower catches up
// with the flow it follows) rates are constant, so the network jumps from
// one event to the next.

// ErrStuck: flows remain but none can move (every remaining flow has rate 0).
var ErrStuck = errors.New("sim: flows remain but none moves")

// Link is a link's index in its Network.
type Link int32

// Flow is a transfer of Size bytes over Links.
type Flow struct {
	Links []Link
	Size  float64
	// Cap bounds the flow's rate (bytes per second); 0: no cap.
	Cap float64
	// Follow, if set, is a flow this one may not get ahead of: its
	// delivered bytes never exceed Follow's. Follow must not follow
	// another flow itself.
	Follow *Flow
	// Done is called once the last byte arrived, with the time.
	Done func(now float64)

	sent, rate float64
	done       bool
	seq        int64
	effCap     float64 // Cap, or the followed flow's rate while caught up
}

// Delivered is how many bytes have arrived so far.
func (f *Flow) Delivered() float64 { return f.sent }

// Rate is the flow's current rate (bytes per second).
func (f *Flow) Rate() float64 { return f.rate }

// Finished reports whether the flow has delivered all its bytes.
func (f *Flow) Finished() bool { return f.done }

// Network is a set of links and the flows over them.
type Network struct {
	// Quantum: flows that end within this many seconds after the next
	// event end in the same step, which bounds the number of steps when
	// thousands of flows end at almost the same time. Each ends at the
	// latest of them (an error of at most one quantum per step); 0: every
	// event is its own step.
	Quantum float64

	caps  []float64
	flows []*Flow
	now   float64
	seq   int64
	steps int64

	// scratch of solve
	rem    []float64
	cnt    []int32
	ver    []int32
	off    []int32
	member []int32
	fill   []int32
	heap   shareHeap
	capped []int32
}

// AddLink adds a link of capacity c (bytes per second, > 0).
func (n *Network) AddLink(c float64) Link {
	if !(c > 0) || math.IsInf(c, 0) {
		panic(fmt.Sprintf("sim: link capacity %v", c))
	}
	n.caps = append(n.caps, c)
	return Link(len(n.caps) - 1)
}

// Now is the network's clock (seconds).
func (n *Network) Now() float64 { return n.now }

// Steps is how many events the network went through.
func (n *Network) Steps() int64 { return n.steps }

// Active is the number of flows in progress.
func (n *Network) Active() int { return len(n.flows) }

// Start adds f at the current time. A flow of no bytes ends at once.
func (n *Network) Start(f *Flow) {
	if f.Follow != nil && f.Follow.Follow != nil {
		panic("sim: a flow follows a flow that follows another")
	}
	if len(f.Links) == 0 && f.Cap <= 0 {
		panic("sim: a flow over no link and without a cap")
	}
	n.seq++
	f.seq = n.seq
	if f.Size <= 0 {
		f.done = true
		if f.Done != nil {
			f.Done(n.now)
		}
		return
	}
	n.flows = append(n.flows, f)
}

// Run moves the network from event to event until no flow is left (the
// flows' Done callbacks may start new ones).
func (n *Network) Run() error {
	for len(n.flows) > 0 {
		if err := n.step(); err != nil {
			return err
		}
	}
	return nil
}

// caughtUp reports whether follower f has every byte its leader has.
func caughtUp(f *Flow) bool {
	l := f.Follow
	return l != nil && !l.done && f.sent >= l.sent-1e-9*f.Size
}

// step computes the rates, jumps to the next event and ends what ended.
func (n *Network) step() error {
	n.steps++
	for _, f := range n.flows {
		f.effCap = f.Cap
	}
	n.solve()
	// A caught-up follower moves at most at its leader's rate: give it that
	// cap and share again (what it leaves goes to the others).
	again := false
	for _, f := range n.flows {
		if caughtUp(f) && f.rate > f.Follow.rate {
			// (effCap 0 means no cap: a leader at a standstill leaves
			// its follower a rate too small to matter.)
			c := max(f.Follow.rate, 1e-12)
			if f.effCap == 0 || c < f.effCap {
				f.effCap = c
			}
			again = true
		}
	}
	if again {
		n.solve()
	}
	dt := math.Inf(1)
	for _, f := range n.flows {
		if f.rate > 0 {
			dt = min(dt, (f.Size-f.sent)/f.rate)
		}
		if l := f.Follow; l != nil && !l.done && f.rate > l.rate && f.sent < l.sent {
			dt = min(dt, (l.sent-f.sent)/(f.rate-l.rate))
		}
	}
	if math.IsInf(dt, 1) {
		return fmt.Errorf("%w: %d flows at %.3f s", ErrStuck, len(n.flows), n.now)
	}
	// Flows that end within a quantum of the first event end with it.
	if n.Quantum > 0 {
		first := dt
		for _, f := range n.flows {
			if f.rate > 0 {
				if e := (f.Size - f.sent) / f.rate; e <= first+n.Quantum {
					dt = max(dt, e)
				}
			}
		}
	}
	stalled := 0
	// Leaders first, then followers, clamped to their leader.
	for _, f := range n.flows {
		if f.Follow == nil {
			f.sent = min(f.Size, f.sent+f.rate*dt)
		}
	}
	for _, f := range n.flows {
		if l := f.Follow; l != nil {
			was := f.sent
			f.sent = min(f.Size, f.sent+f.rate*dt)
			if !l.done {
				f.sent = min(f.sent, l.sent)
			}
			if f.sent <= was && f.rate > 0 {
				stalled++
			}
		}
	}
	if stalled == len(n.flows) {
		// Only followers are left, each at its leader's bytes: their
		// leaders are not in the network.
		return fmt.Errorf("%w: %d followers of flows not started, at %.3f s", ErrStuck, stalled, n.now)
	}
	n.now += dt
	var ended []*Flow
	kept := n.flows[:0]
	for _, f := range n.flows {
		if f.sent >= f.Size*(1-1e-12) {
			f.sent, f.rate, f.done = f.Size, 0, true
			ended = append(ended, f)
			continue
		}
		kept = append(kept, f)
	}
	clear(n.flows[len(kept):])
	n.flows = kept
	// Callbacks in start order, so runs are deterministic.
	slices.SortFunc(ended, func(a, b *Flow) int { return int(a.seq - b.seq) })
	for _, f := range ended {
		if f.Done != nil {
			f.Done(n.now)
		}
	}
	return nil
}

// solve sets every flow's rate to the max-min fair allocation under the
// link capacities and the flows' effCap (progressive filling, the link
// with the smallest fair share first, from a heap).
func (n *Network) solve() {
	nl := len(n.caps)
	n.rem = append(n.rem[:0], n.caps...)
	n.cnt = slices.Grow(n.cnt[:0], nl)[:nl]
	n.ver = slices.Grow(n.ver[:0], nl)[:nl]
	clear(n.cnt)
	clear(n.ver)
	for _, f := range n.flows {
		f.rate = -1
		for _, l := range f.Links {
			n.cnt[l]++
		}
	}
	// link -> its flows (compressed rows)
	n.off = slices.Grow(n.off[:0], nl+1)[:nl+1]
	n.off[0] = 0
	for l := range nl {
		n.off[l+1] = n.off[l] + n.cnt[l]
	}
	n.member = slices.Grow(n.member[:0], int(n.off[nl]))[:n.off[nl]]
	n.fill = append(n.fill[:0], n.off[:nl]...)
	for i, f := range n.flows {
		for _, l := range f.Links {
			n.member[n.fill[l]] = int32(i)
			n.fill[l]++
		}
	}
	// The heap holds a lower bound of every loaded link's fair share:
	// freezing a flow at the current level never lowers another link's
	// share (rem-level)/(cnt-1) below rem/cnt, so an entry is refreshed
	// only when it reaches the top stale, and a valid top is the minimum.
	h := shareHeap(n.heap[:0])
	for l := range nl {
		if n.cnt[l] > 0 {
			h = append(h, shareItem{n.rem[l] / float64(n.cnt[l]), Link(l), 0})
		}
	}
	h.init()
	// flows with their own cap, lowest first
	capped := n.capped[:0]
	for i, f := range n.flows {
		if f.effCap > 0 {
			capped = append(capped, int32(i))
		}
	}
	slices.SortFunc(capped, func(a, b int32) int {
		x, y := n.flows[a].effCap, n.flows[b].effCap
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return int(a - b)
	})
	freeze := func(f *Flow, r float64) {
		f.rate = r
		for _, l := range f.Links {
			n.rem[l] = max(0, n.rem[l]-r)
			n.cnt[l]--
			n.ver[l]++
		}
	}
	ci := 0
	for {
		for ci < len(capped) && n.flows[capped[ci]].rate >= 0 {
			ci++
		}
		// the smallest valid link share
		for len(h) > 0 {
			top := h[0]
			if n.cnt[top.link] == 0 {
				h.pop()
				continue
			}
			if top.ver == n.ver[top.link] {
				break
			}
			h[0] = shareItem{n.rem[top.link] / float64(n.cnt[top.link]), top.link, n.ver[top.link]}
			h.down(0)
		}
		if len(h) == 0 && ci == len(capped) {
			break
		}
		if ci < len(capped) && (len(h) == 0 || n.flows[capped[ci]].effCap <= h[0].share) {
			f := n.flows[capped[ci]]
			freeze(f, f.effCap)
			continue
		}
		top := h.pop()
		l := top.link
		for _, fi := range n.member[n.off[l]:n.off[l+1]] {
			if f := n.flows[fi]; f.rate < 0 {
				freeze(f, top.share)
			}
		}
	}
	n.heap, n.capped = h[:0], capped[:0]
}

type shareItem struct {
	share float64
	link  Link
	ver   int32
}

type shareHeap []shareItem

func (h shareHeap) less(i, j int) bool {
	if h[i].share != h[j].share {
		return h[i].share < h[j].share
	}
	return h[i].link < h[j].link
}

func (h shareHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h shareHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *shareHeap) pop() shareItem {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	if last > 0 {
		h.down(0)
	}
	return top
}
