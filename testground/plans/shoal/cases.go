package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/testground/sdk-go/run"
	"github.com/testground/sdk-go/runtime"
	tgsync "github.com/testground/sdk-go/sync"
)

// swarmRead (S4): instance 1 seeds one object of object_size bytes; once
// the cluster is ready every instance reads it at once through its node
// and verifies its sha256. With baseline, every instance then reads it
// again straight from the origin, all at once.
func swarmRead(runenv *runtime.RunEnv, ic *run.InitContext) error {
	seed := func(ctx context.Context, in *instance) ([]objectMsg, error) {
		key := objectKey("swarm-read", 0)
		sum, err := seedObject(ctx, in.rawOrg, in.p.Bucket, key, 1, in.p.ObjectSize)
		return []objectMsg{{Key: key, SHA256: sum}}, err
	}
	return runCase(runenv, ic, seed, func(ctx context.Context, in *instance, objs []objectMsg) error {
		if err := in.readAll(ctx, objs); err != nil {
			return err
		}
		if err := in.barrier(ctx, "read-done"); err != nil {
			return err
		}
		if !in.p.Baseline {
			return nil
		}
		start := time.Now()
		if err := in.readOrigin(ctx, objs); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		in.sum.BaselineSeconds = time.Since(start).Seconds()
		return nil
	})
}

// prefetchThenRead (S5): instance 1 seeds M objects under one prefix; once
// the cluster is ready, instance 1 prefetches the prefix through its node;
// every instance waits until the prefix is findable in the cluster (each
// object's manifest record and a provider of its manifest), then all read all
// objects at once. The origin bytes of that read phase should be 0.
func prefetchThenRead(runenv *runtime.RunEnv, ic *run.InitContext) error {
	const prefix = "prefetch"
	seed := func(ctx context.Context, in *instance) ([]objectMsg, error) {
		var objs []objectMsg
		for i := range in.p.Objects {
			key := objectKey(prefix, i)
			sum, err := seedObject(ctx, in.rawOrg, in.p.Bucket, key, uint64(100+i), in.p.ObjectSize)
			if err != nil {
				return nil, err
			}
			objs = append(objs, objectMsg{Key: key, SHA256: sum})
		}
		return objs, nil
	}
	return runCase(runenv, ic, seed, func(ctx context.Context, in *instance, objs []objectMsg) error {
		in.sum.Objects = len(objs)
		if in.seq == 1 {
			start := time.Now()
			res, err := in.m.node.Prefetch(ctx, in.p.Bucket, prefix+"/")
			if err != nil {
				return fmt.Errorf("prefetch: %w", err)
			}
			if len(res.Errors) > 0 {
				return fmt.Errorf("prefetch: %d objects failed, first: %w", len(res.Errors), res.Errors[0])
			}
			in.sum.PrefetchSeconds = time.Since(start).Seconds()
			runenv.RecordMessage("prefetched %d objects (%d bytes) in %.3f s", res.Objects, res.Bytes, in.sum.PrefetchSeconds)
		}
		if err := in.barrier(ctx, "prefetched"); err != nil {
			return err
		}
		if err := in.waitFindable(ctx, objs); err != nil {
			return err
		}
		// Origin bytes of the prefetch, on every instance (home nodes read
		// the origin for the prefetcher): counted from the "ready" mark.
		in.sum.PrefetchOriginBytes = in.m.origin.counts().sub(in.marked).Bytes
		if err := in.mark(ctx); err != nil {
			return err
		}
		if err := in.barrier(ctx, "settled"); err != nil {
			return err
		}
		return in.readAll(ctx, objs)
	})
}

