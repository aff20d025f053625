package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/badgerrepair"
)

// DiskConfig configures the SSD tier.
type DiskConfig struct {
	// Dir is the data directory (required). It holds blocks/ (payload files
	// sharded by the CID's last digest byte), tmp/ (writes in progress) and
	// index/ (Badger). One Disk at a time may open it.
	Dir string
	// BudgetBytes caps payload bytes (pinned included). Default 64 GiB.
	// On-disk usage of Dir stays under BudgetBytes + Overhead(blocks).
	BudgetBytes int64
	// HighWatermark: a Put that would take usage above this share of the
	// budget first evicts down to LowWatermark. Defaults 0.95 and 0.85: one
	// eviction pass then admits ~10% of the budget of new blocks (25 chunks
	// per GiB) before the next, and usage never exceeds the budget.
	HighWatermark float64
	LowWatermark  float64
	// MaintenanceInterval is how often Run persists access ticks and runs
	// Badger value-log GC. Default 1 minute: ticks only order eviction after a
	// restart, so losing a minute of them costs little.
	MaintenanceInterval time.Duration
	// ReserveBytes is the free space the tier leaves on its filesystem:
	// when the filesystem has less room than the budget (someone else
	// filled it), the budget in force shrinks to what the tier holds plus
	// the free space minus this, and eviction keeps the tier under it.
	// Default 256 MiB: Badger writes its memtables (2 x 16 MiB for the
	// block index, as many for the catalog) and the catalog's 64 MiB value
	// log through memory mappings, and a mapped write the filesystem cannot
	// back kills the process (SIGBUS) instead of failing; the rest is
	// margin for logs and the other writers of the disk.
	ReserveBytes int64
	// SpaceCheckInterval is how often Run asks the filesystem for its free
	// space (besides every Put), so that a disk filled by someone else
	// makes the tier evict before its next write. Default 5 s: one statfs.
	SpaceCheckInterval time.Duration
	// ScrubRate is how many payload bytes per second Run's background scrub
	// re-verifies against their CIDs (disk_integrity.go), starting one
	// MaintenanceInterval after Run. Default DefaultScrubRate (4 MiB/s);
	// negative turns the scrub off.
	ScrubRate int64
}

// Disk defaults.
const (
	DefaultDiskBudget          = 64 << 30
	DefaultHighWatermark       = 0.95
	DefaultLowWatermark        = 0.85
	DefaultMaintenanceInterval = time.Minute
	DefaultReserveBytes        = 256 << 20
	DefaultSpaceCheckInterval  = 5 * time.Second
)

// Disk overhead beyond payload bytes, as measured on ext4/xfs with 4 KiB
// blocks: each payload file rounds up to a filesystem block, the 256 shard
// directories take a block each, and the Badger index (memtable files
// preallocated to their size, SSTs, a small value log, manifest) stays under
// DiskIndexOverhead for indexes up to ~100k blocks (~60 bytes per block in
// SSTs beyond that).
const (
	DiskFileOverhead  = 4 << 10
	DiskIndexOverhead = 64 << 20
)

// Overhead is the stated on-disk overhead of a Disk holding blocks blocks:
// Dir's size on disk stays within BudgetBytes plus this.
func Overhead(blocks int64) int64 {
	return DiskIndexOverhead + 256*DiskFileOverhead + blocks*(DiskFileOverhead+64)
}

func (c DiskConfig) withDefaults() DiskConfig {
	if c.BudgetBytes == 0 {
		c.BudgetBytes = DefaultDiskBudget
	}
	if c.HighWatermark == 0 {
		c.HighWatermark = DefaultHighWatermark
	}
	if c.LowWatermark == 0 {
		c.LowWatermark = DefaultLowWatermark
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = DefaultMaintenanceInterval
	}
	if c.ReserveBytes == 0 {
		c.ReserveBytes = DefaultReserveBytes
	}
	if c.SpaceCheckInterval == 0 {
		c.SpaceCheckInterval = DefaultSpaceCheckInterval
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = DefaultScrubRate
	}
	return c
}

