// Package blockstore owns chunk storage on one node: a memory tier, an SSD
// tier (chunk payloads in files under a Badger v4 index), and a tiered store
// that composes them with byte budgets, pins and eviction. Every
// implementation passes the conformance suite in blockstore/storetest.
//
// Blocks are immutable and content-addressed: the bytes stored under a CID
// always hash to that CID. Stores verify what they read back from disk and
// drop a block that no longer matches instead of returning it.
//
// Policies. Memory evicts with S3-FIFO: new blocks go through a small
// probation FIFO (10% of the budget) and only blocks read while on probation
// reach the main FIFO, so a one-off scan cannot flush hot chunks
// (BenchmarkMemoryPolicy: 0.69 hit ratio vs 0.64 for LRU on Zipf + scans).
// Disk evicts with CLOCK (second-chance LRU) from 95% down to 85% of its
// budget, inline in Put; last-access ticks are persisted periodically so the
// order survives restarts. Pinned blocks are never evicted by either tier.
// Tiered writes to disk asynchronously and never makes a reader wait for it.
//
// The chunk files are the truth and the Badger index only remembers their
// sizes, access order and pins: OpenDisk indexes block files the index does
// not know, and a damaged index is moved aside and rebuilt from the files.
//
// The SSD tier's budget in force is the smaller of its configured budget
// and what its filesystem has room for (held + free - ReserveBytes), asked
// on every write and periodically in Run; Disk.Space reports it ("disk
// full" and the free bytes).
package blockstore

import (
	"context"
	"errors"

	"github.com/ipfs/go-cid"
)

// Sentinel errors. Implementations wrap them with an operation prefix;
// callers compare with errors.Is.
var (
	// ErrNotFound: the store does not hold the block (or held a corrupt copy
	// and dropped it).
	ErrNotFound = errors.New("blockstore: block not found")
	// ErrHashMismatch: the bytes given to Put do not hash to the CID.
	ErrHashMismatch = errors.New("blockstore: data does not match cid")
	// ErrTooLarge: the block is larger than the store's whole budget.
	ErrTooLarge = errors.New("blockstore: block larger than budget")
	// ErrFull: the store cannot make room (everything left is pinned, or the
	// disk is full). Reads keep working.
	ErrFull = errors.New("blockstore: store full")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("blockstore: closed")
)

// Store is a content-addressed block store with pins.
//
// The slice returned by Get must be treated as read-only by the caller: a
// memory tier hands out its own copy without cloning it.
type Store interface {
	// Get returns the block's bytes, or ErrNotFound.
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	// Has reports whether the block is held, without reading it.
	Has(ctx context.Context, c cid.Cid) (bool, error)
	// Put stores the block. The store verifies that data hashes to c and
	// returns ErrHashMismatch otherwise. Putting a held block is a no-op.
	Put(ctx context.Context, c cid.Cid, data []byte) error
	// Delete removes the block (pinned or not). Deleting an absent block is
	// not an error.
	Delete(ctx context.Context, c cid.Cid) error
	// Pin marks the block as never to be evicted; it need not be present yet
	// (a pin taken before the block arrives holds once it lands). Pins
	// survive a restart in persistent stores.
	Pin(ctx context.Context, c cid.Cid) error
	// Unpin releases a pin. Unpinning an unpinned block is not an error.
	Unpin(ctx context.Context, c cid.Cid) error
	// Stats reports counters and byte usage.
	Stats() Stats
	// Close releases resources. Further calls return ErrClosed.
	Close() error
}

// Stats is a snapshot of a store's usage.
type Stats struct {
	Blocks      int64 // blocks held
	Bytes       int64 // payload bytes held
	BudgetBytes int64 // configured byte budget (0 = unlimited)
	Pinned      int64 // pinned blocks held
	PinnedBytes int64 // payload bytes of the pinned blocks held
	Hits        int64
	Misses      int64
	Evictions   int64
	Corrupt     int64 // blocks dropped because they failed verification
}
