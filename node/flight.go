package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// flight is a singleflight whose shared call runs detached from the caller
// that started it: it is cancelled only when every caller holding a ticket
// for it has left (or the node closes), and a call whose callers all left
// is forgotten so that the next caller starts afresh. A running call may
// publish one progress value P once (a chunk fetch publishes the origin
// read it is writing into), which every ticket holder can see: holders
// wait on their own call, never on a node-wide signal.
type flight[T, P any] struct {
	base context.Context
	wg   *sync.WaitGroup // the calls' goroutines (the node's Close waits)

	mu    sync.Mutex             // guards calls and each call's waiters
	calls map[string]*call[T, P] // in-flight calls by key
}

type call[T, P any] struct {
	done    chan struct{} // closed when val and err are set
	val     T
	err     error
	waiters int // tickets not yet left; guarded by flight.mu
	cancel  context.CancelFunc

	pub      sync.Once
	progress P             // set once, before published is closed
	shown    chan struct{} // closed when progress is set
}

func newFlight[T, P any](base context.Context, wg *sync.WaitGroup) *flight[T, P] {
	return &flight[T, P]{base: base, wg: wg, calls: make(map[string]*call[T, P])}
}

// ticket is one caller's hold on a call.
type ticket[T, P any] struct {
	g      *flight[T, P]
	key    string
	c      *call[T, P]
	shared bool // the call was started by another caller
	once   sync.Once
}

// join returns a ticket for key's call, starting fn in a goroutine if no
// call runs. fn gets the call's context (cancelled when every holder has
// left) and a function that publishes its progress once.
func (g *flight[T, P]) join(key string, fn func(ctx context.Context, publish func(P)) (T, error)) (*ticket[T, P], error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		c.waiters++
		return &ticket[T, P]{g: g, key: key, c: c, shared: true}, nil
	}
	if g.base.Err() != nil {
		return nil, ErrClosed
	}
	fctx, cancel := context.WithCancel(g.base)
	c := &call[T, P]{done: make(chan struct{}), shown: make(chan struct{}), waiters: 1, cancel: cancel}
	g.calls[key] = c
	publish := func(p P) {
		c.pub.Do(func() {
			c.progress = p
			close(c.shown)
		})
	}
	g.wg.Go(func() {
		defer cancel()
		c.val, c.err = fn(fctx, publish)
		g.mu.Lock()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
		g.mu.Unlock()
		close(c.done)
	})
	return &ticket[T, P]{g: g, key: key, c: c}, nil
}

// Do returns fn's result for key, running fn at most once at a time per key.
// shared reports whether this caller joined a call started by another.
func (g *flight[T, P]) Do(ctx context.Context, key string, fn func(ctx context.Context) (T, error)) (v T, shared bool, err error) {
	t, err := g.join(key, func(ctx context.Context, _ func(P)) (T, error) { return fn(ctx) })
	if err != nil {
		return v, false, err
	}
	v, err = t.wait(ctx)
	return v, t.shared, err
}

// wait returns the call's result, or leaves the call and returns ctx's
// error if ctx ends first.
func (t *ticket[T, P]) wait(ctx context.Context) (T, error) {
	select {
	case <-t.c.done:
		t.leave()
		return t.c.val, t.c.err
	case <-ctx.Done():
		t.leave()
		var zero T
		return zero, ctx.Err()
	}
}

// errWaitBound: a caller's bounded wait ended before the call did.
var errWaitBound = errors.New("node: gave up waiting")

// waitAtMost is wait for a caller who waits at most bound (bound <= 0: no
// bound). When the bound passes first it returns errWaitBound, and the
// ticket is kept until the call ends (by a goroutine counted in the
// flight's group), so the call goes on for the other holders and for the
// next caller instead of being cancelled with the last one who left.
func (t *ticket[T, P]) waitAtMost(ctx context.Context, bound time.Duration) (T, error) {
	if bound <= 0 {
		return t.wait(ctx)
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-t.c.done:
		t.leave()
		return t.c.val, t.c.err
	case <-ctx.Done():
		t.leave()
		var zero T
		return zero, ctx.Err()
	case <-timer.C:
		t.g.wg.Go(func() {
			<-t.c.done
			t.leave()
		})
		var zero T
		return zero, fmt.Errorf("%w after %v", errWaitBound, bound)
	}
}

// done is closed when the call has its result.
func (t *ticket[T, P]) done() <-chan struct{} { return t.c.done }

// result is the call's result; only after done is closed.
func (t *ticket[T, P]) result() (T, error) { return t.c.val, t.c.err }

// shown is closed once the call has published its progress.
func (t *ticket[T, P]) shown() <-chan struct{} { return t.c.shown }

// progress is the published progress; only after shown is closed.
func (t *ticket[T, P]) progress() P { return t.c.progress }

// leave gives the ticket back (once; later calls do nothing). The last
// holder to leave a call that has not finished cancels it.
func (t *ticket[T, P]) leave() {
	t.once.Do(func() {
		g, c := t.g, t.c
		g.mu.Lock()
		defer g.mu.Unlock()
		c.waiters--
		if c.waiters == 0 {
			select {
			case <-c.done:
			default:
				c.cancel()
				if g.calls[t.key] == c {
					delete(g.calls, t.key)
				}
			}
		}
	})
}
