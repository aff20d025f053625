package blockstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/content"
)

// TieredConfig configures the tiered store.
type TieredConfig struct {
	// QueueLength bounds the disk writes waiting for the writer goroutine.
	// When it is full, an unpinned Put skips the disk (counted as a dropped
	// write) instead of waiting. Default 32: 128 MiB of 4 MiB chunks, about
	// half a second of SSD write bandwidth, held beyond the memory budget at
	// worst.
	QueueLength int
	// MaxMemoryPinnedRatio is the share of the memory budget that pinned
	// blocks may hold pinned in memory; beyond it they are pinned on disk
	// only and cached in memory like any block. Default 0.5, so pins cannot
	// starve the memory cache.
	MaxMemoryPinnedRatio float64
}

// Tiered defaults.
const (
	DefaultQueueLength          = 32
	DefaultMaxMemoryPinnedRatio = 0.5
)

func (c TieredConfig) withDefaults() TieredConfig {
	if c.QueueLength == 0 {
		c.QueueLength = DefaultQueueLength
	}
	if c.MaxMemoryPinnedRatio == 0 {
		c.MaxMemoryPinnedRatio = DefaultMaxMemoryPinnedRatio
	}
	return c
}

// Validate reports a configuration error. Zero values mean "default".
func (c TieredConfig) Validate() error {
	c = c.withDefaults()
	if c.QueueLength < 0 {
		return fmt.Errorf("blockstore: tiered queue length %d < 0", c.QueueLength)
	}
	if c.MaxMemoryPinnedRatio < 0 || c.MaxMemoryPinnedRatio > 1 {
		return fmt.Errorf("blockstore: tiered max memory pinned ratio %v not in [0,1]", c.MaxMemoryPinnedRatio)
	}
	return nil
}

// TieredOption injects a collaborator into a Tiered.
type TieredOption func(*tieredOptions)

type tieredOptions struct {
	logger *slog.Logger
	reg    prometheus.Registerer
}

// WithTieredLogger sets the logger (default: discard).
func WithTieredLogger(l *slog.Logger) TieredOption { return func(o *tieredOptions) { o.logger = l } }

// WithTieredRegisterer registers the tiered store's metrics (default: none).
func WithTieredRegisterer(r prometheus.Registerer) TieredOption {
	return func(o *tieredOptions) { o.reg = r }
}

type pendingWrite struct {
	c    cid.Cid
	data []byte
}

// Tiered composes a Memory and a Disk. Get reads memory, then blocks queued
// for disk, then disk (promoting disk hits into memory). Put stores into
// memory synchronously and queues the disk write for a writer goroutine, so
// no reader or unpinned writer ever waits for the SSD: when the queue is
// full the disk write is dropped and counted, and the block stays in memory.
// Pins go to both tiers (persistent on disk; pinned blocks are queued for
// disk even when the queue is full, waiting for room).
//
// NewTiered starts the writer goroutine; Close stops it after draining the
// queue and then closes both tiers, which the Tiered owns. Run the Disk's
// Run alongside for index maintenance.
type Tiered struct {
	cfg      TieredConfig
	mem      *Memory
	disk     *Disk
	log      *slog.Logger
	metrics  *tierMetrics
	removals *Removals // blocks that left every tier
	queue    chan *pendingWrite
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when the writer returns

	mu           sync.Mutex // guards every field below
	closed       bool
	pending      map[cid.Cid]*pendingWrite // queued or being written
	pendingBytes int64
	idle         chan struct{} // closed when pending becomes empty
	hits         int64
	misses       int64
	dropped      int64
	recent       recentReads           // disk reads not promoted (see promotes)
	reads        map[cid.Cid]*diskRead // disk reads in progress (readDisk)

	bufs bufPool // Borrow's read buffers
}

var _ Store = (*Tiered)(nil)

