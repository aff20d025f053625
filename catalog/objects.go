package catalog

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

const (
	kindObject   = 'o'
	kindChunk    = 'c'
	kindCount    = 'n'
	kindManifest = 'v'
	kindPin      = 'p'
	kindSum      = 'r' // a chunk's checksum: version id, index -> algorithm byte, 8-byte value
	kindVerified = 'y' // a version checked whole against its origin's checksum
)

// bucketKey builds <kind>/<uvarint len(bucket)><bucket><rest>.
func bucketKey(kind byte, bucket, rest string) []byte {
	k := make([]byte, 0, 2+binary.MaxVarintLen64+len(bucket)+len(rest))
	k = append(k, kind, '/')
	k = binary.AppendUvarint(k, uint64(len(bucket)))
	k = append(k, bucket...)
	return append(k, rest...)
}

func checkBucket(bucket string) error {
	if bucket == "" {
		return fmt.Errorf("%w: empty bucket", ErrInvalid)
	}
	return nil
}

// GetObject returns the cached metadata of bucket/key, or ErrNotFound.
func (c *Catalog) GetObject(ctx context.Context, bucket, key string) (Object, error) {
	var o Object
	if err := checkBucket(bucket); err != nil {
		return o, err
	}
	if o, ok := c.cache.object(bucket, key); ok {
		return o, nil
	}
	gen := c.cache.generation()
	err := c.view(ctx, func(txn *badger.Txn) error {
		it, err := txn.Get(bucketKey(kindObject, bucket, key))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("%w: object %s/%s: %w", ErrCorrupt, bucket, key, err)
			}
			return nil
		})
	})
	if err != nil {
		return Object{}, c.wrap("get object", err)
	}
	c.cache.fillObject(gen, o)
	return o, nil
}

// PutObject stores (replaces) the metadata of o.Bucket/o.Key.
func (c *Catalog) PutObject(ctx context.Context, o Object) error {
	if err := checkBucket(o.Bucket); err != nil {
		return err
	}
	v, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("catalog: put object: %w", err)
	}
	err = c.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(bucketKey(kindObject, o.Bucket, o.Key), v)
	})
	c.cache.dropObject(o.Bucket, o.Key) // also on error: it may have committed
	if err != nil {
		return c.wrap("put object", err)
	}
	return nil
}

// DeleteObject forgets the metadata of bucket/key. Deleting an absent
// record is not an error.
func (c *Catalog) DeleteObject(ctx context.Context, bucket, key string) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	err := c.update(ctx, func(txn *badger.Txn) error {
		return txn.Delete(bucketKey(kindObject, bucket, key))
	})
	c.cache.dropObject(bucket, key)
	if err != nil {
		return c.wrap("delete object", err)
	}
	return nil
}

// Objects calls fn for every cached object in bucket whose key starts with
// prefix, in key order, until fn returns false.
func (c *Catalog) Objects(ctx context.Context, bucket, prefix string, fn func(Object) bool) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	pfx := bucketKey(kindObject, bucket, prefix)
	err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: false})
		defer it.Close()
		for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var o Object
			err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &o) })
			if err != nil {
				return fmt.Errorf("%w: object: %w", ErrCorrupt, err)
			}
			if !fn(o) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return c.wrap("list objects", err)
	}
	return nil
}

// Counts scans the catalog's keys (no values) and counts records.
func (c *Catalog) Counts(ctx context.Context) (Counts, error) {
	var n Counts
	err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) < 2 || k[1] != '/' {
				continue
			}
			switch k[0] {
			case kindObject:
				n.Objects++
			case kindChunk:
				n.Chunks++
			case kindManifest:
				n.Manifests++
			case kindPin:
				n.Pins++
			}
		}
		return nil
	})
	if err != nil {
		return Counts{}, c.wrap("counts", err)
	}
	return n, nil
}

// AddPin records a pinned prefix (idempotent).
func (c *Catalog) AddPin(ctx context.Context, p Pin) error {
	if err := checkBucket(p.Bucket); err != nil {
		return err
	}
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("catalog: add pin: %w", err)
	}
	if err := c.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(bucketKey(kindPin, p.Bucket, p.Prefix), v)
	}); err != nil {
		return c.wrap("add pin", err)
	}
	return nil
}

// RemovePin forgets a pinned prefix; it reports whether it was recorded.
func (c *Catalog) RemovePin(ctx context.Context, bucket, prefix string) (bool, error) {
	if err := checkBucket(bucket); err != nil {
		return false, err
	}
	var had bool
	k := bucketKey(kindPin, bucket, prefix)
	err := c.update(ctx, func(txn *badger.Txn) error {
		_, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			had = false
			return nil
		}
		if err != nil {
			return err
		}
		had = true
		return txn.Delete(k)
	})
	if err != nil {
		return false, c.wrap("remove pin", err)
	}
	return had, nil
}

// Pins returns every pinned prefix.
func (c *Catalog) Pins(ctx context.Context) ([]Pin, error) {
	var out []Pin
	pfx := []byte{kindPin, '/'}
	err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: false})
		defer it.Close()
		for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
			var p Pin
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &p) }); err != nil {
				return fmt.Errorf("%w: pin: %w", ErrCorrupt, err)
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, c.wrap("pins", err)
	}
	return out, nil
}

// Pinned reports whether bucket/key falls under a pinned prefix.
func (c *Catalog) Pinned(ctx context.Context, bucket, key string) (bool, error) {
	pins, err := c.Pins(ctx)
	if err != nil {
		return false, err
	}
	for _, p := range pins {
		if p.Bucket == bucket && strings.HasPrefix(key, p.Prefix) {
			return true, nil
		}
	}
	return false, nil
}
