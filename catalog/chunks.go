package catalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

func versionKey(kind byte, v Version) []byte {
	id := v.ID()
	k := make([]byte, 0, 2+len(id)+4)
	k = append(k, kind, '/')
	return append(k, id[:]...)
}

func chunkKey(v Version, i int64) []byte {
	return binary.BigEndian.AppendUint32(versionKey(kindChunk, v), uint32(i))
}

func checkIndex(v Version, i int64) error {
	if i < 0 || i >= v.NumChunks() || i > math.MaxUint32 {
		return fmt.Errorf("%w: chunk index %d of %d", ErrInvalid, i, v.NumChunks())
	}
	return nil
}

// Sum is a chunk's checksum under the algorithm its version's origin
// reports (the catalog only stores it: Alg is the caller's code, 0 none).
type Sum struct {
	Alg   byte
	Value uint64
}

func sumKey(v Version, i int64) []byte {
	return binary.BigEndian.AppendUint32(versionKey(kindSum, v), uint32(i))
}

// PutChunk records that chunk i of v has CID c, and returns how many
// distinct chunk CIDs of v are now known. Recording a known chunk again is a
// no-op (the count does not change).
func (c *Catalog) PutChunk(ctx context.Context, v Version, i int64, id cid.Cid) (known int64, err error) {
	return c.PutChunkSum(ctx, v, i, id, Sum{})
}

// PutChunkSum is PutChunk that also records the chunk's checksum (unless
// sum.Alg is 0) in the same transaction.
func (c *Catalog) PutChunkSum(ctx context.Context, v Version, i int64, id cid.Cid, sum Sum) (known int64, err error) {
	if err := checkIndex(v, i); err != nil {
		return 0, err
	}
	if !id.Defined() {
		return 0, fmt.Errorf("%w: undefined cid", ErrInvalid)
	}
	ck, nk := chunkKey(v, i), versionKey(kindCount, v)
	gen := c.cache.generation()
	err = c.update(ctx, func(txn *badger.Txn) error {
		known = 0
		n, err := readCount(txn, nk)
		if err != nil {
			return err
		}
		_, err = txn.Get(ck)
		switch {
		case err == nil:
			known = n
		case errors.Is(err, badger.ErrKeyNotFound):
			known = n + 1
			if err := txn.Set(ck, id.Bytes()); err != nil {
				return err
			}
			if err := txn.Set(nk, binary.AppendUvarint(nil, uint64(known))); err != nil {
				return err
			}
			if sum.Alg != 0 {
				if err := txn.Set(sumKey(v, i), binary.BigEndian.AppendUint64([]byte{sum.Alg}, sum.Value)); err != nil {
					return err
				}
			}
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return 0, c.wrap("put chunk", err)
	}
	c.cache.fillChunk(gen, v, i, id)
	return known, nil
}

func readCount(txn *badger.Txn, k []byte) (int64, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = it.Value(func(v []byte) error {
		var k int
		n, k = binary.Uvarint(v)
		if k <= 0 {
			return fmt.Errorf("%w: chunk count", ErrCorrupt)
		}
		return nil
	})
	return int64(n), err
}

// Chunk returns the CID of chunk i of v, or ErrNotFound.
func (c *Catalog) Chunk(ctx context.Context, v Version, i int64) (cid.Cid, error) {
	if err := checkIndex(v, i); err != nil {
		return cid.Undef, err
	}
	if id, ok := c.cache.chunk(v, i); ok {
		return id, nil
	}
	gen := c.cache.generation()
	out, err := c.readCID(ctx, chunkKey(v, i))
	if err != nil {
		return cid.Undef, c.wrap("get chunk", err)
	}
	c.cache.fillChunk(gen, v, i, out)
	return out, nil
}

// readCID reads the CID stored under key.
func (c *Catalog) readCID(ctx context.Context, key []byte) (cid.Cid, error) {
	var out cid.Cid
	err := c.view(ctx, func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			out, err = decodeCID(b)
			return err
		})
	})
	return out, err
}

// Chunks returns v's chunk index: NumChunks entries, cid.Undef where the
// chunk is not known yet.
func (c *Catalog) Chunks(ctx context.Context, v Version) ([]cid.Cid, error) {
	n := v.NumChunks()
	if n > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d chunks", ErrInvalid, n)
	}
	out := make([]cid.Cid, n)
	pfx := versionKey(kindChunk, v)
	err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: false})
		defer it.Close()
		for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if len(k) != len(pfx)+4 {
				return fmt.Errorf("%w: chunk key", ErrCorrupt)
			}
			i := int64(binary.BigEndian.Uint32(k[len(pfx):]))
			if i >= n {
				return fmt.Errorf("%w: chunk index %d of %d", ErrCorrupt, i, n)
			}
			err := it.Item().Value(func(b []byte) error {
				var err error
				out[i], err = decodeCID(b)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.wrap("chunks", err)
	}
	return out, nil
}