// Validate reports a configuration error. Zero values mean "default".
func (c DiskConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return errors.New("blockstore: disk dir is required")
	case c.BudgetBytes < 0:
		return fmt.Errorf("blockstore: disk budget %d < 0", c.BudgetBytes)
	case c.LowWatermark <= 0 || c.HighWatermark > 1 || c.LowWatermark >= c.HighWatermark:
		return fmt.Errorf("blockstore: disk watermarks want 0 < low (%v) < high (%v) <= 1", c.LowWatermark, c.HighWatermark)
	case c.MaintenanceInterval < 0:
		return fmt.Errorf("blockstore: disk maintenance interval %v < 0", c.MaintenanceInterval)
	case c.ReserveBytes < 0:
		return fmt.Errorf("blockstore: disk reserve %d < 0", c.ReserveBytes)
	case c.SpaceCheckInterval < 0:
		return fmt.Errorf("blockstore: disk space check interval %v < 0", c.SpaceCheckInterval)
	}
	return nil
}

// DiskOption injects a collaborator into a Disk.
type DiskOption func(*diskOptions)

type diskOptions struct {
	logger *slog.Logger
	reg    prometheus.Registerer
	create FileCreator
}

// WithDiskLogger sets the logger (default: discard).
func WithDiskLogger(l *slog.Logger) DiskOption { return func(o *diskOptions) { o.logger = l } }

// WithDiskRegisterer registers the tier's metrics (default: none).
func WithDiskRegisterer(r prometheus.Registerer) DiskOption {
	return func(o *diskOptions) { o.reg = r }
}

// WithFileCreator replaces how payload temp files are created (default
// OSFileCreator). Any error from it or from writing/closing the file makes
// Put fail with ErrFull.
func WithFileCreator(fc FileCreator) DiskOption { return func(o *diskOptions) { o.create = fc } }

// diskSlot is one held block in the CLOCK ring. With its index map entry and
// CID string it costs ~110-150 bytes of heap per block (measured: 147 B with
// append growth), so 1M blocks take ~150 MB plus Badger's ~32 MB of
// memtables and caches (see badgerOptions).
type diskSlot struct {
	c      cid.Cid // cid.Undef: free slot
	size   int64
	tick   uint64 // last access, persisted approximately (see Run)
	gen    uint32 // distinguishes reuses of the slot
	ref    bool   // CLOCK reference bit
	pinned bool
	dirty  bool       // tick changed since last persisted
	sum    payloadSum // CRC-32C of the payload (disk_integrity.go)
}

// Disk is the SSD tier: one file per block under a Badger index, a byte
// budget kept on disk, CLOCK (second-chance LRU) eviction between
// watermarks, persistent pins, and verification of every read.
//
// Locking: putMu serializes everything that creates or removes payload files
// or writes the index (Put, Delete, Pin, Unpin, maintenance, Close); mu
// guards the in-memory state and is never held across file I/O except to
// unlink a corrupt file. Get takes only mu, so reads never wait for a write.
type Disk struct {
	cfg       DiskConfig
	log       *slog.Logger
	metrics   *tierMetrics
	spaceM    *spaceMetrics
	create    FileCreator
	blocksDir string
	tmpDir    string
	db        *badger.DB
	rebuilt   bool // the index was damaged at open and rebuilt from the files

	putMu  sync.Mutex
	tmpSeq uint64 // guarded by putMu

	mu             sync.Mutex // guards every field below
	closed         bool
	index          map[cid.Cid]int32
	slots          []diskSlot
	free           []int32
	hand           int
	tick           uint64
	gen            uint32
	bytes          int64
	pinnedBytes    int64
	pinnedCount    int64
	pins           map[cid.Cid]struct{}
	pendingDeletes [][]byte // index keys to delete at the next write under putMu
	hits           int64
	misses         int64
	evictions      int64
	corrupt        int64
	space          diskSpace
	onEvict        func([]cid.Cid) // set by Tiered; called without mu held
}

var _ Store = (*Disk)(nil)

