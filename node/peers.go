package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/origin"
)

// The cluster read path: manifests from DHT records, chunks from their
// providers, and misses sent to home nodes.

// resolveManifest learns v's chunk CIDs from the cluster: the version's
// manifest record in the DHT names the manifest, which is fetched from its
// providers, verified, decoded, checked against v and recorded in the
// catalog. Concurrent calls for one version share one lookup; a miss is
// remembered for manifestMissTTL.
func (n *Node) resolveManifest(ctx context.Context, v catalog.Version) error {
	cl := n.cl
	id := v.ID()
	k := string(id[:])
	if _, ok := cl.missing.get(k); ok {
		return errNoManifest
	}
	_, _, err := cl.lookups.Do(ctx, k, func(ctx context.Context) (struct{}, error) {
		start := time.Now()
		err := n.lookupManifest(ctx, v)
		n.log.Debug("manifest lookup", "bucket", v.Bucket, "key", v.Key, "took", time.Since(start), "err", err)
		return struct{}{}, err
	})
	if err != nil && ctx.Err() == nil && n.base.Err() == nil {
		cl.missing.put(k, struct{}{})
	}
	return err
}

// resolveManifestWait is resolveManifest, except that with wait > 0 the
// lookup runs detached from ctx and the caller waits for it at most wait:
// then it returns errManifestPending and the lookup goes on (its result
// lands in the catalog for the chunks that follow). wait <= 0 waits for
// the lookup (within ctx).
func (n *Node) resolveManifestWait(ctx context.Context, v catalog.Version, wait time.Duration) error {
	if wait <= 0 {
		return n.resolveManifest(ctx, v)
	}
	cl := n.cl
	id := v.ID()
	k := string(id[:])
	if _, ok := cl.missing.get(k); ok {
		return errNoManifest
	}
	done := make(chan error, 1)
	lctx, cancel := context.WithTimeout(n.base, 2*lookupTimeout)
	n.wg.Go(func() {
		defer cancel()
		done <- n.resolveManifest(lctx, v)
	})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errManifestPending
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) lookupManifest(ctx context.Context, v catalog.Version) error {
	if _, err := n.cat.Manifest(ctx, v); err == nil {
		return nil // learnt by a lookup that just finished
	}
	cl := n.cl
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	rec, err := cl.Router.GetManifestRecord(lctx, v.Bucket, v.Key, v.ETag)
	cancel()
	if err != nil {
		return wrapLookup("manifest record", errors.Join(errNoManifest, err))
	}
	if rec.Size != v.Size || rec.ChunkSize != v.ChunkSize || rec.Hash != v.Hash {
		// Published by a node cut with another chunk size or hash: its chunks
		// are not ours.
		return fmt.Errorf("node: manifest record of %s/%s is cut %d/%s, want %d/%s: %w",
			v.Bucket, v.Key, rec.ChunkSize, rec.Hash, v.ChunkSize, v.Hash, errNoManifest)
	}
	mc := rec.Manifest
	if mc.Prefix().Codec != ManifestCodec {
		return fmt.Errorf("node: manifest record names %s, not a manifest: %w", mc, errNoManifest)
	}
	var fetched content.Block
	data, err := n.store.Get(ctx, mc)
	if err != nil {
		fctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		provs, ferr := cl.Router.FindProviders(fctx, mc, findLimit)
		cancel()
		if ferr != nil || len(provs) == 0 {
			return fmt.Errorf("node: no provider for manifest %s: %w", mc, errors.Join(errNoManifest, ferr))
		}
		b, err := cl.Transfer.GetVerified(ctx, mc, provs)
		if err != nil {
			return fmt.Errorf("node: manifest %s: %w", mc, errors.Join(errNoManifest, err))
		}
		fetched, data = b, b.Data()
	}
	// Both sources hand out verified bytes: the store verifies what it
	// reads back, GetVerified what it received.
	m, err := DecodeManifest(data)
	if err != nil {
		return errors.Join(errNoManifest, err)
	}
	if m.Bucket != v.Bucket || m.Key != v.Key || m.ETag != v.ETag || m.Size != v.Size ||
		m.ChunkSize != v.ChunkSize || string(m.Hash) != v.Hash {
		return fmt.Errorf("node: manifest %s describes another version: %w", mc, errNoManifest)
	}
	for i, c := range m.Chunks {
		if _, err := n.cat.PutChunk(ctx, v, int64(i), c); err != nil {
			return fmt.Errorf("node: recording chunk %d of manifest %s: %w", i, mc, err)
		}
	}
	if fetched.CID().Defined() {
		n.keepBlock(ctx, fetched)
	}
	if err := n.cat.SetManifest(ctx, v, mc); err != nil {
		return err
	}
	n.m.manifestsFound.Add(1)
	return nil
}

// fromProviders fetches a chunk whose CID is known from the peers that
// announced it, several at once (transfer splits the chunk between them),
// and verifies it. It reports false when no provider delivered.
func (n *Node) fromProviders(ctx context.Context, req ChunkRequest) (content.Block, bool) {
	cl := n.cl
	c := req.CID
	fctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	provs, err := cl.Router.FindProviders(fctx, c, findLimit)
	cancel()
	if err != nil || len(provs) == 0 {
		if err != nil && ctx.Err() == nil {
			n.log.Debug("finding providers failed", "cid", c, "err", err)
		}
		return content.Block{}, false
	}
	b, err := cl.Transfer.GetVerified(ctx, c, provs)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("providers could not deliver", "cid", c, "providers", len(provs), "err", err)
		}
		return content.Block{}, false
	}
	// GetVerified verified the bytes against c (see Transfer): hashing
	// them again here cost a sixth of a cold reader's CPU (S3 profile).
	if int64(len(b.Data())) != req.Len {
		n.log.Warn("providers delivered a chunk of the wrong length", "cid", c, "len", len(b.Data()), "want", req.Len)
		return content.Block{}, false
	}
	return b, true
}

