package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Job records: the catalog keeps jobs (package jobs: warm-ups of a prefix)
// as opaque records so that a job outlives the process that ran it. The
// catalog does not read them; package jobs owns their format.
//
//	j/<id>           -> job record
//	k/<id> 0 <item>  -> one item of the job (an object's outcome)
const (
	kindJob     = 'j'
	kindJobItem = 'k'
	// maxJobID bounds a job ID (package jobs uses 16 hex digits).
	maxJobID = 64
)

func jobKey(id string) []byte { return append([]byte{kindJob, '/'}, id...) }

func jobItemPrefix(id string) []byte {
	k := append([]byte{kindJobItem, '/'}, id...)
	return append(k, 0)
}

func checkJobID(id string) error {
	if id == "" || len(id) > maxJobID {
		return fmt.Errorf("%w: job id of %d bytes", ErrInvalid, len(id))
	}
	for i := range len(id) {
		if id[i] == 0 || id[i] == '/' {
			return fmt.Errorf("%w: job id %q", ErrInvalid, id)
		}
	}
	return nil
}

// PutJob stores (or replaces) job id's record.
func (c *Catalog) PutJob(ctx context.Context, id string, rec []byte) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	if err := c.update(ctx, func(txn *badger.Txn) error { return txn.Set(jobKey(id), rec) }); err != nil {
		return c.wrap("put job", err)
	}
	return nil
}

// Job returns job id's record, or ErrNotFound.
func (c *Catalog) Job(ctx context.Context, id string) ([]byte, error) {
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	var out []byte
	err := c.view(ctx, func(txn *badger.Txn) error {
		it, err := txn.Get(jobKey(id))
		if err != nil {
			return err
		}
		out, err = it.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, c.wrap("job", err)
	}
	return out, nil
}

// Jobs calls fn with every job record, in ID order, until fn returns false.
func (c *Catalog) Jobs(ctx context.Context, fn func(id string, rec []byte) bool) error {
	return c.scanJobs(ctx, "jobs", []byte{kindJob, '/'}, fn)
}

// scanJobs calls fn with the key (past pfx) and value of every record
// under pfx, in key order, until fn returns false.
func (c *Catalog) scanJobs(ctx context.Context, op string, pfx []byte, fn func(name string, rec []byte) bool) error {
	err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: true})
		defer it.Close()
		for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if !fn(string(it.Item().Key()[len(pfx):]), v) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return c.wrap(op, err)
	}
	return nil
}

// PutJobItem stores (or replaces) one item of job id.
func (c *Catalog) PutJobItem(ctx context.Context, id, item string, rec []byte) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	k := append(jobItemPrefix(id), item...)
	if err := c.update(ctx, func(txn *badger.Txn) error { return txn.Set(k, rec) }); err != nil {
		return c.wrap("put job item", err)
	}
	return nil
}

// JobItems calls fn with every item of job id, in item order, until fn
// returns false.
func (c *Catalog) JobItems(ctx context.Context, id string, fn func(item string, rec []byte) bool) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	return c.scanJobs(ctx, "job items", jobItemPrefix(id), fn)
}

// DeleteJob forgets job id and its items.
func (c *Catalog) DeleteJob(ctx context.Context, id string) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	var keys [][]byte
	pfx := jobItemPrefix(id)
	if err := c.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx, PrefetchValues: false})
		defer it.Close()
		for it.Seek(pfx); it.ValidForPrefix(pfx); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	}); err != nil {
		return c.wrap("delete job", err)
	}
	keys = append(keys, jobKey(id))
	wb := c.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return c.wrap("delete job", err)
		}
	}
	if err := wb.Flush(); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return c.wrap("delete job", err)
	}
	return nil
}