// OpenDisk opens (creating if needed) the data directory and reconciles it
// with its index: leftover temp files, files without index entries and
// index entries without files are removed. The caller must Close the Disk
// and should run Run for index maintenance.
func OpenDisk(cfg DiskConfig, opts ...DiskOption) (*Disk, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := diskOptions{create: OSFileCreator()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.create == nil {
		o.create = OSFileCreator()
	}
	m, err := newTierMetrics(o.reg, tierDisk, cfg.BudgetBytes)
	if err != nil {
		return nil, fmt.Errorf("blockstore: disk metrics: %w", err)
	}
	sm, err := newSpaceMetrics(o.reg)
	if err != nil {
		return nil, fmt.Errorf("blockstore: disk metrics: %w", err)
	}
	d := &Disk{
		cfg:       cfg,
		log:       o.logger.With("component", "blockstore", "tier", tierDisk),
		metrics:   m,
		spaceM:    sm,
		create:    o.create,
		blocksDir: filepath.Join(cfg.Dir, "blocks"),
		tmpDir:    filepath.Join(cfg.Dir, "tmp"),
		index:     make(map[cid.Cid]int32),
		pins:      make(map[cid.Cid]struct{}),
	}
	indexDir := filepath.Join(cfg.Dir, "index")
	for _, dir := range []string{d.blocksDir, d.tmpDir, indexDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("blockstore: open disk: %w", err)
		}
	}
	idx, err := d.openIndex(indexDir)
	if err != nil {
		return nil, err
	}
	if err := d.reconcile(idx.records, idx.pins); err != nil {
		return nil, errors.Join(err, d.db.Close())
	}
	if idx.damage != nil {
		d.rebuilt = true
		d.log.Error("block index was damaged: moved it aside and rebuilt the block index from the chunk files",
			"damage", idx.damage, "moved_to", idx.aside, "blocks", len(d.index), "bytes", d.bytes,
			"lost", "block pins and access order")
	}
	d.metrics.setBytes(d.bytes)
	d.reportSpace(d.spaceLocked(), d.space.full)
	return d, nil
}

// openedIndex is what openIndex found.
type openedIndex struct {
	records []indexRecord
	pins    []cid.Cid
	damage  error  // not nil: the index was damaged and is rebuilt
	aside   string // where the damaged index was moved
}

// openIndex opens the Badger index and loads it. A damaged index (Badger
// refuses or panics on its files, or reading it fails) is moved aside and
// replaced by an empty one, which reconcile fills from the chunk files:
// those are the truth, the index only remembers their sizes, access order
// and pins. A lock held by another process or a permission or space
// problem is an error, and nothing is moved.
func (d *Disk) openIndex(dir string) (openedIndex, error) {
	opts := badgerOptions(dir, d.log)
	db, err := badgerrepair.Open(opts)
	if err == nil {
		records, pins, lerr := loadIndexSafe(db)
		if lerr == nil {
			d.db = db
			return openedIndex{records: records, pins: pins}, nil
		}
		err = errors.Join(fmt.Errorf("%w: %w", badgerrepair.ErrDamaged, lerr), db.Close())
	}
	if !errors.Is(err, badgerrepair.ErrDamaged) {
		return openedIndex{}, fmt.Errorf("blockstore: open disk index: %w", err)
	}
	aside, merr := badgerrepair.MoveAside(dir, time.Now())
	if merr != nil {
		return openedIndex{}, fmt.Errorf("blockstore: open disk index: %w; %w", err, merr)
	}
	if merr := os.MkdirAll(dir, 0o755); merr != nil {
		return openedIndex{}, fmt.Errorf("blockstore: open disk index: %w", merr)
	}
	if d.db, merr = badgerrepair.Open(opts); merr != nil {
		return openedIndex{}, fmt.Errorf("blockstore: open disk index after moving the damaged one aside: %w", merr)
	}
	return openedIndex{damage: err, aside: aside}, nil
}

// loadIndexSafe is loadIndex with a panic of Badger's (a table that went
// bad after open) returned as an error.
func loadIndexSafe(db *badger.DB) (records []indexRecord, pins []cid.Cid, err error) {
	defer func() {
		if r := recover(); r != nil {
			records, pins, err = nil, nil, fmt.Errorf("blockstore: load index: badger panicked: %v", r)
		}
	}()
	return loadIndex(db)
}