// NewTiered composes mem and disk and starts the disk writer. It takes
// ownership of both: Close closes them.
func NewTiered(mem *Memory, disk *Disk, cfg TieredConfig, opts ...TieredOption) (*Tiered, error) {
	if mem == nil || disk == nil {
		return nil, errors.New("blockstore: tiered needs a memory and a disk tier")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o tieredOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	m, err := newTierMetrics(o.reg, tierTiered, 0)
	if err != nil {
		return nil, fmt.Errorf("blockstore: tiered metrics: %w", err)
	}
	cfg = cfg.withDefaults()
	idle := make(chan struct{})
	close(idle)
	t := &Tiered{
		cfg:      cfg,
		mem:      mem,
		disk:     disk,
		log:      o.logger.With("component", "blockstore", "tier", tierTiered),
		metrics:  m,
		removals: NewRemovals(),
		queue:    make(chan *pendingWrite, cfg.QueueLength),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		pending:  make(map[cid.Cid]*pendingWrite),
		reads:    make(map[cid.Cid]*diskRead),
		idle:     idle,
	}
	mem.setOnEvict(t.memEvicted)
	disk.setOnEvict(t.diskEvicted)
	go t.writer()
	return t, nil
}

// Get returns the block from memory, the disk queue or disk, or ErrNotFound.
// A disk hit is verified and promoted into memory as promotes says;
// concurrent disk reads of one block share one read.
func (t *Tiered) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := t.checkOpen("get"); err != nil {
		return nil, err
	}
	if data, ok, err := t.cached(ctx, c); ok || err != nil {
		return data, err
	}
	promote := t.promotes(c)
	data, err := t.readDisk(ctx, c, promote)
	if err == nil && !promote {
		t.noteDiskRead(c, len(data))
	}
	return data, err
}

// readDisk reads c from disk (verified) into a new buffer and, if promote,
// puts it into memory. Concurrent reads of one block share one disk read
// and verification (several peers or readers asking for the same block at
// once, as in a swarm reading one object); the first reader decides about
// promotion.
func (t *Tiered) readDisk(ctx context.Context, c cid.Cid, promote bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	r, shared := t.reads[c]
	if !shared {
		r = &diskRead{done: make(chan struct{})}
		t.reads[c] = r
	}
	t.mu.Unlock()
	if shared {
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	} else {
		// The read is shared: one caller giving up must not fail the others
		// (and a file read is not interruptible anyway).
		r.data, r.err = t.disk.Get(context.WithoutCancel(ctx), c)
		if r.err == nil && promote {
			if perr := t.mem.putVerified(c, r.data); perr == nil && t.disk.isPinned(c) {
				t.mem.pinWithin(c, t.maxMemPinned())
			}
		}
		t.mu.Lock()
		delete(t.reads, c)
		t.mu.Unlock()
		close(r.done)
	}
	if r.err != nil {
		if errors.Is(r.err, ErrNotFound) {
			t.count(&t.misses, t.metrics.miss)
		}
		return nil, r.err
	}
	t.hit(len(r.data))
	return r.data, nil
}

// diskRead is one disk read of a block shared by concurrent readers.
type diskRead struct {
	done chan struct{} // closed when data and err are set
	data []byte
	err  error
}

func (t *Tiered) count(n *int64, metric func()) {
	t.mu.Lock()
	*n++
	t.mu.Unlock()
	metric()
}

// hit counts a read served of n bytes.
func (t *Tiered) hit(n int) {
	t.mu.Lock()
	t.hits++
	t.mu.Unlock()
	t.metrics.hit(n)
}

func (t *Tiered) maxMemPinned() int64 {
	return int64(float64(t.mem.cfg.BudgetBytes) * t.cfg.MaxMemoryPinnedRatio)
}

func (t *Tiered) checkOpen(op string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("blockstore: tiered %s: %w", op, ErrClosed)
	}
	return nil
}

// Has reports whether any tier holds the block.
func (t *Tiered) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := t.checkOpen("has"); err != nil {
		return false, err
	}
	if ok, err := t.mem.Has(ctx, c); err != nil || ok {
		return ok, err
	}
	t.mu.Lock()
	_, ok := t.pending[c]
	t.mu.Unlock()
	if ok {
		return true, nil
	}
	return t.disk.Has(ctx, c)
}

// Put verifies data, stores it in memory and queues it for disk. It fails
// only if neither tier can take the block (ErrFull/ErrTooLarge) or the store
// is closed. The slice is kept: callers must not modify it afterwards.
func (t *Tiered) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := verify("tiered put", c, data); err != nil {
		return err
	}
	return t.put(ctx, c, data)
}

// PutBlock is Put for a block whose bytes were already hashed or verified
// (a content.Block proves it), so they are not hashed again.
func (t *Tiered) PutBlock(ctx context.Context, b content.Block) error {
	if !b.CID().Defined() {
		return fmt.Errorf("blockstore: tiered put: empty block: %w", ErrHashMismatch)
	}
	return t.put(ctx, b.CID(), b.Data())
}

