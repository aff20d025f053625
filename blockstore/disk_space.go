package blockstore

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
)

// ErrNoSpace: the filesystem under the SSD tier has no room for the block
// (a write failed with ENOSPC or EDQUOT, or the tier's budget shrank below
// what the block needs). It is always wrapped together with ErrFull.
var ErrNoSpace = errors.New("blockstore: disk full")

// Space is the SSD tier's view of the filesystem it lives on.
type Space struct {
	// State is "ok" or "disk full".
	State string
	// Full: the filesystem, not the budget, bounds the tier and less than
	// one eviction pass (BudgetBytes x (1 - LowWatermark)) is free above
	// ReserveBytes; or the last write failed for lack of space.
	Full bool
	// FreeBytes is what the filesystem has free for unprivileged users.
	FreeBytes int64
	// LimitBytes is the budget in force: BudgetBytes, or what the tier
	// holds plus FreeBytes minus ReserveBytes when that is less. Eviction
	// keeps the tier under it, so the reserve stays free.
	LimitBytes   int64
	BudgetBytes  int64
	ReserveBytes int64
	// FullWrites counts writes refused or failed for lack of space.
	FullWrites int64
	// Err is why the filesystem could not be asked (its figures are then
	// those of the last check that worked).
	Err string `json:",omitempty"`
}

// Disk space states.
const (
	spaceOK   = "ok"
	spaceFull = "disk full"
)

// freeSpace is the filesystem's free space for unprivileged users.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// isNoSpace reports a write error that means the filesystem is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// diskSpace is the Disk's space state, guarded by Disk.mu.
type diskSpace struct {
	free       int64 // at the last check
	limit      int64 // budget in force
	writeFull  bool  // the last write failed for lack of space
	full       bool  // as reported (Space.Full)
	fullWrites int64
	err        error // of the last statfs
	checked    time.Time
}

// applySpaceLocked takes a fresh free-space figure (or the error asking for
// it) and recomputes the budget in force and the full state. It returns
// whether the full state changed.
func (d *Disk) applySpaceLocked(free int64, err error) (changed bool) {
	sp := &d.space
	sp.err = err
	if err == nil {
		sp.free, sp.checked = free, time.Now()
	}
	if sp.checked.IsZero() {
		sp.limit = d.cfg.BudgetBytes // never measured: trust the budget
	} else {
		sp.limit = min(d.cfg.BudgetBytes, max(0, d.bytes+sp.free-d.cfg.ReserveBytes))
	}
	band := int64(float64(d.cfg.BudgetBytes) * (1 - d.cfg.LowWatermark))
	if err == nil && sp.writeFull && sp.free-d.cfg.ReserveBytes >= band {
		sp.writeFull = false // room came back since the write that failed
	}
	full := sp.writeFull || (sp.limit < d.cfg.BudgetBytes && sp.free-d.cfg.ReserveBytes < band)
	changed = full != sp.full
	sp.full = full
	return changed
}

// spaceLocked reports the state (Disk.mu held).
func (d *Disk) spaceLocked() Space {
	sp := d.space
	s := Space{State: spaceOK, Full: sp.full, FreeBytes: sp.free, LimitBytes: sp.limit,
		BudgetBytes: d.cfg.BudgetBytes, ReserveBytes: d.cfg.ReserveBytes, FullWrites: sp.fullWrites}
	if sp.full {
		s.State = spaceFull
	}
	if sp.err != nil {
		s.Err = sp.err.Error()
	}
	return s
}

// Space asks the filesystem now and reports the tier's view of it.
func (d *Disk) Space() Space {
	s, changed := d.refreshSpace()
	d.reportSpace(s, changed)
	return s
}

func (d *Disk) refreshSpace() (Space, bool) {
	free, err := freeSpace(d.cfg.Dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := d.applySpaceLocked(free, err)
	return d.spaceLocked(), changed
}

// reportSpace updates the gauges and logs a change of state (called
// without mu).
func (d *Disk) reportSpace(s Space, changed bool) {
	d.spaceM.set(s)
	if !changed {
		return
	}
	if s.Full {
		d.log.Error("disk full: the SSD tier's budget shrank to what the filesystem has; older blocks are evicted to make room",
			"free_bytes", s.FreeBytes, "limit_bytes", s.LimitBytes, "budget_bytes", s.BudgetBytes, "reserve_bytes", s.ReserveBytes)
		return
	}
	d.log.Info("disk space is back: the SSD tier's budget is in force again",
		"free_bytes", s.FreeBytes, "limit_bytes", s.LimitBytes, "budget_bytes", s.BudgetBytes)
}

// noteWriteLocked records how a write ended: a write that failed for lack
// of space sets the full state until a write succeeds or a check finds
// room; refused or failed writes for lack of space are counted. It returns
// whether the full state changed.
func (d *Disk) noteWriteLocked(err error) (changed bool) {
	switch {
	case err == nil:
		if !d.space.writeFull {
			return false
		}
		d.space.writeFull = false
	case isNoSpace(err):
		d.space.writeFull = true
		d.space.fullWrites++
	case errors.Is(err, ErrNoSpace): // refused before writing
		d.space.fullWrites++
		return false
	default:
		return false
	}
	return d.applySpaceLocked(d.space.free, d.space.err)
}

// checkSpace is Run's periodic check: when the filesystem has less room
// than the tier holds plus its reserve (someone else filled it), evict down
// to the shrunken limit without waiting for a write.
func (d *Disk) checkSpace() error {
	d.putMu.Lock()
	defer d.putMu.Unlock()
	free, err := freeSpace(d.cfg.Dir)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	wasFull := d.space.full
	d.applySpaceLocked(free, err)
	var victims []cid.Cid
	if d.bytes > d.space.limit {
		victims = d.evictLocked(0, d.space.limit)
	}
	var flushErr error
	if len(victims) > 0 {
		flushErr = d.flushIndexLocked(nil)
	}
	used := d.bytes
	d.mu.Unlock()
	d.removeFiles(victims)
	d.notifyEvicted(victims)
	d.metrics.setBytes(used)
	s, _ := d.refreshSpace() // the victims' files are gone now
	d.reportSpace(s, s.Full != wasFull)
	return flushErr
}