// reconcile makes the loaded index agree with the files on disk, which are
// the truth: leftover temp files and junk are removed, index entries
// without a file are dropped, and block files the index does not know (a
// crash between rename and index write, or an index rebuilt after damage)
// are indexed with their size on disk; every read verifies them anyway.
func (d *Disk) reconcile(records []indexRecord, pins []cid.Cid) error {
	tmp, err := os.ReadDir(d.tmpDir)
	if err != nil {
		return fmt.Errorf("blockstore: open disk: %w", err)
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(d.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("blockstore: open disk: remove leftover: %w", err)
		}
	}
	want := make(map[cid.Cid]int, len(records))
	for i, r := range records {
		want[r.c] = i
	}
	kept := make([]bool, len(records))
	shards, err := os.ReadDir(d.blocksDir)
	if err != nil {
		return fmt.Errorf("blockstore: open disk: %w", err)
	}
	var (
		removedFiles int
		adopted      []adoptedFile
	)
	for _, sh := range shards {
		shardPath := filepath.Join(d.blocksDir, sh.Name())
		if !sh.IsDir() {
			removedFiles++
			if err := os.Remove(shardPath); err != nil {
				return fmt.Errorf("blockstore: open disk: %w", err)
			}
			continue
		}
		files, err := os.ReadDir(shardPath)
		if err != nil {
			return fmt.Errorf("blockstore: open disk: %w", err)
		}
		for _, f := range files {
			keep := false
			if c, err := cid.Decode(f.Name()); err == nil && f.Type().IsRegular() && shardName(c) == sh.Name() {
				info, err := f.Info()
				i, indexed := want[c]
				switch {
				case err != nil:
				case indexed && info.Size() == records[i].size:
					keep, kept[i] = true, true
				case info.Size() == 0: // nothing to adopt
				default:
					keep = true
					adopted = append(adopted, adoptedFile{c: c, size: info.Size(), mtime: info.ModTime()})
				}
			}
			if !keep {
				removedFiles++
				if err := os.RemoveAll(filepath.Join(shardPath, f.Name())); err != nil {
					return fmt.Errorf("blockstore: open disk: %w", err)
				}
			}
		}
	}
	var stale [][]byte
	live := records[:0]
	var maxTick uint64
	for i, r := range records {
		if kept[i] {
			live = append(live, r)
			maxTick = max(maxTick, r.tick)
		} else {
			stale = append(stale, blockKey(r.c)) // re-set below if its file is adopted

		}
	}
	if len(stale) > 0 {
		if err := deleteKeys(d.db, stale); err != nil {
			return err
		}
	}
	// Adopted files count as used after every indexed block, oldest write
	// first.
	sort.Slice(adopted, func(i, j int) bool { return adopted[i].mtime.Before(adopted[j].mtime) })
	var sets [][2][]byte
	for i, a := range adopted {
		r := indexRecord{c: a.c, size: a.size, tick: maxTick + uint64(i) + 1}
		live = append(live, r)
		sets = append(sets, [2][]byte{blockKey(r.c), encodeBlockValue(r.size, r.tick, r.sum)})
	}
	if err := setKeys(d.db, sets); err != nil {
		return err
	}
	// Oldest first, so the CLOCK hand (at 0) meets them first.
	sort.Slice(live, func(i, j int) bool { return live[i].tick < live[j].tick })
	d.slots = make([]diskSlot, len(live))
	for i, r := range live {
		d.slots[i] = diskSlot{c: r.c, size: r.size, tick: r.tick, sum: r.sum}
		d.index[r.c] = int32(i)
		d.bytes += r.size
		d.tick = max(d.tick, r.tick)
	}
	for _, c := range pins {
		d.pins[c] = struct{}{}
		if i, ok := d.index[c]; ok {
			d.slots[i].pinned = true
			d.pinnedBytes += d.slots[i].size
			d.pinnedCount++
		}
	}
	if removedFiles > 0 || len(stale) > 0 || len(adopted) > 0 {
		d.log.Info("reconciled data directory", "removed_files", removedFiles, "removed_index_entries", len(stale), "indexed_files", len(adopted))
	}
	// A lowered budget, or a disk with less room than the tier holds,
	// takes effect now.
	free, ferr := freeSpace(d.cfg.Dir)
	d.applySpaceLocked(free, ferr)
	if d.bytes > d.space.limit {
		victims := d.evictLocked(0, d.space.limit)
		d.removeFiles(victims)
		if err := d.flushIndexLocked(nil); err != nil {
			return err
		}
	}
	return nil
}

// adoptedFile is a block file reconcile indexes from what the disk says.
type adoptedFile struct {
	c     cid.Cid
	size  int64
	mtime time.Time
}

func shardName(c cid.Cid) string {
	h := c.Hash()
	if len(h) == 0 {
		return "00"
	}
	return fmt.Sprintf("%02x", h[len(h)-1])
}

func (d *Disk) blockPath(c cid.Cid) string {
	return filepath.Join(d.blocksDir, shardName(c), c.String())
}

// Get reads the block and checks it against the CRC recorded when it was
// written (or, lacking one, against c). A block that fails the check (or
// cannot be read) is removed from the index and disk,
// counted in Stats.Corrupt, and reported as ErrNotFound.
func (d *Disk) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return d.getInto(ctx, c, func(n int) []byte { return make([]byte, n) }, nil)
}

