package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/origin"
)

// PinResult reports the work done by Pin, Unpin or Prefetch.
type PinResult struct {
	Objects int64 // objects fully done
	Bytes   int64 // bytes of those objects
	Chunks  int64 // chunks of those objects (Unpin: blocks unpinned, manifests included)
	// Errors lists objects that failed; the others were still done.
	Errors []ObjectError
}

// ObjectError is one object's failure.
type ObjectError struct {
	Key string
	Err error
}

func (e ObjectError) Error() string { return e.Key + ": " + e.Err.Error() }

// Pin fetches every object under bucket/prefix at the origin into the store
// and pins its chunks and manifest (never evicted), and records the pinned
// prefix persistently. Per-object failures are reported in the result; an
// error is returned only when listing fails or ctx ends.
func (n *Node) Pin(ctx context.Context, bucket, prefix string) (PinResult, error) {
	if bucket == "" {
		return PinResult{}, mapErr("pin", fmt.Errorf("empty bucket: %w", origin.ErrInvalidArgument))
	}
	if err := n.cat.AddPin(ctx, catalog.Pin{Bucket: bucket, Prefix: prefix, Created: n.now()}); err != nil {
		return PinResult{}, mapErr("pin", err)
	}
	return n.warmPrefix(ctx, bucket, prefix, true)
}

// Repin takes every pinned prefix of the catalog again, for a store that
// lost its block pins (an SSD index rebuilt after damage): the chunks held
// are pinned in place, missing ones fetched. The catalog's prefixes are the
// record of what the operator pinned; a prefix whose listing fails is
// reported in the error and the others are still done.
func (n *Node) Repin(ctx context.Context) (PinResult, error) {
	ps, err := n.cat.Pins(ctx)
	if err != nil {
		return PinResult{}, mapErr("repin", err)
	}
	var (
		total PinResult
		errs  []error
	)
	for _, p := range ps {
		res, err := n.warmPrefix(ctx, p.Bucket, p.Prefix, true)
		total.Objects += res.Objects
		total.Bytes += res.Bytes
		total.Chunks += res.Chunks
		total.Errors = append(total.Errors, res.Errors...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// Prefetch is Pin without pinning: the chunks land in the store and may be
// evicted later.
func (n *Node) Prefetch(ctx context.Context, bucket, prefix string) (PinResult, error) {
	if bucket == "" {
		return PinResult{}, mapErr("prefetch", fmt.Errorf("empty bucket: %w", origin.ErrInvalidArgument))
	}
	return n.warmPrefix(ctx, bucket, prefix, false)
}

// Pins lists the pinned prefixes.
func (n *Node) Pins(ctx context.Context) ([]catalog.Pin, error) {
	ps, err := n.cat.Pins(ctx)
	if err != nil {
		return nil, mapErr("pins", err)
	}
	return ps, nil
}

func (n *Node) warmPrefix(ctx context.Context, bucket, prefix string, pin bool) (PinResult, error) {
	var (
		mu  sync.Mutex // guards res
		res PinResult
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n.cfg.PinConcurrency)
	p := origin.ListParams{Bucket: bucket, Prefix: prefix}
	var listErr error
	for {
		page, err := n.org.ListObjects(gctx, p)
		if err != nil {
			listErr = mapErr("pin: list "+bucket+"/"+prefix, err)
			break
		}
		for _, e := range page.Entries {
			g.Go(func() error {
				chunks, size, err := n.warmObject(gctx, bucket, e.Key, pin)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if gctx.Err() == nil {
						res.Errors = append(res.Errors, ObjectError{Key: e.Key, Err: err})
					}
					return nil
				}
				res.Objects++
				res.Bytes += size
				res.Chunks += chunks
				return nil
			})
		}
		if !page.IsTruncated || page.NextContinuationToken == "" || gctx.Err() != nil {
			break
		}
		p.ContinuationToken = page.NextContinuationToken
	}
	_ = g.Wait()
	if listErr == nil && ctx.Err() != nil {
		listErr = mapErr("pin", ctx.Err())
	}
	return res, listErr
}

// warmObject fetches every chunk of bucket/key's current version (through
// the shared fetch path, so concurrent readers are not duplicated) and pins
// the chunks and manifest if pin is set.
func (n *Node) warmObject(ctx context.Context, bucket, key string, pin bool) (chunks, size int64, err error) {
	o, err := n.head(ctx, bucket, key)
	if err != nil {
		return 0, 0, mapErr("head", err)
	}
	v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
	for i := range v.NumChunks() {
		d, _, err := n.readChunk(ctx, v, i, access{ahead: true})
		if err != nil {
			return 0, 0, mapErr(fmt.Sprintf("chunk %d", i), err)
		}
		if pin {
			if err := n.store.Pin(ctx, d.cid); err != nil {
				return 0, 0, mapErr(fmt.Sprintf("pin chunk %d", i), err)
			}
		}
	}
	mc, err := n.ensureManifest(ctx, v)
	if err != nil {
		return 0, 0, err
	}
	if pin {
		if err := n.store.Pin(ctx, mc); err != nil {
			return 0, 0, mapErr("pin manifest", err)
		}
	}
	return v.NumChunks(), v.Size, nil
}

// Unpin releases the pins taken by Pin(bucket, prefix) on the cached
// versions of objects under the prefix, except objects still covered by
// another pinned prefix, and forgets the pinned prefix, on this node and
// (in a cluster) on every member, which releases its replica copies. The
// blocks stay in the stores until evicted.
func (n *Node) Unpin(ctx context.Context, bucket, prefix string) (PinResult, error) {
	if bucket == "" {
		return PinResult{}, mapErr("unpin", fmt.Errorf("empty bucket: %w", origin.ErrInvalidArgument))
	}
	res, err := n.unpinLocal(ctx, bucket, prefix)
	if err == nil {
		n.broadcastPin(ctx, ctlReq{Op: opUnpin, Bucket: bucket, Prefix: prefix})
	}
	return res, err
}

// unpinLocal is Unpin on this node only.
func (n *Node) unpinLocal(ctx context.Context, bucket, prefix string) (PinResult, error) {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	if _, err := n.cat.RemovePin(ctx, bucket, prefix); err != nil {
		return PinResult{}, mapErr("unpin", err)
	}
	others, err := n.cat.Pins(ctx)
	if err != nil {
		return PinResult{}, mapErr("unpin", err)
	}
	var res PinResult
	var objs []catalog.Object
	if err := n.cat.Objects(ctx, bucket, prefix, func(o catalog.Object) bool {
		objs = append(objs, o)
		return true
	}); err != nil {
		return res, mapErr("unpin", err)
	}
	for _, o := range objs {
		covered := false
		for _, p := range others {
			if p.Bucket == bucket && strings.HasPrefix(o.Key, p.Prefix) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
		chunks, err := n.cat.Chunks(ctx, v)
		if err == nil {
			if mc, merr := n.cat.Manifest(ctx, v); merr == nil {
				chunks = append(chunks, mc)
			}
			for _, c := range chunks {
				if !c.Defined() {
					continue
				}
				res.Chunks++
				if uerr := n.store.Unpin(ctx, c); uerr != nil {
					err = errors.Join(err, uerr)
				}
			}
		}
		if err != nil {
			res.Errors = append(res.Errors, ObjectError{Key: o.Key, Err: err})
			continue
		}
		res.Objects++
		res.Bytes += o.Size
	}
	return res, nil
}