func (t *Tiered) put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := t.checkOpen("put"); err != nil {
		return err
	}
	if budget := t.disk.cfg.BudgetBytes; int64(len(data)) > budget {
		return fmt.Errorf("blockstore: tiered put %s (%d bytes, disk budget %d): %w", c, len(data), budget, ErrTooLarge)
	}
	pinned := t.disk.isPinned(c)
	memErr := t.mem.putVerified(c, data)
	switch {
	case memErr == nil:
		if pinned {
			t.mem.pinWithin(c, t.maxMemPinned())
		}
	case errors.Is(memErr, ErrFull), errors.Is(memErr, ErrTooLarge):
		// The disk may still take it.
	default:
		return memErr
	}
	if onDisk, err := t.disk.Has(ctx, c); err != nil || onDisk {
		return err
	}
	queued, err := t.enqueue(ctx, c, data, pinned)
	if err != nil {
		return err
	}
	if !queued && memErr != nil {
		return fmt.Errorf("blockstore: tiered put %s: memory: %w; disk queue full", c, memErr)
	}
	return nil
}

// enqueue queues a disk write. Unpinned writes never wait: with a full
// queue they are dropped (queued == false). Pinned writes wait for room.
func (t *Tiered) enqueue(ctx context.Context, c cid.Cid, data []byte, wait bool) (queued bool, err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false, fmt.Errorf("blockstore: tiered put: %w", ErrClosed)
	}
	if _, ok := t.pending[c]; ok {
		t.mu.Unlock()
		return true, nil
	}
	w := &pendingWrite{c: c, data: data}
	select {
	case t.queue <- w:
		t.addPendingLocked(w)
		t.mu.Unlock()
		return true, nil
	default:
	}
	if !wait {
		t.dropped++
		t.mu.Unlock()
		t.metrics.droppedWrite()
		t.log.Debug("disk write queue full; block kept in memory only", "cid", c)
		return false, nil
	}
	// Register first so readers find it while we wait for room.
	t.addPendingLocked(w)
	t.mu.Unlock()
	select {
	case t.queue <- w:
		return true, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.stop:
		err = fmt.Errorf("blockstore: tiered put: %w", ErrClosed)
	}
	t.mu.Lock()
	if t.pending[c] == w {
		t.removePendingLocked(c)
	}
	t.mu.Unlock()
	return false, err
}

func (t *Tiered) addPendingLocked(w *pendingWrite) {
	if len(t.pending) == 0 {
		t.idle = make(chan struct{})
	}
	t.pending[w.c] = w
	t.pendingBytes += int64(len(w.data))
}

func (t *Tiered) removePendingLocked(c cid.Cid) {
	w, ok := t.pending[c]
	if !ok {
		return
	}
	delete(t.pending, c)
	t.pendingBytes -= int64(len(w.data))
	if len(t.pending) == 0 {
		close(t.idle)
	}
}

// writer drains the queue into the disk tier until Close, then writes what
// is left in the queue and returns.
func (t *Tiered) writer() {
	defer close(t.done)
	for {
		select {
		case w := <-t.queue:
			t.write(w)
		case <-t.stop:
			for {
				select {
				case w := <-t.queue:
					t.write(w)
				default:
					return
				}
			}
		}
	}
}

func (t *Tiered) write(w *pendingWrite) {
	t.mu.Lock()
	current := t.pending[w.c] == w
	t.mu.Unlock()
	if !current {
		return // deleted while queued
	}
	err := t.disk.putVerified(context.Background(), w.c, w.data)
	t.mu.Lock()
	current = t.pending[w.c] == w
	_, replaced := t.pending[w.c]
	replaced = replaced && !current
	if current {
		t.removePendingLocked(w.c)
	}
	t.mu.Unlock()
	switch {
	case err != nil:
		if errors.Is(err, ErrNoSpace) {
			// The disk tier says so once, loudly, when it fills.
			t.log.Debug("disk full; block kept in memory only", "cid", w.c, "err", err)
		} else {
			t.log.Warn("disk write failed; block kept in memory only", "cid", w.c, "err", err)
		}
		if current {
			t.removedUnlessHeld(w.c)
		}
	case !current && !replaced:
		// Deleted while being written: undo.
		if derr := t.disk.Delete(context.Background(), w.c); derr != nil && !errors.Is(derr, ErrClosed) {
			t.log.Warn("delete after write", "cid", w.c, "err", derr)
		}
	}
}

