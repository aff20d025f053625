package blockstore

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/content"
)

// MemoryConfig configures the memory tier.
type MemoryConfig struct {
	// BudgetBytes is the hard cap on payload bytes held (pinned included).
	// Default 512 MiB: 128 chunks of 4 MiB.
	BudgetBytes int64
	// SmallRatio is the share of the budget given to the S3-FIFO probation
	// queue where new blocks land. Default 0.1, the value the S3-FIFO paper
	// found robust across traces: a one-off scan can only flush this tenth.
	SmallRatio float64
	// GhostEntries bounds how many recently evicted CIDs are remembered
	// (keys only, ~100 B each) so a block that comes back soon skips
	// probation. Default 4096.
	GhostEntries int
}

// Memory defaults.
const (
	DefaultMemoryBudget = 512 << 20
	DefaultSmallRatio   = 0.1
	DefaultGhostEntries = 4096
	memFreqCap          = 3 // S3-FIFO saturates access counts at 3
)

func (c MemoryConfig) withDefaults() MemoryConfig {
	if c.BudgetBytes == 0 {
		c.BudgetBytes = DefaultMemoryBudget
	}
	if c.SmallRatio == 0 {
		c.SmallRatio = DefaultSmallRatio
	}
	if c.GhostEntries == 0 {
		c.GhostEntries = DefaultGhostEntries
	}
	return c
}

// Validate reports a configuration error. Zero values mean "default".
func (c MemoryConfig) Validate() error {
	c = c.withDefaults()
	if c.BudgetBytes < 0 {
		return fmt.Errorf("blockstore: memory budget %d < 0", c.BudgetBytes)
	}
	if c.SmallRatio <= 0 || c.SmallRatio >= 1 {
		return fmt.Errorf("blockstore: memory small ratio %v not in (0,1)", c.SmallRatio)
	}
	if c.GhostEntries < 0 {
		return fmt.Errorf("blockstore: memory ghost entries %d < 0", c.GhostEntries)
	}
	return nil
}

// MemoryOption injects a collaborator into a Memory.
type MemoryOption func(*memoryOptions)

type memoryOptions struct {
	logger *slog.Logger
	reg    prometheus.Registerer
}

// WithMemoryLogger sets the logger (default: discard).
func WithMemoryLogger(l *slog.Logger) MemoryOption {
	return func(o *memoryOptions) { o.logger = l }
}

// WithMemoryRegisterer registers the tier's metrics (default: none).
func WithMemoryRegisterer(r prometheus.Registerer) MemoryOption {
	return func(o *memoryOptions) { o.reg = r }
}

type memQueue uint8

const (
	queueNone  memQueue = iota // pinned: in no queue, never evicted
	queueSmall                 // probation FIFO
	queueMain                  // main FIFO with second chances
)

type memEntry struct {
	c      cid.Cid
	data   []byte
	freq   uint8 // accesses since insertion / last demotion, capped at memFreqCap
	queue  memQueue
	pinned bool
	elem   *list.Element // in small or main; nil when pinned
}

// Memory is the memory tier: a byte-budgeted S3-FIFO cache with pins.
//
// Policy (S3-FIFO, Yang et al., SOSP'23): a new block enters a small
// probation FIFO (SmallRatio of the budget). When the small queue is evicted,
// a block that was read while on probation moves to the main FIFO; one that
// was not is dropped and its CID remembered in a ghost FIFO. A block put
// again while its CID is a ghost goes straight to main. Main evicts from its
// tail, giving a block one more lap per recorded access (up to 3). One-off
// scans therefore churn through the small queue only and do not flush hot
// chunks in main. Pinned blocks sit outside both queues and are never
// evicted; they still count against the budget.
//
// Get returns the stored slice without copying: callers must not modify it.
// Put keeps the slice it is given: callers must not modify it afterwards.
type Memory struct {
	cfg     MemoryConfig
	log     *slog.Logger
	metrics *tierMetrics

	mu          sync.Mutex // guards every field below
	closed      bool
	entries     map[cid.Cid]*memEntry
	small, main list.List // of *memEntry; front = newest
	smallBytes  int64
	bytes       int64 // all payload bytes held, pinned included
	pinnedBytes int64
	pinnedCount int64
	pins        map[cid.Cid]struct{} // pins, held or not yet arrived
	ghost       list.List            // of cid.Cid; front = newest
	ghosts      map[cid.Cid]*list.Element
	hits        int64
	misses      int64
	evictions   int64
	onEvict     func([]cid.Cid) // set by Tiered; called without mu held
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory tier.
func NewMemory(cfg MemoryConfig, opts ...MemoryOption) (*Memory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o memoryOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	m, err := newTierMetrics(o.reg, tierMemory, cfg.BudgetBytes)
	if err != nil {
		return nil, fmt.Errorf("blockstore: memory metrics: %w", err)
	}
	return &Memory{
		cfg:     cfg.withDefaults(),
		log:     o.logger.With("component", "blockstore", "tier", tierMemory),
		metrics: m,
		entries: make(map[cid.Cid]*memEntry),
		pins:    make(map[cid.Cid]struct{}),
		ghosts:  make(map[cid.Cid]*list.Element),
	}, nil
}

// Get returns the block's bytes (not a copy: read-only) or ErrNotFound.
func (m *Memory) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("blockstore: memory get: %w", ErrClosed)
	}
	e, ok := m.entries[c]
	if !ok {
		m.misses++
		m.mu.Unlock()
		m.metrics.miss()
		return nil, fmt.Errorf("blockstore: memory get %s: %w", c, ErrNotFound)
	}
	if e.freq < memFreqCap {
		e.freq++
	}
	m.hits++
	data := e.data
	m.mu.Unlock()
	m.metrics.hit(len(data))
	return data, nil
}