// getInto is Get reading into alloc(size), a buffer of exactly the block's
// indexed size. On failure it hands that buffer to free (if not nil) once
// it is no longer used, so pooled buffers go back to their pool.
func (d *Disk) getInto(ctx context.Context, c cid.Cid, alloc func(n int) []byte, free func([]byte)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("blockstore: disk get: %w", ErrClosed)
	}
	i, ok := d.index[c]
	if !ok {
		d.misses++
		d.mu.Unlock()
		d.metrics.miss()
		return nil, fmt.Errorf("blockstore: disk get %s: %w", c, ErrNotFound)
	}
	s := &d.slots[i]
	d.tick++
	s.ref, s.tick, s.dirty = true, d.tick, true
	size, gen, sum := s.size, s.gen, s.sum
	d.mu.Unlock()

	data := alloc(int(size))
	err := readBlockFile(d.blockPath(c), data)
	if err == nil {
		err = d.checkRead(c, i, gen, sum, data)
	}
	if err != nil && free != nil {
		free(data)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Evicted or deleted since we looked it up (then the slot changed and
		// this is a plain miss), or removed behind our back: forget it.
		d.drop(c, i, gen, false, err)
		return nil, fmt.Errorf("blockstore: disk get %s: %w", c, ErrNotFound)
	case err != nil:
		d.drop(c, i, gen, true, err)
		return nil, fmt.Errorf("blockstore: disk get %s: dropped unreadable copy: %w", c, ErrNotFound)
	}
	d.mu.Lock()
	d.hits++
	d.mu.Unlock()
	d.metrics.hit(len(data))
	return data, nil
}

// readBlockFile fills data from the file at path, which must hold exactly
// len(data) bytes.
func readBlockFile(path string, data []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.ReadFull(f, data)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("size %d, index says %d", n, len(data))
		}
		return err
	}
	var one [1]byte
	if k, _ := f.Read(one[:]); k > 0 {
		return fmt.Errorf("file longer than the indexed %d bytes", len(data))
	}
	return nil
}

// drop removes a block whose file is missing or failed to read or verify
// (corrupt), if the slot still holds the same copy; either way the read
// counts as a miss. The index key is deleted at the next write (or by
// reconcile after a crash), so a reader never waits on the index.
func (d *Disk) drop(c cid.Cid, i int32, gen uint32, corrupt bool, cause error) {
	d.removeCopy(c, i, gen, corrupt, cause)
	d.mu.Lock()
	d.misses++
	d.mu.Unlock()
	d.metrics.miss()
}

// removeCopy is drop without counting a miss (the scrub's drop); it reports
// whether it removed the copy.
func (d *Disk) removeCopy(c cid.Cid, i int32, gen uint32, corrupt bool, cause error) bool {
	d.mu.Lock()
	j, ok := d.index[c]
	if !ok || j != i || d.slots[i].gen != gen || d.closed {
		d.mu.Unlock()
		return false
	}
	d.removeSlotLocked(i)
	d.pendingDeletes = append(d.pendingDeletes, blockKey(c))
	// Unlink while holding mu so a concurrent Put of c (which checks the
	// index under mu before writing) cannot have its new file removed.
	rmErr := os.Remove(d.blockPath(c))
	if corrupt {
		d.corrupt++
	}
	used, hook := d.bytes, d.onEvict
	d.mu.Unlock()
	d.log.Warn("dropped unreadable block", "cid", c, "corrupt", corrupt, "err", cause)
	if rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		d.log.Error("remove corrupt block", "cid", c, "err", rmErr)
	}
	if corrupt {
		d.metrics.corrupted()
	} else {
		d.metrics.missing()
	}
	d.metrics.setBytes(used)
	if hook != nil {
		hook([]cid.Cid{c})
	}
	return true
}

// Has reports whether the block is indexed (without reading it).
func (d *Disk) Has(_ context.Context, c cid.Cid) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, fmt.Errorf("blockstore: disk has: %w", ErrClosed)
	}
	_, ok := d.index[c]
	return ok, nil
}

// Put verifies data and writes it to a temp file renamed into place, after
// evicting unpinned blocks if usage would pass the high watermark of the
// budget in force (the configured budget, or less when the filesystem has
// less room: see Space). A failing write (ENOSPC, I/O error) returns
// ErrFull, and ErrNoSpace with it when the filesystem is full; such writes
// count in dropped_writes_total{tier="disk"}. Reads are unaffected.
func (d *Disk) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := verify("disk put", c, data); err != nil {
		return err
	}
	return d.putVerified(ctx, c, data)
}

