package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/origin"
)

// HeadObject returns the current version's metadata: from the catalog while
// fresh (or always for immutable prefixes), else revalidated at the origin
// (one HEAD per key at a time); stale metadata is served when the origin
// cannot be reached.
func (n *Node) HeadObject(ctx context.Context, bucket, key string) (gateway.ObjectInfo, error) {
	o, err := n.head(ctx, bucket, key)
	if err != nil {
		return gateway.ObjectInfo{}, mapErr("head "+bucket+"/"+key, err)
	}
	return toGatewayInfo(o.ObjectInfo), nil
}

func objKey(bucket, key string) string { return bucket + "/" + key }

func (n *Node) immutable(bucket, key string) bool {
	for _, p := range n.immut {
		if p.bucket == bucket && strings.HasPrefix(key, p.prefix) {
			return true
		}
	}
	return false
}

func (n *Node) fresh(o catalog.Object) bool {
	return n.immutable(o.Bucket, o.Key) || n.now().Sub(o.CheckedAt) < n.cfg.MetadataTTL
}

// head resolves bucket/key to its current version's metadata. Errors are
// package origin's or catalog's (mapped by the exported callers).
func (n *Node) head(ctx context.Context, bucket, key string) (catalog.Object, error) {
	return n.headAt(ctx, bucket, key, false)
}

// headAt is head; asHome marks a request received as the key's home node
// (PeerHandler.Meta), which asks the origin itself rather than another
// home.
func (n *Node) headAt(ctx context.Context, bucket, key string, asHome bool) (catalog.Object, error) {
	if bucket == "" {
		return catalog.Object{}, fmt.Errorf("empty bucket: %w", origin.ErrInvalidArgument)
	}
	k := objKey(bucket, key)
	if _, ok := n.neg.get(k); ok {
		n.m.metaHits.Add(1)
		return catalog.Object{}, fmt.Errorf("%s (cached): %w", k, origin.ErrNotFound)
	}
	o, err := n.cat.GetObject(ctx, bucket, key)
	if err == nil && n.fresh(o) {
		n.m.metaHits.Add(1)
		return o, nil
	}
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		n.log.Warn("catalog read failed; asking origin", "bucket", bucket, "key", key, "err", err)
	}
	n.m.metaMisses.Add(1)
	place := n.snapshot()
	home := asHome || place.MetaHomeOf(bucket, key)
	t, err := n.joinRevalidate(bucket, key, place, home)
	if err != nil {
		return catalog.Object{}, err
	}
	if t.shared {
		n.m.shared.Add(1)
	}
	if asHome {
		// A peer asking has its own timeouts.
		return t.wait(ctx)
	}
	o, err = t.waitAtMost(ctx, n.cfg.OriginWait)
	return o, n.waitedTooLong(err)
}

// joinRevalidate joins (or starts) bucket/key's revalidation flight for
// the role: as for chunks (see chunkFlightKey), requests that will not
// forward share one flight per key, those that may forward another, and a
// forwarding flight that reaches this node's own place among the key's
// homes joins the home flight (one HEAD per key on this node).
func (n *Node) joinRevalidate(bucket, key string, place placement.Placement, home bool) (*ticket[catalog.Object, struct{}], error) {
	fk := objKey(bucket, key)
	if home {
		fk += "\x00h"
	}
	return n.heads.join(fk, func(ctx context.Context, _ func(struct{})) (catalog.Object, error) {
		return n.revalidate(ctx, bucket, key, place, home)
	})
}

