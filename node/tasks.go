package node

import (
	"context"
	"sync"
)

// Background work that readers start but do not wait for (home
// read-ahead, manifest lookups) is queued as tasks and run by a bounded
// pool of workers that Run owns: nothing runs on a goroutine nobody waits
// for, and a burst of reads cannot start an unbounded number of fetches.
const (
	// backgroundWorkers runs this many tasks at once: a home's read-ahead
	// for two or three versions read at once plus the manifest lookups of
	// their first chunks. Read-ahead fetches are bounded again by the
	// origin fetcher's slots and order gate.
	backgroundWorkers = 8
	// backgroundQueue bounds tasks waiting for a worker; beyond it a task
	// is dropped and counted (the work is an optimisation: a dropped
	// read-ahead is fetched when a reader asks, a dropped lookup leaves
	// the chunks to their homes).
	backgroundQueue = 1024
)

// tasks is a bounded queue of background work.
type tasks struct {
	queue chan func(context.Context)

	mu      sync.Mutex // guards running and stopped
	running bool       // a Run is taking tasks
	stopped bool       // Close was called: take nothing more
}

func newTasks(depth int) *tasks {
	return &tasks{queue: make(chan func(context.Context), depth)}
}

// submit queues fn; it reports false (and fn never runs) when the queue is
// full or no Run is taking tasks. It never blocks.
func (t *tasks) submit(fn func(ctx context.Context)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.running || t.stopped {
		return false
	}
	select {
	case t.queue <- fn:
		return true
	default:
		return false
	}
}

// run takes tasks on workers goroutines until ctx ends, then runs what is
// still queued with the ended context (so that whoever waits on a task's
// outcome hears of it) and returns when every worker is done.
func (t *tasks) run(ctx context.Context, workers int) {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.running = true
	t.mu.Unlock()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case fn := <-t.queue:
					fn(ctx)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	t.mu.Lock()
	t.running = false
	t.mu.Unlock()
	for {
		select {
		case fn := <-t.queue:
			fn(ctx)
		default:
			return
		}
	}
}

// stop refuses further tasks.
func (t *tasks) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
}