// Flush waits until every queued disk write has been done (or ctx ends).
func (t *Tiered) Flush(ctx context.Context) error {
	t.mu.Lock()
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Removals is the feed of blocks that left the store entirely.
func (t *Tiered) Removals() *Removals { return t.removals }

// memEvicted and diskEvicted translate tier evictions into removals of
// blocks that no tier holds any more.
func (t *Tiered) memEvicted(cids []cid.Cid) {
	for _, c := range cids {
		t.removedUnlessHeld(c)
	}
}

func (t *Tiered) diskEvicted(cids []cid.Cid) {
	for _, c := range cids {
		t.removedUnlessHeld(c)
	}
}

func (t *Tiered) removedUnlessHeld(c cid.Cid) {
	t.mu.Lock()
	_, pending := t.pending[c]
	t.mu.Unlock()
	if pending {
		return
	}
	ctx := context.Background()
	if ok, err := t.mem.Has(ctx, c); err == nil && ok {
		return
	}
	if ok, err := t.disk.Has(ctx, c); err == nil && ok {
		return
	}
	t.removals.Add(c)
}

// Delete removes the block and its pin from every tier.
func (t *Tiered) Delete(ctx context.Context, c cid.Cid) error {
	if err := t.checkOpen("delete"); err != nil {
		return err
	}
	t.mu.Lock()
	_, wasPending := t.pending[c]
	t.removePendingLocked(c)
	t.mu.Unlock()
	inMem, _ := t.mem.Has(ctx, c)
	onDisk, _ := t.disk.Has(ctx, c)
	err := errors.Join(t.mem.Delete(ctx, c), t.disk.Delete(ctx, c))
	if err == nil && (wasPending || inMem || onDisk) {
		t.removals.Add(c)
	}
	return err
}

// Pin pins c on disk (persistently) and, room permitting, in memory. A
// pinned block held only in memory is queued for disk, waiting for room.
func (t *Tiered) Pin(ctx context.Context, c cid.Cid) error {
	if err := t.checkOpen("pin"); err != nil {
		return err
	}
	if err := t.disk.Pin(ctx, c); err != nil {
		return err
	}
	if !t.mem.pinWithin(c, t.maxMemPinned()) {
		if ok, _ := t.mem.Has(ctx, c); !ok {
			return nil
		}
	}
	if onDisk, err := t.disk.Has(ctx, c); err != nil || onDisk {
		return err
	}
	data, err := t.mem.Get(ctx, c)
	if err != nil {
		return nil // evicted meanwhile; nothing to write
	}
	_, err = t.enqueue(ctx, c, data, true)
	return err
}

// Unpin releases the pin in both tiers.
func (t *Tiered) Unpin(ctx context.Context, c cid.Cid) error {
	if err := t.checkOpen("unpin"); err != nil {
		return err
	}
	return errors.Join(t.disk.Unpin(ctx, c), t.mem.Unpin(ctx, c))
}

// AllKeys calls fn for every held block until fn returns false: disk
// blocks first, then blocks held only in memory or the disk queue. A block
// moving between tiers during the walk may be reported twice.
func (t *Tiered) AllKeys(ctx context.Context, fn func(cid.Cid) bool) error {
	if err := t.checkOpen("all keys"); err != nil {
		return err
	}
	stopped := false
	if err := t.disk.AllKeys(ctx, func(c cid.Cid) bool {
		stopped = !fn(c)
		return !stopped
	}); err != nil || stopped {
		return err
	}
	t.mu.Lock()
	extra := make([]cid.Cid, 0, len(t.pending))
	for c := range t.pending {
		extra = append(extra, c)
	}
	t.mu.Unlock()
	seen := make(map[cid.Cid]struct{}, len(extra))
	if err := t.mem.AllKeys(ctx, func(c cid.Cid) bool {
		extra = append(extra, c)
		return true
	}); err != nil {
		return err
	}
	for _, c := range extra {
		if _, dup := seen[c]; dup {
			continue
		}
		seen[c] = struct{}{}
		if onDisk, _ := t.disk.Has(ctx, c); onDisk {
			continue
		}
		if !fn(c) {
			return nil
		}
	}
	return ctx.Err()
}

// Stats reports the store as a whole: blocks and bytes on disk plus those
// queued for disk (budget, pins, evictions and corruption are the disk
// tier's), and hits/misses of Tiered.Get. Blocks held only in memory after
// a dropped disk write are not counted; see TierStats.
func (t *Tiered) Stats() Stats {
	ds := t.disk.Stats()
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{
		Blocks:      ds.Blocks + int64(len(t.pending)),
		Bytes:       ds.Bytes + t.pendingBytes,
		BudgetBytes: ds.BudgetBytes,
		Pinned:      ds.Pinned,
		PinnedBytes: ds.PinnedBytes,
		Hits:        t.hits,
		Misses:      t.misses,
		Evictions:   ds.Evictions,
		Corrupt:     ds.Corrupt,
	}
}

// TierStats returns each tier's own Stats.
func (t *Tiered) TierStats() (memory, disk Stats) {
	return t.mem.Stats(), t.disk.Stats()
}

// DroppedWrites counts disk writes skipped because the queue was full.
func (t *Tiered) DroppedWrites() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Close stops the writer after it drains the queue, then closes both tiers.
func (t *Tiered) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("blockstore: tiered close: %w", ErrClosed)
	}
	t.closed = true
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	return errors.Join(t.mem.Close(), t.disk.Close())
}
