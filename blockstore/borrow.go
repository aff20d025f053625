package blockstore

import (
	"container/list"
	"context"
	"errors"

	"github.com/ipfs/go-cid"
)

// Borrow is Get for a caller that hands the bytes back when it is done,
// such as a reader streaming them to a client. It returns the block's bytes
// (read-only) and release, which the caller must call exactly once after
// its last use of the bytes; release is never nil, also on error.
//
// A disk hit that is not promoted (see promotes) is read into a recycled
// buffer (release returns it), so a stream of disk hits does not allocate
// and zero a block per read. Memory hits, queued blocks and promoted disk
// hits are shared with the memory tier; their release does nothing.
func (t *Tiered) Borrow(ctx context.Context, c cid.Cid) (data []byte, release func(), err error) {
	if err := t.checkOpen("get"); err != nil {
		return nil, noRelease, err
	}
	if data, ok, err := t.cached(ctx, c); ok || err != nil {
		return data, noRelease, err
	}
	if t.promotes(c) {
		data, err := t.readDisk(ctx, c, true)
		return data, noRelease, err
	}
	data, err = t.disk.getInto(ctx, c, t.bufs.get, t.bufs.put)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			t.count(&t.misses, t.metrics.miss)
		}
		return nil, noRelease, err
	}
	t.noteDiskRead(c, len(data))
	t.hit(len(data))
	return data, func() { t.bufs.put(data) }, nil
}

// cached returns c from the memory tier or the disk write queue; ok
// reports a hit, err a memory tier failure other than a miss.
func (t *Tiered) cached(ctx context.Context, c cid.Cid) (data []byte, ok bool, err error) {
	if data, err := t.mem.Get(ctx, c); err == nil {
		t.hit(len(data))
		return data, true, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	t.mu.Lock()
	w := t.pending[c]
	t.mu.Unlock()
	if w != nil {
		t.hit(len(w.data))
		return w.data, true, nil
	}
	return nil, false, nil
}

// promotes reports whether a disk hit of c goes into memory (Get and
// Borrow): only if the block is pinned or was read from disk not long
// before, within the last memory budget's worth of disk reads (by bytes).
// A block that comes back that soon would have stayed in memory; one that
// does not (a one-off read, a sequential read of an object larger than the
// memory tier, a peer scanning an object that lives on disk) would only
// evict memory's hot set before being read again; promoting every hit of
// such a scan evicted the oldest block in memory, typically the very block
// the scan asked for next.
func (t *Tiered) promotes(c cid.Cid) bool {
	return t.seenOnDisk(c) || t.disk.isPinned(c)
}

func noRelease() {}

// recentReads remembers the blocks read from disk by Get and Borrow without being
// promoted, newest first, up to the memory budget in bytes.
type recentReads struct {
	order list.List // of recentRead
	index map[cid.Cid]*list.Element
	bytes int64
}

type recentRead struct {
	c    cid.Cid
	size int64
}

// seenOnDisk reports whether c was read from disk recently, and forgets it
// if so (it is about to be promoted).
func (t *Tiered) seenOnDisk(c cid.Cid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.recent.index[c]
	if !ok {
		return false
	}
	t.recent.order.Remove(e)
	delete(t.recent.index, c)
	t.recent.bytes -= e.Value.(recentRead).size
	return true
}

// noteDiskRead records a disk read of c, dropping the oldest records beyond
// the memory budget.
func (t *Tiered) noteDiskRead(c cid.Cid, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &t.recent
	if r.index == nil {
		r.index = make(map[cid.Cid]*list.Element)
	}
	if _, ok := r.index[c]; ok {
		return
	}
	r.index[c] = r.order.PushFront(recentRead{c: c, size: int64(size)})
	r.bytes += int64(size)
	for r.bytes > t.mem.cfg.BudgetBytes && r.order.Len() > 1 {
		old := r.order.Remove(r.order.Back()).(recentRead)
		delete(r.index, old.c)
		r.bytes -= old.size
	}
}
