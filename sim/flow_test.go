package sim

import (
	"errors"
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// run starts the flows at time 0, runs the network, and returns when each
// ended.
func run(t *testing.T, n *Network, flows ...*Flow) []float64 {
	t.Helper()
	end := make([]float64, len(flows))
	for i, f := range flows {
		prev := f.Done
		f.Done = func(now float64) {
			end[i] = now
			if prev != nil {
				prev(now)
			}
		}
		n.Start(f)
	}
	if err := n.Run(); err != nil {
		t.Fatal(err)
	}
	return end
}

// TestMaxMinHandCases: allocations a reader can check by hand.
func TestMaxMinHandCases(t *testing.T) {
	t.Run("one flow gets the link", func(t *testing.T) {
		var n Network
		l := n.AddLink(10)
		end := run(t, &n, &Flow{Links: []Link{l}, Size: 30})
		if !near(end[0], 3) {
			t.Fatalf("ended at %v, want 3", end[0])
		}
	})
	t.Run("two flows on one link get half each", func(t *testing.T) {
		var n Network
		l := n.AddLink(10)
		a, b := &Flow{Links: []Link{l}, Size: 10}, &Flow{Links: []Link{l}, Size: 10}
		n.Start(a)
		n.Start(b)
		n.solve()
		if !near(a.rate, 5) || !near(b.rate, 5) {
			t.Fatalf("rates %v %v, want 5 5", a.rate, b.rate)
		}
		if err := n.Run(); err != nil || !near(n.Now(), 2) {
			t.Fatalf("ended at %v (%v), want 2", n.Now(), err)
		}
	})
	t.Run("a flow held by a narrow link leaves the rest to the other", func(t *testing.T) {
		// a over A (10) and B (2); b over A only: a gets 2, b gets 8.
		var n Network
		A, B := n.AddLink(10), n.AddLink(2)
		a, b := &Flow{Links: []Link{A, B}, Size: 4}, &Flow{Links: []Link{A}, Size: 16}
		n.Start(a)
		n.Start(b)
		n.solve()
		if !near(a.rate, 2) || !near(b.rate, 8) {
			t.Fatalf("rates %v %v, want 2 8", a.rate, b.rate)
		}
		end := run(t, &n)
		_ = end
		if !near(n.Now(), 2) {
			t.Fatalf("ended at %v, want 2", n.Now())
		}
	})
	t.Run("a flow that ends frees its share", func(t *testing.T) {
		// 10 and 20 bytes over one 10 B/s link: 5 each until t=2, then
		// the second alone at 10 for its last 10 bytes: t=3.
		var n Network
		l := n.AddLink(10)
		end := run(t, &n, &Flow{Links: []Link{l}, Size: 10}, &Flow{Links: []Link{l}, Size: 20})
		if !near(end[0], 2) || !near(end[1], 3) {
			t.Fatalf("ended at %v, want [2 3]", end)
		}
	})
	t.Run("three links, classic max-min", func(t *testing.T) {
		// Links X=1, Y=2. f1 over X and Y, f2 over X, f3 over Y.
		// X is the bottleneck: f1 = f2 = 0.5; f3 takes Y's rest, 1.5.
		var n Network
		X, Y := n.AddLink(1), n.AddLink(2)
		f1 := &Flow{Links: []Link{X, Y}, Size: 1}
		f2 := &Flow{Links: []Link{X}, Size: 1}
		f3 := &Flow{Links: []Link{Y}, Size: 1}
		for _, f := range []*Flow{f1, f2, f3} {
			n.Start(f)
		}
		n.solve()
		if !near(f1.rate, 0.5) || !near(f2.rate, 0.5) || !near(f3.rate, 1.5) {
			t.Fatalf("rates %v %v %v, want 0.5 0.5 1.5", f1.rate, f2.rate, f3.rate)
		}
	})
	t.Run("a capped flow leaves the rest", func(t *testing.T) {
		var n Network
		l := n.AddLink(10)
		a, b := &Flow{Links: []Link{l}, Size: 3, Cap: 3}, &Flow{Links: []Link{l}, Size: 7}
		n.Start(a)
		n.Start(b)
		for _, f := range n.flows {
			f.effCap = f.Cap
		}
		n.solve()
		if !near(a.rate, 3) || !near(b.rate, 7) {
			t.Fatalf("rates %v %v, want 3 7", a.rate, b.rate)
		}
		if err := n.Run(); err != nil || !near(n.Now(), 1) {
			t.Fatalf("ended at %v (%v), want 1", n.Now(), err)
		}
	})
	t.Run("a cap above the fair share changes nothing", func(t *testing.T) {
		var n Network
		l := n.AddLink(10)
		end := run(t, &n, &Flow{Links: []Link{l}, Size: 10, Cap: 100}, &Flow{Links: []Link{l}, Size: 10})
		if !near(end[0], 2) || !near(end[1], 2) {
			t.Fatalf("ended at %v, want [2 2]", end)
		}
	})
	t.Run("flows started by a flow's end", func(t *testing.T) {
		// A chain of three 10-byte flows over one 5 B/s link: 2, 4, 6 s.
		var n Network
		l := n.AddLink(5)
		var ends []float64
		var next func(k int) *Flow
		next = func(k int) *Flow {
			return &Flow{Links: []Link{l}, Size: 10, Done: func(now float64) {
				ends = append(ends, now)
				if k < 2 {
					n.Start(next(k + 1))
				}
			}}
		}
		n.Start(next(0))
		if err := n.Run(); err != nil {
			t.Fatal(err)
		}
		if len(ends) != 3 || !near(ends[0], 2) || !near(ends[1], 4) || !near(ends[2], 6) {
			t.Fatalf("ends %v, want [2 4 6]", ends)
		}
	})
}

// TestCutThrough: a follower never has more bytes than its leader.
func TestCutThrough(t *testing.T) {
	t.Run("a fast follower moves at its slow leader's rate", func(t *testing.T) {
		// Leader: 10 bytes over a 2 B/s link (the origin path); follower:
		// the same 10 bytes over a 10 B/s link. Both end at 5 s.
		var n Network
		slow, fast := n.AddLink(2), n.AddLink(10)
		lead := &Flow{Links: []Link{slow}, Size: 10}
		end := run(t, &n, lead, &Flow{Links: []Link{fast}, Size: 10, Follow: lead})
		if !near(end[0], 5) || !near(end[1], 5) {
			t.Fatalf("ended at %v, want [5 5]", end)
		}
	})
	t.Run("what a capped follower leaves goes to the others", func(t *testing.T) {
		// Follower and another flow share a 10 B/s link; the follower's
		// leader moves at 2, so the other flow gets 8.
		var n Network
		slow, shared := n.AddLink(2), n.AddLink(10)
		lead := &Flow{Links: []Link{slow}, Size: 10}
		f := &Flow{Links: []Link{shared}, Size: 10, Follow: lead}
		o := &Flow{Links: []Link{shared}, Size: 100}
		n.Start(lead)
		n.Start(f)
		n.Start(o)
		if err := n.step(); err != nil {
			t.Fatal(err)
		}
		// One step to t=5: leader and follower done, the other at 8 B/s.
		if !near(n.Now(), 5) || !f.Finished() || !near(o.Delivered(), 40) {
			t.Fatalf("at %v: follower done %v, other %v bytes; want 5, true, 40", n.Now(), f.Finished(), o.Delivered())
		}
	})
	t.Run("a late follower catches up, then follows", func(t *testing.T) {
		// Leader: 10 bytes at 2 B/s from t=0. A 2.5-byte flow at 1 B/s
		// starts the follower at t=2.5 (leader at 5 bytes); at 10 B/s it
		// catches up at t=25/8 and then both end at t=5.
		var n Network
		slow, fast, timer := n.AddLink(2), n.AddLink(10), n.AddLink(1)
		lead := &Flow{Links: []Link{slow}, Size: 10}
		var fEnd, caught float64
		f := &Flow{Links: []Link{fast}, Size: 10, Follow: lead, Done: func(now float64) { fEnd = now }}
		n.Start(lead)
		n.Start(&Flow{Links: []Link{timer}, Size: 2.5, Done: func(float64) { n.Start(f) }})
		for n.Active() > 0 {
			if err := n.step(); err != nil {
				t.Fatal(err)
			}
			if caught == 0 && f.seq != 0 && caughtUp(f) {
				caught = n.Now()
			}
		}
		if !near(caught, 25.0/8) || !near(fEnd, 5) {
			t.Fatalf("caught up at %v, ended at %v; want 3.125 and 5", caught, fEnd)
		}
	})
	t.Run("a follower of a finished flow is free", func(t *testing.T) {
		var n Network
		slow, fast := n.AddLink(2), n.AddLink(10)
		lead := &Flow{Links: []Link{slow}, Size: 10}
		var end float64
		lead.Done = func(float64) {
			n.Start(&Flow{Links: []Link{fast}, Size: 10, Follow: lead, Done: func(now float64) { end = now }})
		}
		n.Start(lead)
		if err := n.Run(); err != nil || !near(end, 6) {
			t.Fatalf("ended at %v (%v), want 6", end, err)
		}
	})
}

// TestQuantum: flows that end within one quantum end in one step.
func TestQuantum(t *testing.T) {
	n := Network{Quantum: 0.01}
	ls := []Link{n.AddLink(10), n.AddLink(10), n.AddLink(10)}
	for i, l := range ls {
		n.Start(&Flow{Links: []Link{l}, Size: 10 + float64(i)*0.01})
	}
	if err := n.Run(); err != nil {
		t.Fatal(err)
	}
	if n.Steps() != 1 {
		t.Fatalf("%d steps, want 1", n.Steps())
	}
	if math.Abs(n.Now()-1) > 0.01 {
		t.Fatalf("ended at %v, want 1 within a quantum", n.Now())
	}
}

// TestBadFlows: what cannot move is an error, not a hang.
func TestBadFlows(t *testing.T) {
	var n Network
	l := n.AddLink(1)
	lead := &Flow{Links: []Link{l}, Size: 1}
	f := &Flow{Links: []Link{l}, Size: 1, Follow: lead}
	// The follower is started, its leader never is: the follower
	// follows a flow at 0 bytes and rate 0 forever.
	n.Start(f)
	if err := n.Run(); !errors.Is(err, ErrStuck) {
		t.Fatalf("Run: %v, want ErrStuck", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a flow over no link without a cap was accepted")
		}
	}()
	n.Start(&Flow{Size: 1})
}