// fromHome asks the chunk's home nodes, in rendezvous order, to serve it
// (each fetches from the origin if needed, once for the whole cluster). It
// stops at this node's own place in the order: from there on this node is
// the home and reads the origin itself. Penalized members are left out of
// the order (see homeMembers); a home that stalls costs the transfer
// client's stall timeout (it sends keep-alives while it works) and is
// penalized, so the chunks after it skip it. The answer's CID must be the raw
// CID of the bytes under the version's hash, and equal to req.CID if known.
func (n *Node) fromHome(ctx context.Context, req ChunkRequest) (content.Block, bool) {
	cl := n.cl
	v := req.Version
	// want carries the CID prefix (v1, raw, the version's hash) of this
	// version's chunks.
	want := content.Sum(content.Hash(v.Hash), nil)
	var key []byte
	for _, p := range cl.chunkHomes(v, req.Index, homeCandidates) {
		if p == cl.self {
			break
		}
		if key == nil {
			key = encodeChunkKey(v, req.Index)
		}
		b, err := cl.Transfer.FetchVerified(ctx, p, key)
		if err != nil {
			if ctx.Err() != nil {
				return content.Block{}, false
			}
			n.log.Debug("home node could not serve chunk", "home", p, "bucket", v.Bucket, "key", v.Key, "chunk", req.Index, "err", err)
			continue
		}
		// The bytes match b's CID (FetchVerified); that CID must also be
		// the raw CID under the version's hash, which its prefix tells
		// without hashing again.
		if int64(len(b.Data())) != req.Len || b.CID().Prefix() != want.Prefix() ||
			(req.CID.Defined() && !b.CID().Equals(req.CID)) {
			n.log.Warn("home node sent a chunk that does not verify", "home", p, "bucket", v.Bucket, "key", v.Key, "chunk", req.Index)
			continue
		}
		return b, true
	}
	return content.Block{}, false
}

// metaAnswer is a home node's answer to a metadata request (JSON).
type metaAnswer struct {
	// Status is "ok", "nokey" (NoSuchKey) or "nobucket" (NoSuchBucket).
	Status string          `json:"s"`
	Object *catalog.Object `json:"o,omitempty"`
	// Age is how long ago the origin confirmed Object, by the home's clock
	// (a duration, so clock skew between nodes does not matter).
	Age time.Duration `json:"a,omitempty"`
}

const (
	metaOK       = "ok"
	metaNoKey    = "nokey"
	metaNoBucket = "nobucket"
)

func encodeMetaAnswer(a metaAnswer) ([]byte, error) { return json.Marshal(a) }

// decodeMetaAnswer parses and validates a home's answer for bucket/key.
func decodeMetaAnswer(b []byte, bucket, key string) (metaAnswer, error) {
	var a metaAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return metaAnswer{}, fmt.Errorf("node: bad metadata answer: %w", err)
	}
	switch a.Status {
	case metaNoKey, metaNoBucket:
		return metaAnswer{Status: a.Status}, nil
	case metaOK:
	default:
		return metaAnswer{}, fmt.Errorf("node: bad metadata answer status %q", a.Status)
	}
	o := a.Object
	if o == nil || o.Bucket != bucket || o.Key != key || o.Size < 0 || a.Age < 0 || len(o.ETag) > maxETagLen {
		return metaAnswer{}, errors.New("node: bad metadata answer: object missing, negative or for another key")
	}
	return a, nil
}

// headFromHome asks bucket/key's home nodes (in rendezvous order, up to
// this node's own place) for its metadata. ok reports an answer; err is
// then nil or an authoritative origin.ErrNotFound / origin.ErrNoSuchBucket.
func (n *Node) headFromHome(ctx context.Context, bucket, key string) (o catalog.Object, ok bool, err error) {
	cl := n.cl
	var req []byte
	for _, p := range rendezvous(metaSeed(bucket, key), cl.self, cl.homeMembers(), homeCandidates) {
		if p == cl.self {
			break
		}
		if req == nil {
			req = encodeMetaKey(bucket, key)
		}
		b, err := cl.Transfer.Meta(ctx, p, req)
		if err != nil {
			if ctx.Err() != nil {
				return catalog.Object{}, false, nil
			}
			n.log.Debug("home node could not answer metadata", "home", p, "bucket", bucket, "key", key, "err", err)
			continue
		}
		a, err := decodeMetaAnswer(b, bucket, key)
		if err != nil {
			n.log.Warn("home node sent bad metadata", "home", p, "err", err)
			continue
		}
		n.m.metaHome.Add(1)
		switch a.Status {
		case metaNoKey:
			return catalog.Object{}, true, fmt.Errorf("%s/%s (home %s): %w", bucket, key, p, origin.ErrNotFound)
		case metaNoBucket:
			return catalog.Object{}, true, fmt.Errorf("%s (home %s): %w", bucket, p, origin.ErrNoSuchBucket)
		}
		o := *a.Object
		o.Metadata = maps.Clone(o.Metadata)
		o.CheckedAt = n.now().Add(-a.Age)
		return o, true, nil
	}
	return catalog.Object{}, false, nil
}
