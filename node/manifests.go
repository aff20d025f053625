package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/routing"
)

// Manifests: a version's chunk CIDs in one content-addressed block. A node
// builds one when it knows every chunk of a version, stores and announces
// it, and publishes a manifest record (bucket, key, ETag -> manifest CID)
// in the DHT; a node that never saw the object learns the CIDs from that
// record and fetches the chunks from their providers.

// errNoManifest: no usable manifest for a version was found in the cluster.
var errNoManifest = errors.New("node: no manifest record in the cluster")

// errManifestPending: a manifest lookup did not finish in the time the
// caller could wait; it goes on in the background.
var errManifestPending = errors.New("node: manifest lookup still running")

// lookup is one manifest lookup, queued or running as a background task.
type lookup struct {
	done chan struct{} // closed when err is set
	err  error
}

// cidFromManifest returns the chunk's CID from its version's manifest,
// learnt from the cluster if this node does not have it, or cid.Undef. A
// fetch that can go to a home (forward) waits for the lookup only
// ManifestWait (under load a DHT miss takes up to seconds, and the home
// serves the chunk anyway); the lookup goes on for the chunks after it.
func (n *Node) cidFromManifest(ctx context.Context, req chunkReq, forward bool) cid.Cid {
	wait := time.Duration(0)
	if forward {
		wait = n.cfg.Fetch.ManifestWait
	}
	err := n.resolveManifest(ctx, req.v, wait)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("no manifest from the cluster", "bucket", req.v.Bucket, "key", req.v.Key, "err", err)
		}
		return cid.Undef
	}
	return n.knownCID(ctx, req)
}