// waitFindable waits until every object's manifest record is in the DHT
// and its manifest has a provider (the prefetcher announces chunks and
// manifests in the same queue), polling; it bounds the wait at two
// minutes.
func (in *instance) waitFindable(ctx context.Context, objs []objectMsg) error {
	if in.seq == 1 {
		return nil // the prefetcher holds everything
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	for _, o := range objs {
		info, err := in.m.node.HeadObject(ctx, in.p.Bucket, o.Key)
		if err != nil {
			return err
		}
		var cids []cid.Cid
		for {
			recs, err := in.m.router.GetManifestRecords(ctx, in.p.Bucket, o.Key, info.ETag, in.p.ChunkSize, "sha2-256") // the node's default hash
			if err == nil {
				cids = append(cids, recs[0].Manifest)
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("manifest record of %s not found: %w", o.Key, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, c := range cids {
			for {
				ps, err := in.m.router.FindProviders(ctx, c, 1)
				if err == nil && len(ps) > 0 {
					break
				}
				if ctx.Err() != nil {
					return fmt.Errorf("no provider of %s (%s): %w", c, o.Key, ctx.Err())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	in.runenv.RecordMessage("prefix findable after %v", time.Since(start))
	return nil
}

// readAll reads every object through the node, all objects one after the
// other, and records the read phase: time, bytes, origin traffic, chunk
// sources, verification.
//
// Origin traffic and chunk sources are counted from the last mark, which
// the caller takes before the barrier that starts the read phase: a peer
// may make this node read the origin (as a chunk's home) as soon as it
// passes the barrier, before this instance wakes up.
func (in *instance) readAll(ctx context.Context, objs []objectMsg) error {
	before, stBefore := in.marked, in.markedStatus
	in.sum.Verified = true
	start := time.Now()
	for _, o := range objs {
		info, err := in.m.node.HeadObject(ctx, in.p.Bucket, o.Key)
		if err != nil {
			return fmt.Errorf("head %s: %w", o.Key, err)
		}
		rc, err := in.m.node.GetObject(ctx, info, 0, info.Size)
		if err != nil {
			return fmt.Errorf("get %s: %w", o.Key, err)
		}
		n, sum, err := hashCopy(rc)
		rc.Close()
		in.sum.ReadBytes += n
		if err != nil {
			return fmt.Errorf("read %s: %w", o.Key, err)
		}
		if sum != o.SHA256 || n != info.Size {
			in.sum.Verified = false
			return fmt.Errorf("read %s: %d bytes with sha256 %s, want %d bytes with %s", o.Key, n, sum, info.Size, o.SHA256)
		}
	}
	in.sum.ReadSeconds = time.Since(start).Seconds()
	d := in.m.origin.counts().sub(before)
	in.sum.OriginBytes, in.sum.OriginGets, in.sum.OriginHeads = d.Bytes, d.Gets, d.Heads
	return in.chunkSources(ctx, stBefore)
}

// readOrigin reads every object straight from the origin (no node).
func (in *instance) readOrigin(ctx context.Context, objs []objectMsg) error {
	for _, o := range objs {
		info, err := in.rawOrg.HeadObject(ctx, in.p.Bucket, o.Key)
		if err != nil {
			return err
		}
		rc, err := in.rawOrg.GetRange(ctx, in.p.Bucket, o.Key, info.ETag, 0, info.Size)
		if err != nil {
			return err
		}
		_, sum, err := hashCopy(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if sum != o.SHA256 {
			return fmt.Errorf("%s: origin returned sha256 %s, want %s", o.Key, sum, o.SHA256)
		}
	}
	return nil
}

func hashCopy(r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// cidMsg announces a chunk an instance just stored and provided.
type cidMsg struct {
	Seq int    `json:"seq"`
	CID string `json:"cid"`
}

var cidTopic = tgsync.NewTopic("shoal-provided", &cidMsg{})

// provideFind (S7): every instance stores chunks random chunks of 64 KiB
// in its block store and provides them, announcing each CID on the sync
// service right after Provide. Every other instance then polls
// FindProviders for it (time-to-findable, from learning the CID). Once
// every chunk was found everywhere, each instance times one FindProviders
// per chunk of the others (FindProviders latency).
func provideFind(runenv *runtime.RunEnv, ic *run.InitContext) error {
	noSeed := func(context.Context, *instance) ([]objectMsg, error) { return nil, nil }
	return runCase(runenv, ic, noSeed, func(ctx context.Context, in *instance, _ []objectMsg) error {
		in.sum.Objects = 0
		ch := make(chan *cidMsg, in.n*in.p.Chunks)
		sub, err := in.ic.SyncClient.Subscribe(ctx, cidTopic, ch)
		if err != nil {
			return err
		}
		others := (in.n - 1) * in.p.Chunks
		var (
			mu       sync.Mutex
			findable []float64
			failures int
			found    []cid.Cid
			wg       sync.WaitGroup
			sem      = make(chan struct{}, 16)
		)
		// Finder: every CID of another instance, polled until found.
		wg.Go(func() {
			for seen := 0; seen < others; {
				var m *cidMsg
				select {
				case m = <-ch:
				case <-sub.Done():
					return
				case <-ctx.Done():
					return
				}
				if m.Seq == in.seq {
					continue
				}
				seen++
				c, err := cid.Decode(m.CID)
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					continue
				}
				learnt := time.Now()
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					ok := pollFind(ctx, in, c, 30*time.Second)
					mu.Lock()
					defer mu.Unlock()
					if !ok {
						failures++
						return
					}
					findable = append(findable, float64(time.Since(learnt).Microseconds())/1000)
					found = append(found, c)
				})
			}
		})
		// Provider: store and provide this instance's chunks.
		for range in.p.Chunks {
			data := make([]byte, 64<<10)
			rand.Read(data)
			c := cid.NewCidV1(cid.Raw, mustSum(data))
			if err := in.m.store.Put(ctx, c, data); err != nil {
				return err
			}
			if err := in.m.router.Provide(ctx, c); err != nil {
				return err
			}
			if _, err := in.ic.SyncClient.Publish(ctx, cidTopic, &cidMsg{Seq: in.seq, CID: c.String()}); err != nil {
				return err
			}
		}
		wg.Wait()
		in.sum.FindableMillis, in.sum.FindFailures = findable, failures
		if err := in.barrier(ctx, "all-findable"); err != nil {
			return err
		}
		for _, c := range found {
			start := time.Now()
			ps, err := in.m.router.FindProviders(ctx, c, 1)
			ms := float64(time.Since(start).Microseconds()) / 1000
			if err != nil || len(ps) == 0 {
				in.sum.FindFailures++
				continue
			}
			in.sum.FindMillis = append(in.sum.FindMillis, ms)
		}
		if in.sum.FindFailures > 0 {
			return fmt.Errorf("%d of %d lookups failed", in.sum.FindFailures, others)
		}
		return nil
	})
}

// pollFind polls FindProviders for c until a provider is found or the
// timeout passes.
func pollFind(ctx context.Context, in *instance, c cid.Cid, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ps, err := in.m.router.FindProviders(ctx, c, 1)
		if err == nil && len(ps) > 0 {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func mustSum(data []byte) mh.Multihash {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		panic(err) // SHA2_256 is always available
	}
	return h
}
