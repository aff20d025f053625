package blockstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

// Badger index layout. Keys are a one-byte kind prefix followed by the CID's
// binary form:
//
//	'b' cid -> uvarint(size) uvarint(lastAccessTick) [crc32c]   one per held block
//	'p' cid -> (empty)                                           one per pin, held or not
//
// crc32c is the payload's CRC-32C (Castagnoli), 4 bytes little-endian,
// recorded when the verified block was written (see disk_crc.go). Records
// written before it existed lack it; their blocks are verified against the
// CID on their next read, which then records it.
//
// Pins are keys of their own so a pin can precede its block and outlive its
// deletion by eviction (eviction never touches pinned blocks anyway).
const (
	keyBlock byte = 'b'
	keyPin   byte = 'p'
)

// Badger tuning for a small footprint. The index holds ~60 bytes per block,
// so 1M chunks (4 TB at 4 MiB) are ~60 MB of LSM data; it needs little cache.
const (
	badgerMemTableSize  = 8 << 20  // two of these in RAM at most
	badgerNumMemtables  = 2        //
	badgerBlockCache    = 8 << 20  // SST block cache
	badgerIndexCache    = 8 << 20  // bounds SST index/bloom memory instead of keeping all
	badgerBaseTableSize = 2 << 20  // small SSTs: quick compactions
	badgerVlogFileSize  = 16 << 20 // values are tiny and stay in the LSM; the vlog barely grows
	badgerValueLogGC    = 0.25     // FIELD-NOTES: 0.5 left files just under the ratio; 0.25 reclaimed all
)

func badgerOptions(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false). // badger's expvar metrics are process globals
		WithMemTableSize(badgerMemTableSize).
		WithNumMemtables(badgerNumMemtables).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(badgerBlockCache).
		WithIndexCacheSize(badgerIndexCache).
		WithBaseTableSize(badgerBaseTableSize).
		WithValueLogFileSize(badgerVlogFileSize).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithDetectConflicts(false).
		WithCompactL0OnClose(true)
}

func blockKey(c cid.Cid) []byte { return append([]byte{keyBlock}, c.Bytes()...) }
func pinKey(c cid.Cid) []byte   { return append([]byte{keyPin}, c.Bytes()...) }

func encodeBlockValue(size int64, tick uint64, sum payloadSum) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+4)
	b = binary.AppendUvarint(b, uint64(size))
	b = binary.AppendUvarint(b, tick)
	if sum.ok {
		b = binary.LittleEndian.AppendUint32(b, sum.crc)
	}
	return b
}

var errBadIndexValue = errors.New("blockstore: bad index value")

func decodeBlockValue(v []byte) (size int64, tick uint64, sum payloadSum, err error) {
	s, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, 0, payloadSum{}, errBadIndexValue
	}
	t, m := binary.Uvarint(v[n:])
	if m <= 0 {
		return 0, 0, payloadSum{}, errBadIndexValue
	}
	switch rest := v[n+m:]; len(rest) {
	case 0:
	case 4:
		sum = payloadSum{crc: binary.LittleEndian.Uint32(rest), ok: true}
	default:
		return 0, 0, payloadSum{}, errBadIndexValue
	}
	return int64(s), t, sum, nil
}

// indexRecord is one 'b' entry loaded at open.
type indexRecord struct {
	c    cid.Cid
	size int64
	tick uint64
	sum  payloadSum
}

// loadIndex reads every block and pin record. Undecodable records are
// deleted (they name nothing we can serve).
func loadIndex(db *badger.DB) (blocks []indexRecord, pins []cid.Cid, err error) {
	var bad [][]byte
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.KeyCopy(nil)
			if len(k) < 2 {
				bad = append(bad, k)
				continue
			}
			c, cerr := cid.Cast(k[1:])
			if cerr != nil {
				bad = append(bad, k)
				continue
			}
			switch k[0] {
			case keyPin:
				pins = append(pins, c)
			case keyBlock:
				var rec indexRecord
				verr := item.Value(func(v []byte) error {
					var derr error
					rec.size, rec.tick, rec.sum, derr = decodeBlockValue(v)
					return derr
				})
				if verr != nil {
					bad = append(bad, k)
					continue
				}
				rec.c = c
				blocks = append(blocks, rec)
			default:
				bad = append(bad, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("blockstore: load index: %w", err)
	}
	if len(bad) > 0 {
		if err := deleteKeys(db, bad); err != nil {
			return nil, nil, err
		}
	}
	return blocks, pins, nil
}

// deleteKeys deletes keys in as few transactions as Badger allows.
func deleteKeys(db *badger.DB, keys [][]byte) error {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("blockstore: index delete: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("blockstore: index delete: %w", err)
	}
	return nil
}

// setKeys writes key/value pairs in as few transactions as Badger allows.
func setKeys(db *badger.DB, kvs [][2][]byte) error {
	if len(kvs) == 0 {
		return nil
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for _, kv := range kvs {
		if err := wb.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("blockstore: index set: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("blockstore: index set: %w", err)
	}
	return nil
}

// badgerLogger routes Badger's log lines to slog. Badger's Info lines are
// chatty (every compaction), so they go to Debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(fmt.Sprintf(f, a...)) }
