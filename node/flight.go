package node

import (
	"context"
	"sync"
)

// flight is a singleflight whose shared call runs detached from the caller
// that started it: it is cancelled only when every caller waiting for it
// has gone away (or the node closes), and a call whose callers all left is
// forgotten so that the next caller starts afresh.
type flight[T any] struct {
	base context.Context
	wg   *sync.WaitGroup

	mu    sync.Mutex          // guards calls and call.waiters
	calls map[string]*call[T] // in-flight calls by key
}

type call[T any] struct {
	done    chan struct{} // closed when val and err are set
	val     T
	err     error
	waiters int // callers still waiting; guarded by flight.mu
	cancel  context.CancelFunc
}

func newFlight[T any](base context.Context, wg *sync.WaitGroup) *flight[T] {
	return &flight[T]{base: base, wg: wg, calls: make(map[string]*call[T])}
}

// Do returns fn's result for key, running fn at most once at a time per key.
// shared reports whether this caller joined a call started by another.
func (g *flight[T]) Do(ctx context.Context, key string, fn func(ctx context.Context) (T, error)) (v T, shared bool, err error) {
	g.mu.Lock()
	c, ok := g.calls[key]
	if ok {
		c.waiters++
		shared = true
	} else {
		if err := g.base.Err(); err != nil {
			g.mu.Unlock()
			return v, false, ErrClosed
		}
		fctx, cancel := context.WithCancel(g.base)
		c = &call[T]{done: make(chan struct{}), waiters: 1, cancel: cancel}
		g.calls[key] = c
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer cancel()
			c.val, c.err = fn(fctx)
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.done)
		}()
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, shared, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			c.cancel()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		var zero T
		return zero, shared, ctx.Err()
	}
}
