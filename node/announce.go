package node

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/routing"
)

// Announcing: every chunk and manifest this node stores is provided in the
// DHT as soon as it lands (not after the whole object: nodes that start
// reading together find each other's chunks while they arrive), withdrawn
// when the store reports it removed, and everything stored is announced
// again when Run starts (after a restart the DHT's provider records may
// have lapsed and the provider's keystore is empty). A completed version's
// manifest is published as a manifest record, so a node that never saw an
// object learns its chunk CIDs from the DHT without the origin.

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// announce queues c to be provided (or, with provide false, no longer
// provided). It never blocks.
func (n *Node) announce(c cid.Cid, provide bool) {
	cl := n.cl
	if cl == nil || !c.Defined() {
		return
	}
	cl.mu.Lock()
	_, queued := cl.pending[c]
	full := !queued && len(cl.pending) >= maxPendingAnnounces
	if !full {
		cl.pending[c] = provide
	}
	cl.mu.Unlock()
	if full {
		n.m.providesFailed.Add(1)
		return
	}
	wake(cl.wakeAnn)
}

// publish queues a manifest record for publication.
func (n *Node) publish(rec routing.ManifestRecord) {
	cl := n.cl
	if cl == nil {
		return
	}
	if err := rec.Validate(); err != nil {
		// An object the record format cannot carry: peers find its
		// chunks via home nodes.
		n.log.Debug("manifest record not publishable", "bucket", rec.Bucket, "key", rec.Key, "err", err)
		return
	}
	cl.mu.Lock()
	full := len(cl.records) >= maxPendingRecords
	if !full {
		cl.records = append(cl.records, rec)
	}
	cl.mu.Unlock()
	if full {
		n.log.Warn("manifest record queue full; dropping record", "bucket", rec.Bucket, "key", rec.Key)
		return
	}
	wake(cl.wakeRec)
}

// removalsLoop takes the store's removals until ctx ends: a block that
// left the store is no longer announced.
func (n *Node) removalsLoop(ctx context.Context) {
	for {
		cids, err := n.store.Removals().Take(ctx)
		if err != nil {
			return
		}
		for _, c := range cids {
			n.announce(c, false)
		}
	}
}

// announceLoop announces every stored block, then hands queued
// announcements to the router as they come, until ctx ends.
func (n *Node) announceLoop(ctx context.Context) {
	n.announceStored(ctx)
	for {
		n.drainAnnounces(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.cl.wakeAnn:
		}
	}
}

// announceStored provides every block the store holds.
func (n *Node) announceStored(ctx context.Context) {
	var count, failed int
	err := n.store.AllKeys(ctx, func(c cid.Cid) bool {
		if err := n.cl.Router.Provide(ctx, c); err != nil {
			failed++
			n.m.providesFailed.Add(1)
			return ctx.Err() == nil
		}
		count++
		n.m.providesQueued.Add(1)
		return true
	})
	if err != nil && ctx.Err() == nil {
		n.log.Warn("listing stored blocks for announcement failed", "err", err)
	}
	n.log.Info("announced stored blocks", "blocks", count, "failed", failed)
}

// drainAnnounces hands every queued announcement to the router.
func (n *Node) drainAnnounces(ctx context.Context) {
	cl := n.cl
	cl.mu.Lock()
	batch := cl.pending
	cl.pending = make(map[cid.Cid]bool, len(batch))
	cl.mu.Unlock()
	for c, provide := range batch {
		if ctx.Err() != nil {
			return
		}
		if !provide {
			// A removal may be reported for a block that was put again
			// right after: keep announcing what the store still holds.
			if has, err := n.store.Has(ctx, c); err == nil && has {
				provide = true
			}
		}
		var err error
		if provide {
			err = cl.Router.Provide(ctx, c)
		} else {
			err = cl.Router.StopProviding(ctx, c)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			n.m.providesFailed.Add(1)
			n.log.Debug("announcement failed", "cid", c, "provide", provide, "err", err)
		case err == nil && provide:
			n.m.providesQueued.Add(1)
		}
	}
}

// publishLoop publishes queued manifest records until ctx ends.
func (n *Node) publishLoop(ctx context.Context) {
	cl := n.cl
	for {
		cl.mu.Lock()
		batch := cl.records
		cl.records = nil
		cl.mu.Unlock()
		for _, rec := range batch {
			if ctx.Err() != nil {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, recordTimeout)
			err := cl.Router.PutManifestRecord(pctx, rec)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("publishing manifest record failed", "bucket", rec.Bucket, "key", rec.Key, "err", err)
				}
				continue
			}
			n.m.manifestsPublished.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-cl.wakeRec:
		}
	}
}