// Has reports whether the block is held.
func (m *Memory) Has(_ context.Context, c cid.Cid) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, fmt.Errorf("blockstore: memory has: %w", ErrClosed)
	}
	_, ok := m.entries[c]
	return ok, nil
}

// Put verifies data against c and stores it, evicting unpinned blocks as
// needed. It returns ErrTooLarge if data exceeds the whole budget and ErrFull
// if pinned blocks leave no room.
func (m *Memory) Put(_ context.Context, c cid.Cid, data []byte) error {
	if err := verify("memory put", c, data); err != nil {
		return err
	}
	return m.putVerified(c, data)
}

// putVerified is Put for bytes the caller already verified against c.
func (m *Memory) putVerified(c cid.Cid, data []byte) error {
	size := int64(len(data))
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("blockstore: memory put: %w", ErrClosed)
	}
	if _, ok := m.entries[c]; ok {
		m.mu.Unlock()
		return nil
	}
	if size > m.cfg.BudgetBytes {
		m.mu.Unlock()
		return fmt.Errorf("blockstore: memory put %s (%d bytes, budget %d): %w", c, size, m.cfg.BudgetBytes, ErrTooLarge)
	}
	if m.pinnedBytes+size > m.cfg.BudgetBytes {
		m.mu.Unlock()
		return fmt.Errorf("blockstore: memory put %s: pinned blocks fill the budget: %w", c, ErrFull)
	}
	evicted := m.evictLocked(size)
	e := &memEntry{c: c, data: data}
	m.entries[c] = e
	m.bytes += size
	if _, pinned := m.pins[c]; pinned {
		e.pinned = true
		m.pinnedBytes += size
		m.pinnedCount++
	} else if g, ok := m.ghosts[c]; ok {
		m.ghost.Remove(g)
		delete(m.ghosts, c)
		m.pushLocked(e, queueMain)
	} else {
		m.pushLocked(e, queueSmall)
	}
	used, hook := m.bytes, m.onEvict
	m.mu.Unlock()
	m.metrics.setBytes(used)
	m.metrics.evicted(len(evicted))
	if hook != nil && len(evicted) > 0 {
		hook(evicted)
	}
	return nil
}

// evictLocked evicts unpinned blocks until need more bytes fit in the budget
// and returns their CIDs. The caller checked that pinnedBytes+need <= budget,
// so enough unpinned bytes exist; the loop ends because every main-queue
// pass lowers an access count and counts start at most memFreqCap.
func (m *Memory) evictLocked(need int64) []cid.Cid {
	var evicted []cid.Cid
	smallTarget := int64(float64(m.cfg.BudgetBytes) * m.cfg.SmallRatio)
	for m.bytes+need > m.cfg.BudgetBytes {
		if m.small.Len() > 0 && (m.smallBytes >= smallTarget || m.main.Len() == 0) {
			e := m.small.Back().Value.(*memEntry)
			m.unlinkLocked(e)
			if e.freq > 0 {
				e.freq = 0
				m.pushLocked(e, queueMain)
				continue
			}
			m.dropLocked(e)
			m.rememberLocked(e.c)
			evicted = append(evicted, e.c)
			continue
		}
		back := m.main.Back()
		if back == nil {
			break // unreachable given the caller's check
		}
		e := back.Value.(*memEntry)
		m.unlinkLocked(e)
		if e.freq > 0 {
			e.freq--
			m.pushLocked(e, queueMain)
			continue
		}
		m.dropLocked(e)
		evicted = append(evicted, e.c)
	}
	m.evictions += int64(len(evicted))
	return evicted
}

func (m *Memory) pushLocked(e *memEntry, q memQueue) {
	e.queue = q
	if q == queueSmall {
		e.elem = m.small.PushFront(e)
		m.smallBytes += int64(len(e.data))
	} else {
		e.elem = m.main.PushFront(e)
	}
}