// revalidate asks the origin for bucket/key and updates the catalog: same
// ETag refreshes CheckedAt; another ETag is a new version (the old version's
// chunk index is dropped, its blocks stay content-addressed in the store);
// NoSuchKey forgets the object; an unreachable origin serves what is cached.
// Unless home, the key's home nodes are asked before the origin.
func (n *Node) revalidate(ctx context.Context, bucket, key string, place placement.Placement, home bool) (catalog.Object, error) {
	gen := n.writeGen.Load()
	old, oerr := n.cat.GetObject(ctx, bucket, key)
	have := oerr == nil
	if have && n.fresh(old) { // refreshed by a flight that just finished
		return old, nil
	}
	var (
		o    catalog.Object
		info origin.ObjectInfo
		err  error
		done bool
	)
	if !home {
		o, done, err = n.headFromHome(ctx, bucket, key, place)
		if !done {
			if err := ctx.Err(); err != nil {
				return catalog.Object{}, err
			}
			t, err := n.joinRevalidate(bucket, key, place, true)
			if err != nil {
				return catalog.Object{}, err
			}
			return t.wait(ctx)
		}
	}
	if !done {
		n.m.heads.Add(1)
		info, err = n.org.HeadObject(ctx, bucket, key)
	}
	if err != nil {
		switch {
		case errors.Is(err, origin.ErrNotFound):
			if have {
				n.forget(ctx, old)
			}
			n.neg.put(objKey(bucket, key), struct{}{})
			return catalog.Object{}, err
		case have && originDown(err):
			n.m.stale.Add(1)
			n.log.Warn("origin unavailable; serving stale metadata", "bucket", bucket, "key", key,
				"etag", old.ETag, "checked", old.CheckedAt, "err", err)
			return old, nil
		}
		return catalog.Object{}, err
	}
	if !done {
		if info.Size < 0 {
			return catalog.Object{}, fmt.Errorf("origin reported size %d for %s/%s: %w", info.Size, bucket, key, origin.ErrUnavailable)
		}
		o = fromOriginInfo(info)
		o.Bucket, o.Key = bucket, key
		o.CheckedAt = n.now()
	}
	if have && (old.ETag != o.ETag || old.Size != o.Size) {
		n.log.Info("object changed at origin", "bucket", bucket, "key", key, "old", old.ETag, "new", o.ETag)
		if err := n.cat.DropVersion(ctx, n.version(old.Bucket, old.Key, old.ETag, old.Size)); err != nil {
			n.log.Warn("dropping old version index failed", "err", err)
		}
	}
	// A write through this node during the HEAD may have made info stale:
	// answer this caller, but do not persist it.
	if n.writeGen.Load() == gen {
		if err := n.cat.PutObject(ctx, o); err != nil {
			n.log.Warn("caching metadata failed", "bucket", bucket, "key", key, "err", err)
		}
	}
	return o, nil
}

// forget drops an object's metadata and its version's chunk index.
func (n *Node) forget(ctx context.Context, o catalog.Object) {
	if err := n.cat.DropVersion(ctx, n.version(o.Bucket, o.Key, o.ETag, o.Size)); err != nil {
		n.log.Warn("dropping version index failed", "err", err)
	}
	if err := n.cat.DeleteObject(ctx, o.Bucket, o.Key); err != nil {
		n.log.Warn("dropping metadata failed", "err", err)
	}
}

// listKey is the listing cache key: the bucket, then every parameter.
func listKey(p origin.ListParams) string {
	return strings.Join([]string{p.Bucket, p.Prefix, p.Delimiter, p.ContinuationToken, p.StartAfter,
		strconv.Itoa(p.MaxKeys)}, "\x00")
}

// ListObjectsV2 answers from the origin, cached for ListTTL.
func (n *Node) ListObjectsV2(ctx context.Context, p gateway.ListParams) (gateway.ListResult, error) {
	op := toOriginList(p)
	k := listKey(op)
	r, ok := n.listc.get(k)
	if !ok {
		var shared bool
		var err error
		gen := n.writeGen.Load()
		r, shared, err = n.lists.Do(ctx, k, func(ctx context.Context) (origin.ListResult, error) {
			return n.org.ListObjects(ctx, op)
		})
		if shared {
			n.m.shared.Add(1)
		}
		if err != nil {
			return gateway.ListResult{}, mapErr("list "+p.Bucket, err)
		}
		if n.writeGen.Load() == gen {
			n.listc.put(k, r)
		}
	}
	return toGatewayList(r), nil
}

// ListBuckets passes through, cached for ListTTL.
func (n *Node) ListBuckets(ctx context.Context) ([]gateway.Bucket, error) {
	bs, ok := n.bktc.get("")
	if !ok {
		var err error
		bs, err = n.org.ListBuckets(ctx)
		if err != nil {
			return nil, mapErr("list buckets", err)
		}
		n.bktc.put("", bs)
	}
	out := make([]gateway.Bucket, len(bs))
	for i, b := range bs {
		out[i] = gateway.Bucket{Name: b.Name, CreationDate: b.CreationDate}
	}
	return out, nil
}

// BucketLocation passes through (HeadBucket), cached for ListTTL.
func (n *Node) BucketLocation(ctx context.Context, bucket string) (string, error) {
	if r, ok := n.locc.get(bucket); ok {
		return r, nil
	}
	r, err := n.org.HeadBucket(ctx, bucket)
	if err != nil {
		return "", mapErr("bucket location "+bucket, err)
	}
	n.locc.put(bucket, r)
	return r, nil
}
