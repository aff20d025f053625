package blockstore

// This file owns the SSD tier's at-rest integrity. Bytes on the node's own
// disk are not an adversary, bit rot and torn writes are: every block is
// verified against its CID before it is written (Put, or a content.Block
// for putVerified), its CRC-32C is recorded in the index with it, and every
// disk read checks that CRC instead of hashing the block again (CRC-32C
// runs at memory speed with SSE4.2/ARMv8 CRC instructions; SHA-256 at about
// 1.5-1.8 GB/s per core here). A background scrub re-verifies the CIDs of
// held blocks at a bounded rate, the way ZFS and Ceph BlueStore scrub.
// A block that fails either check is dropped (and counted corrupt), so the
// read path refetches it.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"time"

	"github.com/ipfs/go-cid"
)

// DefaultScrubRate is the scrub's default pace in payload bytes per second.
// Reading and hashing a GiB costs about 1 CPU-s here (SHA-256 0.67 of it),
// so 4 MiB/s takes 0.4-0.8% of one core (the higher figure measured on the
// shared 2-core box under load) and re-verifies the default 20 GiB SSD
// tier in about 85 minutes, 1 TiB in about 3 days (Ceph deep-scrubs
// weekly by default).
const DefaultScrubRate = 4 << 20

// scrubIdle is how long the scrub waits when the tier holds nothing.
const scrubIdle = 10 * time.Second

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// payloadSum is a block payload's CRC-32C; ok is false for index records
// written before CRCs were recorded.
type payloadSum struct {
	crc uint32
	ok  bool
}

func sumOf(data []byte) payloadSum {
	return payloadSum{crc: crc32.Checksum(data, castagnoli), ok: true}
}

// errChecksum: a disk read does not match the CRC recorded at write.
var errChecksum = errors.New("crc32c mismatch")

// checkRead checks a block read from disk: against its recorded CRC, or,
// for a record without one, against its CID, recording the CRC then (if
// the slot still holds the same copy) so the next read is cheap.
func (d *Disk) checkRead(c cid.Cid, i int32, gen uint32, sum payloadSum, data []byte) error {
	if sum.ok {
		if got := crc32.Checksum(data, castagnoli); got != sum.crc {
			return fmt.Errorf("blockstore: disk get %s: %w: %w (recorded %08x, read %08x)", c, ErrHashMismatch, errChecksum, sum.crc, got)
		}
		return nil
	}
	if err := verify("disk get", c, data); err != nil {
		return err
	}
	d.recordSum(c, i, gen, sumOf(data))
	return nil
}

// recordSum sets the CRC of a block whose record lacked one; it reaches the
// index with the next persisted access ticks (the slot is marked dirty).
func (d *Disk) recordSum(c cid.Cid, i int32, gen uint32, sum payloadSum) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j, ok := d.index[c]; ok && j == i && d.slots[i].gen == gen && !d.slots[i].sum.ok {
		d.slots[i].sum, d.slots[i].dirty = sum, true
	}
}

// ScrubStats is what one scrub pass did.
type ScrubStats struct {
	Blocks, Bytes int64 // verified (and found good or corrupt)
	Corrupt       int64 // dropped: their bytes no longer hash to their CID
}

// Scrub reads every block held when it starts once and verifies it against
// its CID, dropping (and counting in Stats.Corrupt) those that fail, so the
// read path refetches them. rate paces it in payload bytes per second
// (<= 0: as fast as the disk allows). Blocks evicted or deleted meanwhile
// are skipped. It returns early with ctx's error.
func (d *Disk) Scrub(ctx context.Context, rate int64) (ScrubStats, error) {
	var st ScrubStats
	var buf []byte
	start := time.Now()
	d.mu.Lock()
	n := len(d.slots)
	d.mu.Unlock()
	for pos := 0; pos < n; pos++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return st, fmt.Errorf("blockstore: disk scrub: %w", ErrClosed)
		}
		if pos >= len(d.slots) || !d.slots[pos].c.Defined() {
			d.mu.Unlock()
			continue
		}
		s := d.slots[pos]
		d.mu.Unlock()
		if int64(cap(buf)) < s.size {
			buf = make([]byte, s.size)
		}
		data := buf[:s.size]
		err := readBlockFile(d.blockPath(s.c), data)
		if errors.Is(err, fs.ErrNotExist) {
			continue // evicted or deleted since; a read would notice otherwise
		}
		if err == nil {
			err = verify("disk scrub", s.c, data)
		}
		st.Blocks++
		st.Bytes += s.size
		if err != nil {
			if d.removeCopy(s.c, int32(pos), s.gen, true, err) {
				st.Corrupt++
			}
		} else if !s.sum.ok {
			d.recordSum(s.c, int32(pos), s.gen, sumOf(data))
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(st.Bytes) / float64(rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return st, ctx.Err()
				case <-t.C:
				}
			}
		}
	}
	return st, nil
}

// scrubLoop scrubs at the configured rate until ctx is done, one pass
// after another (a pass over an empty tier waits scrubIdle). The first pass
// starts one MaintenanceInterval after Run: a node that just started is
// busy warming, and what it lands then was verified on arrival.
func (d *Disk) scrubLoop(ctx context.Context) {
	rate := d.cfg.ScrubRate
	if rate < 0 {
		return
	}
	first := time.NewTimer(d.cfg.MaintenanceInterval)
	select {
	case <-ctx.Done():
		first.Stop()
		return
	case <-first.C:
	}
	for ctx.Err() == nil {
		st, err := d.Scrub(ctx, rate)
		switch {
		case errors.Is(err, ErrClosed), ctx.Err() != nil:
			return
		case err != nil:
			d.log.Warn("scrub", "err", err)
		}
		if st.Corrupt > 0 {
			d.log.Warn("scrub dropped corrupt blocks", "blocks", st.Blocks, "corrupt", st.Corrupt)
		}
		if st.Blocks == 0 {
			t := time.NewTimer(scrubIdle)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}