func (d *Disk) putVerified(ctx context.Context, c cid.Cid, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	size := int64(len(data))
	sum := sumOf(data) // of the verified bytes, before they reach the disk
	d.putMu.Lock()
	defer d.putMu.Unlock()
	free, ferr := freeSpace(d.cfg.Dir)

	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("blockstore: disk put: %w", ErrClosed)
	}
	if _, ok := d.index[c]; ok {
		d.mu.Unlock()
		return nil
	}
	if size > d.cfg.BudgetBytes {
		d.mu.Unlock()
		return fmt.Errorf("blockstore: disk put %s (%d bytes, budget %d): %w", c, size, d.cfg.BudgetBytes, ErrTooLarge)
	}
	if d.pinnedBytes+size > d.cfg.BudgetBytes {
		d.mu.Unlock()
		return fmt.Errorf("blockstore: disk put %s: pinned blocks fill the budget: %w", c, ErrFull)
	}
	changed := d.applySpaceLocked(free, ferr)
	limit := d.space.limit
	if d.pinnedBytes+size > limit {
		// The disk has no room for the block even after evicting all that
		// may go: give the reserve back, refuse the write.
		var victims []cid.Cid
		if d.bytes > limit {
			victims = d.evictLocked(0, limit)
		}
		d.noteWriteLocked(ErrNoSpace)
		s := d.spaceLocked()
		d.mu.Unlock()
		d.removeFiles(victims)
		d.notifyEvicted(victims)
		d.metrics.droppedWrite()
		d.reportSpace(s, changed)
		d.mu.Lock()
		flushErr := d.flushIndexLocked(nil)
		used := d.bytes
		d.mu.Unlock()
		d.metrics.setBytes(used)
		return errors.Join(fmt.Errorf("blockstore: disk put %s: %d bytes free on the filesystem, %d kept in reserve: %w: %w",
			c, s.FreeBytes, s.ReserveBytes, ErrFull, ErrNoSpace), flushErr)
	}
	victims := d.evictLocked(size, limit)
	before := d.spaceLocked()
	d.mu.Unlock()
	d.removeFiles(victims)
	d.notifyEvicted(victims)
	d.reportSpace(before, changed)

	d.tmpSeq++
	tmp := filepath.Join(d.tmpDir, strconv.FormatUint(d.tmpSeq, 10)+".tmp")
	final := d.blockPath(c)
	if err := d.writeFile(tmp, final, data); err != nil {
		_ = os.Remove(tmp)
		// Index deletes of the victims still have to happen.
		d.mu.Lock()
		flushErr := d.flushIndexLocked(nil)
		changed := d.noteWriteLocked(err)
		s := d.spaceLocked()
		d.mu.Unlock()
		d.metrics.droppedWrite()
		d.reportSpace(s, changed)
		if isNoSpace(err) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		return errors.Join(fmt.Errorf("blockstore: disk put %s: %w: %w", c, ErrFull, err), flushErr)
	}

	d.mu.Lock()
	i := d.allocSlotLocked()
	d.gen++
	d.tick++
	d.slots[i] = diskSlot{c: c, size: size, tick: d.tick, gen: d.gen, ref: true, sum: sum}
	d.index[c] = i
	d.bytes += size
	if _, pinned := d.pins[c]; pinned {
		d.slots[i].pinned = true
		d.pinnedBytes += size
		d.pinnedCount++
	}
	err := d.flushIndexLocked([][2][]byte{{blockKey(c), encodeBlockValue(size, d.tick, sum)}})
	if err != nil {
		// Without an index entry the file would be dropped at restart; undo
		// now so memory and disk agree.
		d.removeSlotLocked(i)
		_ = os.Remove(final)
	}
	changed = d.noteWriteLocked(err)
	after := d.spaceLocked()
	used := d.bytes
	d.mu.Unlock()
	d.metrics.setBytes(used)
	d.reportSpace(after, changed)
	if err != nil {
		d.metrics.droppedWrite()
		if isNoSpace(err) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		return fmt.Errorf("blockstore: disk put %s: %w: %w", c, ErrFull, err)
	}
	return nil
}