func (m *Memory) unlinkLocked(e *memEntry) {
	switch e.queue {
	case queueSmall:
		m.small.Remove(e.elem)
		m.smallBytes -= int64(len(e.data))
	case queueMain:
		m.main.Remove(e.elem)
	}
	e.queue, e.elem = queueNone, nil
}

// dropLocked forgets an entry already unlinked from its queue.
func (m *Memory) dropLocked(e *memEntry) {
	delete(m.entries, e.c)
	m.bytes -= int64(len(e.data))
	if e.pinned {
		m.pinnedBytes -= int64(len(e.data))
		m.pinnedCount--
	}
}

func (m *Memory) rememberLocked(c cid.Cid) {
	if m.cfg.GhostEntries == 0 {
		return
	}
	m.ghosts[c] = m.ghost.PushFront(c)
	for m.ghost.Len() > m.cfg.GhostEntries {
		old := m.ghost.Remove(m.ghost.Back()).(cid.Cid)
		delete(m.ghosts, old)
	}
}

// Delete removes the block and its pin.
func (m *Memory) Delete(_ context.Context, c cid.Cid) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("blockstore: memory delete: %w", ErrClosed)
	}
	delete(m.pins, c)
	e, held := m.entries[c]
	if held {
		m.unlinkLocked(e)
		m.dropLocked(e)
	}
	used := m.bytes
	m.mu.Unlock()
	m.metrics.setBytes(used)
	if held {
		m.metrics.deleted()
	}
	return nil
}

// Pin keeps the block out of eviction (now or once it arrives). Memory pins
// do not survive a restart.
func (m *Memory) Pin(_ context.Context, c cid.Cid) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("blockstore: memory pin: %w", ErrClosed)
	}
	m.pins[c] = struct{}{}
	if e, ok := m.entries[c]; ok && !e.pinned {
		m.unlinkLocked(e)
		e.pinned = true
		m.pinnedBytes += int64(len(e.data))
		m.pinnedCount++
	}
	return nil
}

// Unpin releases a pin; the block rejoins the main queue.
func (m *Memory) Unpin(_ context.Context, c cid.Cid) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("blockstore: memory unpin: %w", ErrClosed)
	}
	delete(m.pins, c)
	if e, ok := m.entries[c]; ok && e.pinned {
		e.pinned = false
		m.pinnedBytes -= int64(len(e.data))
		m.pinnedCount--
		m.pushLocked(e, queueMain)
	}
	return nil
}

// Stats reports usage and counters.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{
		Blocks:      int64(len(m.entries)),
		Bytes:       m.bytes,
		BudgetBytes: m.cfg.BudgetBytes,
		Pinned:      m.pinnedCount,
		PinnedBytes: m.pinnedBytes,
		Hits:        m.hits,
		Misses:      m.misses,
		Evictions:   m.evictions,
	}
}

// Close drops every block. Further calls return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("blockstore: memory close: %w", ErrClosed)
	}
	m.closed = true
	m.entries, m.pins, m.ghosts = nil, nil, nil
	m.small.Init()
	m.main.Init()
	m.ghost.Init()
	m.bytes, m.smallBytes, m.pinnedBytes, m.pinnedCount = 0, 0, 0, 0
	return nil
}

// setOnEvict installs the callback Tiered uses to learn which blocks left
// this tier by eviction.
func (m *Memory) setOnEvict(f func([]cid.Cid)) {
	m.mu.Lock()
	m.onEvict = f
	m.mu.Unlock()
}

// verify checks data against c and wraps a failure as ErrHashMismatch.
func verify(op string, c cid.Cid, data []byte) error {
	if err := content.Verify(c, data); err != nil {
		return fmt.Errorf("blockstore: %s %s: %w: %w", op, c, ErrHashMismatch, err)
	}
	return nil
}

// pinWithin pins c if it is held and pinning keeps pinned bytes within
// maxPinned; it reports whether c is now pinned in memory.
func (m *Memory) pinWithin(c cid.Cid, maxPinned int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[c]
	if m.closed || !ok {
		return false
	}
	if e.pinned {
		return true
	}
	if m.pinnedBytes+int64(len(e.data)) > maxPinned {
		return false
	}
	m.pins[c] = struct{}{}
	m.unlinkLocked(e)
	e.pinned = true
	m.pinnedBytes += int64(len(e.data))
	m.pinnedCount++
	return true
}

// AllKeys calls fn for every held block (a snapshot taken at the call) until
// fn returns false.
func (m *Memory) AllKeys(ctx context.Context, fn func(cid.Cid) bool) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("blockstore: memory all keys: %w", ErrClosed)
	}
	keys := make([]cid.Cid, 0, len(m.entries))
	for c := range m.entries {
		keys = append(keys, c)
	}
	m.mu.Unlock()
	for _, c := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(c) {
			return nil
		}
	}
	return nil
}