// resolveManifest learns v's chunk CIDs from the cluster (lookupManifest)
// in a background task, one per version at a time, and waits for it at
// most wait (wait <= 0: until ctx ends). A miss is remembered for
// manifestMissTTL.
func (n *Node) resolveManifest(ctx context.Context, v catalog.Version, wait time.Duration) error {
	cl := n.cl
	id := v.ID()
	k := string(id[:])
	if _, ok := cl.missing.get(k); ok {
		return errNoManifest
	}
	cl.mu.Lock()
	l := cl.lookups[k]
	if l == nil {
		l = &lookup{done: make(chan struct{})}
		started := n.bg.submit(func(ctx context.Context) {
			lctx, cancel := context.WithTimeout(ctx, 2*n.cfg.Fetch.LookupTimeout)
			start := time.Now()
			err := n.lookupManifest(lctx, v)
			cancel()
			n.log.Debug("manifest lookup", "bucket", v.Bucket, "key", v.Key, "took", time.Since(start), "err", err)
			if err != nil && ctx.Err() == nil {
				cl.missing.put(k, struct{}{})
			}
			cl.mu.Lock()
			delete(cl.lookups, k)
			cl.mu.Unlock()
			l.err = err
			close(l.done)
		})
		if !started {
			cl.mu.Unlock()
			n.m.tasksDropped.Add(1)
			return fmt.Errorf("%w: lookup not started (background queue full or not running)", errNoManifest)
		}
		cl.lookups[k] = l
	}
	cl.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-l.done:
		return l.err
	case <-timeout:
		return errManifestPending
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lookupManifest finds v's manifest records in the DHT and accepts the
// first claim that holds: the manifest it names, fetched from its
// providers (verified), must describe v and, when the origin offers a
// full-object CRC, carry chunk checksums that combine to it (verify.go).
// Conflicting claims are an alarm: they are settled by the origin's CRC,
// and without one none is used. A claim the origin disproves penalizes its
// publisher. The accepted manifest's chunk CIDs (and checksums) are
// recorded in the catalog, each chunk noted as supplied by the publisher.
func (n *Node) lookupManifest(ctx context.Context, v catalog.Version) error {
	if _, err := n.cat.Manifest(ctx, v); err == nil {
		return nil // learnt by a lookup that just finished
	}
	cl := n.cl
	lctx, cancel := context.WithTimeout(ctx, n.cfg.Fetch.LookupTimeout)
	recs, err := cl.Router.GetManifestRecords(lctx, v.Bucket, v.Key, v.ETag, v.ChunkSize, v.Hash)
	cancel()
	if err != nil {
		return fmt.Errorf("node: manifest record: %w", errors.Join(errNoManifest, err))
	}
	check := n.originCheckOf(ctx, v)
	if len(recs) > 1 {
		n.m.manifestConflicts.Add(1)
		publishers := make([]string, len(recs))
		for i, r := range recs {
			publishers[i] = r.Publisher.String()
		}
		n.log.Warn("conflicting manifest records for one version: a member lies; settling against the origin",
			"bucket", v.Bucket, "key", v.Key, "etag", v.ETag, "claims", len(recs), "publishers", publishers,
			"origin_crc", check.alg != SumNone)
		if check.alg == SumNone {
			n.m.manifestsRejected.Add(int64(len(recs)))
			return fmt.Errorf("node: %d conflicting manifest records of %s/%s and no origin checksum to settle them: %w",
				len(recs), v.Bucket, v.Key, errNoManifest)
		}
	}
	var errs []error
	for _, rec := range recs {
		if rec.Size != v.Size || rec.ChunkSize != v.ChunkSize || rec.Hash != v.Hash {
			errs = append(errs, fmt.Errorf("record cut %d/%s, want %d/%s", rec.ChunkSize, rec.Hash, v.ChunkSize, v.Hash))
			continue
		}
		if _, lied := n.trust.liars.get(string(rec.Publisher)); lied {
			errs = append(errs, fmt.Errorf("publisher %s was caught lying", rec.Publisher))
			continue
		}
		m, fetched, err := n.fetchManifest(ctx, v, rec.Manifest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if check.alg != SumNone && (m.SumAlg != check.alg || !check.sumsConfirm(v, m.Sums)) {
			n.m.manifestsRejected.Add(1)
			if m.SumAlg == check.alg {
				// Checksums the origin disproves: a made-up claim.
				why := fmt.Sprintf("manifest of %s/%s: chunk checksums do not combine to the origin's", v.Bucket, v.Key)
				n.log.Error("manifest record disproved by the origin's checksum; penalizing its publisher",
					"bucket", v.Bucket, "key", v.Key, "publisher", rec.Publisher, "manifest", rec.Manifest)
				n.penalize(rec.Publisher, why)
				errs = append(errs, errors.New(why))
			} else {
				errs = append(errs, fmt.Errorf("manifest %s has no checksums to check against the origin's", rec.Manifest))
			}
			continue
		}
		return n.acceptManifest(ctx, v, m, rec.Manifest, fetched, rec.Publisher)
	}
	return fmt.Errorf("node: no manifest of %s/%s holds: %w", v.Bucket, v.Key, errors.Join(append([]error{errNoManifest}, errs...)...))
}

// fetchManifest reads manifest mc from the store or its providers
// (verified either way) and checks that it describes v. fetched is the
// block when it came from peers (to keep).
func (n *Node) fetchManifest(ctx context.Context, v catalog.Version, mc cid.Cid) (Manifest, content.Block, error) {
	cl := n.cl
	if mc.Prefix().Codec != ManifestCodec {
		return Manifest{}, content.Block{}, fmt.Errorf("node: manifest record names %s, not a manifest", mc)
	}
	var fetched content.Block
	data, err := n.store.Get(ctx, mc)
	if err != nil {
		fctx, cancel := context.WithTimeout(ctx, n.cfg.Fetch.LookupTimeout)
		provs, ferr := cl.Router.FindProviders(fctx, mc, n.cfg.Fetch.Providers)
		cancel()
		if ferr != nil || len(provs) == 0 {
			return Manifest{}, content.Block{}, fmt.Errorf("node: no provider for manifest %s: %w", mc, errors.Join(errNoManifest, ferr))
		}
		b, err := cl.Transfer.GetVerified(ctx, mc, provs)
		if err != nil {
			return Manifest{}, content.Block{}, fmt.Errorf("node: manifest %s: %w", mc, err)
		}
		fetched, data = b, b.Data()
	}
	// Both sources hand out verified bytes: the store verifies what it
	// reads back, GetVerified what it received.
	m, err := DecodeManifest(data)
	if err != nil {
		return Manifest{}, content.Block{}, err
	}
	if m.Bucket != v.Bucket || m.Key != v.Key || m.ETag != v.ETag || m.Size != v.Size ||
		m.ChunkSize != v.ChunkSize || string(m.Hash) != v.Hash {
		return Manifest{}, content.Block{}, fmt.Errorf("node: manifest %s describes another version", mc)
	}
	return m, fetched, nil
}

// acceptManifest records manifest m (CID mc) of v, published by publisher.
func (n *Node) acceptManifest(ctx context.Context, v catalog.Version, m Manifest, mc cid.Cid, fetched content.Block, publisher peer.ID) error {
	for i, c := range m.Chunks {
		var sum catalog.Sum
		if m.SumAlg != SumNone {
			sum = catalog.Sum{Alg: m.SumAlg, Value: m.Sums[i]}
		}
		if _, err := n.cat.PutChunkSum(ctx, v, int64(i), c, sum); err != nil {
			return fmt.Errorf("node: recording chunk %d of manifest %s: %w", i, mc, err)
		}
		n.trust.supplied(v, int64(i), publisher)
	}
	if fetched.CID().Defined() {
		n.keep(ctx, fetched)
	}
	if err := n.cat.SetManifest(ctx, v, mc); err != nil {
		return err
	}
	n.m.manifestsFound.Add(1)
	return nil
}

// ensureManifest builds, stores and records v's manifest if every chunk CID
// is known, and returns its CID. The manifest carries the chunks'
// checksums under the origin's full-object CRC algorithm when the origin
// offers one; then its record is published only once the version was
// verified against that CRC (completed), so this node never vouches for
// bytes a home sent it that the origin disproves.
func (n *Node) ensureManifest(ctx context.Context, v catalog.Version) (cid.Cid, error) {
	if c, err := n.cat.Manifest(ctx, v); err == nil {
		return c, nil
	}
	chunks, err := n.cat.Chunks(ctx, v)
	if err != nil {
		return cid.Undef, err
	}
	for i, c := range chunks {
		if !c.Defined() {
			return cid.Undef, fmt.Errorf("node: manifest of %s/%s: chunk %d not known yet", v.Bucket, v.Key, i)
		}
	}
	m := Manifest{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag, Size: v.Size,
		ChunkSize: v.ChunkSize, Hash: content.Hash(v.Hash), Chunks: chunks}
	publish := true
	if check := n.originCheckOf(ctx, v); check.alg != SumNone && len(chunks) > 0 {
		if sums, err := n.cat.ChunkSums(ctx, v); err == nil {
			if vals, ok := sumValues(sums, check.alg); ok {
				m.SumAlg, m.Sums = check.alg, vals
			}
		}
		publish = n.versionVerified(ctx, v)
	}
	c, b := m.CID()
	if err := n.store.Put(ctx, c, b); err != nil {
		return cid.Undef, fmt.Errorf("node: store manifest: %w", err)
	}
	n.announce(c, true)
	if err := n.cat.SetManifest(ctx, v, c); err != nil {
		return cid.Undef, err
	}
	if publish {
		n.publishManifest(v, c)
	} else {
		n.trust.withhold(v, c)
	}
	return c, nil
}

// publishManifest publishes the record of v's manifest c.
func (n *Node) publishManifest(v catalog.Version, c cid.Cid) {
	n.publish(routing.ManifestRecord{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag, Size: v.Size,
		ChunkSize: v.ChunkSize, Hash: v.Hash, Manifest: c, Timestamp: n.now()})
}

// Manifest returns the manifest of the current version of bucket/key and
// its CID, once every chunk of that version has been fetched (otherwise an
// error wrapping catalog.ErrNotFound).
func (n *Node) Manifest(ctx context.Context, bucket, key string) (Manifest, cid.Cid, error) {
	o, err := n.head(ctx, bucket, key)
	if err != nil {
		return Manifest{}, cid.Undef, mapErr("manifest", err)
	}
	v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
	c, err := n.cat.Manifest(ctx, v)
	if errors.Is(err, catalog.ErrNotFound) && v.NumChunks() == 0 {
		c, err = n.ensureManifest(ctx, v)
	}
	if err != nil {
		return Manifest{}, cid.Undef, fmt.Errorf("node: manifest of %s/%s: %w", bucket, key, err)
	}
	b, err := n.store.Get(ctx, c)
	if err != nil {
		return Manifest{}, cid.Undef, fmt.Errorf("node: manifest block %s: %w", c, err)
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return Manifest{}, cid.Undef, err
	}
	return m, c, nil
}