// writeFile writes data to tmp through the FileCreator and renames it to
// final, so a crash never leaves a partial file under a block's name.
func (d *Disk) writeFile(tmp, final string, data []byte) error {
	f, err := d.create.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// evictLocked frees unpinned blocks (CLOCK order) when usage plus need would
// pass the high watermark of budget (the budget in force, see Space), down
// to its low watermark. The caller checked pinnedBytes+need <= budget, so two laps of the hand always free enough to
// stay within the budget. It returns the victims' CIDs; their files are
// removed by the caller after releasing mu.
func (d *Disk) evictLocked(need, budget int64) []cid.Cid {
	high := int64(float64(budget) * d.cfg.HighWatermark)
	low := int64(float64(budget) * d.cfg.LowWatermark)
	if d.bytes+need <= high || len(d.slots) == 0 {
		return nil
	}
	var victims []cid.Cid
	for steps := 0; d.bytes+need > low && steps < 2*len(d.slots)+1; steps++ {
		if d.hand >= len(d.slots) {
			d.hand = 0
		}
		i := d.hand
		d.hand++
		s := &d.slots[i]
		if !s.c.Defined() || s.pinned {
			continue
		}
		if s.ref {
			s.ref = false
			continue
		}
		victims = append(victims, s.c)
		d.pendingDeletes = append(d.pendingDeletes, blockKey(s.c))
		d.removeSlotLocked(int32(i))
	}
	d.evictions += int64(len(victims))
	d.metrics.evicted(len(victims))
	return victims
}

func (d *Disk) allocSlotLocked() int32 {
	if n := len(d.free); n > 0 {
		i := d.free[n-1]
		d.free = d.free[:n-1]
		return i
	}
	d.slots = append(d.slots, diskSlot{})
	return int32(len(d.slots) - 1)
}

func (d *Disk) removeSlotLocked(i int32) {
	s := &d.slots[i]
	delete(d.index, s.c)
	d.bytes -= s.size
	if s.pinned {
		d.pinnedBytes -= s.size
		d.pinnedCount--
	}
	*s = diskSlot{gen: s.gen}
	d.free = append(d.free, i)
}

// removeFiles unlinks evicted blocks' files (under putMu, without mu).
func (d *Disk) removeFiles(cids []cid.Cid) {
	for _, c := range cids {
		if err := os.Remove(d.blockPath(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Error("remove evicted block", "cid", c, "err", err)
		}
	}
}

func (d *Disk) notifyEvicted(victims []cid.Cid) {
	if len(victims) == 0 {
		return
	}
	d.mu.Lock()
	hook := d.onEvict
	d.mu.Unlock()
	if hook != nil {
		hook(victims)
	}
}

// flushIndexLocked writes sets plus the queued index deletes in one batch.
// Called with putMu and mu held (Badger batches of a few keys are fast).
func (d *Disk) flushIndexLocked(sets [][2][]byte) error {
	dels := d.pendingDeletes
	d.pendingDeletes = nil
	if len(dels) == 0 && len(sets) == 0 {
		return nil
	}
	wb := d.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range dels {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("blockstore: index: %w", err)
		}
	}
	for _, kv := range sets {
		if err := wb.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("blockstore: index: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("blockstore: index: %w", err)
	}
	return nil
}

// Delete removes the block and its pin.
func (d *Disk) Delete(ctx context.Context, c cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.putMu.Lock()
	defer d.putMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("blockstore: disk delete: %w", ErrClosed)
	}
	_, pinned := d.pins[c]
	delete(d.pins, c)
	i, held := d.index[c]
	if held {
		d.removeSlotLocked(i)
		d.pendingDeletes = append(d.pendingDeletes, blockKey(c))
		// Under mu: Get may unlink concurrently only while c is indexed.
		if err := os.Remove(d.blockPath(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blockstore: disk delete %s: %w", c, err)
		}
		d.metrics.setBytes(d.bytes)
		d.metrics.deleted()
	}
	if pinned {
		d.pendingDeletes = append(d.pendingDeletes, pinKey(c))
	}
	if err := d.flushIndexLocked(nil); err != nil {
		return fmt.Errorf("blockstore: disk delete %s: %w", c, err)
	}
	return nil
}

// Pin persists a pin on c (held now or not yet).
func (d *Disk) Pin(ctx context.Context, c cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.putMu.Lock()
	defer d.putMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("blockstore: disk pin: %w", ErrClosed)
	}
	if _, ok := d.pins[c]; ok {
		return nil
	}
	if err := d.flushIndexLocked([][2][]byte{{pinKey(c), nil}}); err != nil {
		return fmt.Errorf("blockstore: disk pin %s: %w", c, err)
	}
	d.pins[c] = struct{}{}
	if i, ok := d.index[c]; ok {
		d.slots[i].pinned = true
		d.pinnedBytes += d.slots[i].size
		d.pinnedCount++
	}
	return nil
}

// Unpin releases a pin.
func (d *Disk) Unpin(ctx context.Context, c cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.putMu.Lock()
	defer d.putMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("blockstore: disk unpin: %w", ErrClosed)
	}
	if _, ok := d.pins[c]; !ok {
		return nil
	}
	d.pendingDeletes = append(d.pendingDeletes, pinKey(c))
	if err := d.flushIndexLocked(nil); err != nil {
		return fmt.Errorf("blockstore: disk unpin %s: %w", c, err)
	}
	delete(d.pins, c)
	if i, ok := d.index[c]; ok {
		d.slots[i].pinned = false
		d.pinnedBytes -= d.slots[i].size
		d.pinnedCount--
	}
	return nil
}