// ChunkSums returns the checksums recorded for v's chunks: NumChunks
// entries, Alg 0 where none is known.
func (c *Catalog) ChunkSums(ctx context.Context, v Version) ([]Sum, error) {
	n := v.NumChunks()
	if n > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d chunks", ErrInvalid, n)
	}
	out := make([]Sum, n)
	pfx := versionKey(kindSum, v)
	err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
		defer it.Close()
		for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
			k := it.Item().Key()
			if len(k) != len(pfx)+4 {
				return fmt.Errorf("%w: sum key", ErrCorrupt)
			}
			i := int64(binary.BigEndian.Uint32(k[len(pfx):]))
			if i >= n {
				return fmt.Errorf("%w: sum index %d of %d", ErrCorrupt, i, n)
			}
			err := it.Item().Value(func(b []byte) error {
				if len(b) != 9 {
					return fmt.Errorf("%w: sum of %d bytes", ErrCorrupt, len(b))
				}
				out[i] = Sum{Alg: b[0], Value: binary.BigEndian.Uint64(b[1:])}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.wrap("chunk sums", err)
	}
	return out, nil
}

// ChunkSum returns chunk i of v's checksum, or ErrNotFound.
func (c *Catalog) ChunkSum(ctx context.Context, v Version, i int64) (Sum, error) {
	if err := checkIndex(v, i); err != nil {
		return Sum{}, err
	}
	var out Sum
	err := c.view(ctx, func(txn *badger.Txn) error {
		it, err := txn.Get(sumKey(v, i))
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			if len(b) != 9 {
				return fmt.Errorf("%w: sum of %d bytes", ErrCorrupt, len(b))
			}
			out = Sum{Alg: b[0], Value: binary.BigEndian.Uint64(b[1:])}
			return nil
		})
	})
	if err != nil {
		return Sum{}, c.wrap("chunk sum", err)
	}
	return out, nil
}

// SetVerified records that v was checked whole against its origin's
// checksum on this node.
func (c *Catalog) SetVerified(ctx context.Context, v Version) error {
	err := c.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(versionKey(kindVerified, v), []byte{1})
	})
	if err != nil {
		return c.wrap("set verified", err)
	}
	return nil
}

// Verified reports whether SetVerified was called for v (and v not
// dropped since).
func (c *Catalog) Verified(ctx context.Context, v Version) (bool, error) {
	err := c.view(ctx, func(txn *badger.Txn) error {
		_, err := txn.Get(versionKey(kindVerified, v))
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, c.wrap("verified", err)
}

// SetManifest records v's manifest CID.
func (c *Catalog) SetManifest(ctx context.Context, v Version, id cid.Cid) error {
	if !id.Defined() {
		return fmt.Errorf("%w: undefined cid", ErrInvalid)
	}
	err := c.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(versionKey(kindManifest, v), id.Bytes())
	})
	if err != nil {
		return c.wrap("set manifest", err)
	}
	return nil
}

// Manifest returns v's manifest CID, or ErrNotFound.
func (c *Catalog) Manifest(ctx context.Context, v Version) (cid.Cid, error) {
	out, err := c.readCID(ctx, versionKey(kindManifest, v))
	if err != nil {
		return cid.Undef, c.wrap("get manifest", err)
	}
	return out, nil
}

// DropVersion forgets v's chunk index, checksums, count, manifest CID and
// verification. The chunk
// blocks themselves are content-addressed and stay in the block store
// (evictable) until evicted.
func (c *Catalog) DropVersion(ctx context.Context, v Version) error {
	var keys [][]byte
	err := c.view(ctx, func(txn *badger.Txn) error {
		for _, pfx := range [][]byte{versionKey(kindChunk, v), versionKey(kindSum, v)} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: false})
			for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return c.wrap("drop version", err)
	}
	keys = append(keys, versionKey(kindCount, v), versionKey(kindManifest, v), versionKey(kindVerified, v))
	wb := c.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return c.wrap("drop version", err)
		}
	}
	err = wb.Flush()
	c.cache.dropVersion(v) // also on error: part of it may have committed
	if err != nil {
		return c.wrap("drop version", err)
	}
	return nil
}