// AllKeys calls fn for every held block (a snapshot taken at the call) until
// fn returns false or ctx is done.
func (d *Disk) AllKeys(ctx context.Context, fn func(cid.Cid) bool) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("blockstore: disk all keys: %w", ErrClosed)
	}
	keys := make([]cid.Cid, 0, len(d.index))
	for c := range d.index {
		keys = append(keys, c)
	}
	d.mu.Unlock()
	for i, c := range keys {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !fn(c) {
			return nil
		}
	}
	return nil
}

// Stats reports usage and counters.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{
		Blocks:      int64(len(d.index)),
		Bytes:       d.bytes,
		BudgetBytes: d.cfg.BudgetBytes,
		Pinned:      d.pinnedCount,
		PinnedBytes: d.pinnedBytes,
		Hits:        d.hits,
		Misses:      d.misses,
		Evictions:   d.evictions,
		Corrupt:     d.corrupt,
	}
}

// Run performs index maintenance every MaintenanceInterval until ctx is
// done: it persists access ticks (so eviction order survives a restart
// approximately) and runs Badger value-log GC; every SpaceCheckInterval
// it asks the filesystem for its free space, evicting when the disk has
// less room than the tier holds plus its reserve; beside it the scrub runs
// at ScrubRate. It returns nil when ctx is done and ErrClosed if the Disk
// is closed first.
func (d *Disk) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	scrubbed := make(chan struct{})
	go func() { defer close(scrubbed); d.scrubLoop(ctx) }()
	defer func() { cancel(); <-scrubbed }()
	t := time.NewTicker(d.cfg.MaintenanceInterval)
	defer t.Stop()
	space := time.NewTicker(d.cfg.SpaceCheckInterval)
	defer space.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-space.C:
			if err := d.checkSpace(); err != nil {
				if errors.Is(err, ErrClosed) {
					return err
				}
				d.log.Warn("disk space check", "err", err)
			}
		case <-t.C:
			if err := d.maintain(); err != nil {
				if errors.Is(err, ErrClosed) {
					return err
				}
				d.log.Warn("index maintenance", "err", err)
			}
		}
	}
}

// maintain persists dirty ticks and queued deletes, then collects the value
// log until Badger finds nothing to rewrite.
func (d *Disk) maintain() error {
	d.putMu.Lock()
	defer d.putMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	err := d.flushIndexLocked(d.dirtyTicksLocked())
	d.mu.Unlock()
	if err != nil {
		return err
	}
	for range 16 { // each round rewrites at most one vlog file
		if err := d.db.RunValueLogGC(badgerValueLogGC); err != nil {
			if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
				return nil
			}
			return fmt.Errorf("blockstore: value log gc: %w", err)
		}
	}
	return nil
}

func (d *Disk) dirtyTicksLocked() [][2][]byte {
	var sets [][2][]byte
	for i := range d.slots {
		s := &d.slots[i]
		if s.dirty && s.c.Defined() {
			sets = append(sets, [2][]byte{blockKey(s.c), encodeBlockValue(s.size, s.tick, s.sum)})
			s.dirty = false
		}
	}
	return sets
}

// Close persists access ticks and closes the index. Files stay.
func (d *Disk) Close() error {
	d.putMu.Lock()
	defer d.putMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("blockstore: disk close: %w", ErrClosed)
	}
	d.closed = true
	flushErr := d.flushIndexLocked(d.dirtyTicksLocked())
	d.mu.Unlock()
	return errors.Join(flushErr, d.db.Close())
}

// IndexRebuilt reports whether OpenDisk found the index damaged and rebuilt
// it from the chunk files: the blocks are all there, their pins are not
// (the caller pins again what it records elsewhere).
func (d *Disk) IndexRebuilt() bool { return d.rebuilt }

// setOnEvict installs the callback Tiered uses to learn which blocks left
// this tier by eviction or corruption.
func (d *Disk) setOnEvict(f func([]cid.Cid)) {
	d.mu.Lock()
	d.onEvict = f
	d.mu.Unlock()
}

// isPinned reports whether c carries a (persistent) pin.
func (d *Disk) isPinned(c cid.Cid) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.pins[c]
	return ok
}
