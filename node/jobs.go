package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/jobs"
	"github.com/shoal-cache/shoal/origin"
)

// Warm-up jobs (package jobs runs them; the node is their executor).
//
// A job's node lists the prefix and, for every chunk of every object,
// asks the chunk's home nodes (the read path's placement snapshot: the
// first candidate, then the next ones in order for a replica target) to
// warm it: each home reads the chunk through its own read path, so it
// leaves the origin once, from its home, and the homes of a prefix read
// from the origin in parallel. The job's node itself keeps the bytes only
// with --local (then it reads each chunk from its home, a peer).

// warmChunks is how many chunks of one object a job warms at once; with
// jobs.DefaultObjectConcurrency objects that is 32 chunk requests spread
// over the homes, enough to keep every home's origin slots busy
// (--origin-fetches 16, shared per version by --origin-streams).
const warmChunks = 8

// Draining chunk work when a node stops or a job's node goes away.
const (
	// stopDrain bounds how long the chunk reads in flight may finish when
	// the job's node stops (within the node's 10 s shutdown budget).
	stopDrain = 5 * time.Second
	// memberWarmTimeout bounds a chunk a member warms for a job: it goes
	// on after the job's node left (its read is kept, not wasted), up to
	// this long.
	memberWarmTimeout = time.Minute
)

// Jobs is the node's job manager (warm-ups).
func (n *Node) Jobs() *jobs.Manager { return n.jobs }

// selfName names this node in job records: its peer ID, or "local".
func (n *Node) selfName() string {
	if n.cl != nil {
		return n.cl.self.String()
	}
	return "local"
}

// jobExec adapts the node to jobs.Executor.
type jobExec struct{ n *Node }

var _ jobs.Executor = jobExec{}

// Settling: a job resumed when its node restarts must not run before the
// node has found its members, or it would take itself for every chunk's
// home and read from the origin what the other homes already hold.
const (
	// settleWindow is how long after its start a node waits for members
	// before a job runs (bootstrap takes well under a second on a LAN).
	settleWindow = time.Minute
	// settleWait bounds that wait: a node whose peers are all away works
	// alone after it.
	settleWait = 15 * time.Second
	// settleQuiet is how long the member list must stay unchanged to count
	// as settled.
	settleQuiet = 2 * time.Second
)

func (e jobExec) Begin(ctx context.Context, id string, run int, spec jobs.Spec) error {
	if run > 1 {
		// A resume: the node may have just restarted. (A job a user
		// starts runs on the members the node sees.)
		e.n.settle(ctx)
	}
	if !spec.Pin {
		return nil
	}
	p := catalog.Pin{Bucket: spec.Bucket, Prefix: spec.Prefix, Created: e.n.now(), Replicas: spec.Replicas}
	if err := e.n.cat.AddPin(ctx, p); err != nil {
		return fmt.Errorf("record pin: %w", err)
	}
	e.n.kickRepair()
	// Every member learns the prefix and its replica target, so that each
	// repairs its share without a coordinator (replicas.go).
	e.n.broadcastPin(ctx, ctlReq{Op: opPin, Bucket: spec.Bucket, Prefix: spec.Prefix, Replicas: spec.Replicas})
	return nil
}

func (e jobExec) List(ctx context.Context, bucket, prefix string, fn func(jobs.Object) error) error {
	return e.n.listAll(ctx, bucket, prefix, func(le origin.ListEntry) error {
		return fn(jobs.Object{Key: le.Key, ETag: le.ETag, Size: le.Size})
	})
}

// settle waits, in the first settleWindow of the node's life, until its
// member list is non-empty and unchanged for settleQuiet (at most
// settleWait).
func (n *Node) settle(ctx context.Context) {
	if n.cl == nil || n.now().Sub(n.born) > settleWindow {
		return
	}
	deadline := n.now().Add(settleWait)
	var last []peer.ID
	var since time.Time
	for n.now().Before(deadline) {
		ms := n.cl.Members.Members()
		slices.Sort(ms)
		if !slices.Equal(ms, last) {
			last, since = ms, n.now()
		} else if len(ms) > 0 && n.now().Sub(since) >= settleQuiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// listAll lists every object under bucket/prefix at the origin.
func (n *Node) listAll(ctx context.Context, bucket, prefix string, fn func(origin.ListEntry) error) error {
	p := origin.ListParams{Bucket: bucket, Prefix: prefix}
	for {
		page, err := n.org.ListObjects(ctx, p)
		if err != nil {
			return mapErr("list "+bucket+"/"+prefix, err)
		}
		for _, le := range page.Entries {
			if err := fn(le); err != nil {
				return err
			}
		}
		if !page.IsTruncated || page.NextContinuationToken == "" {
			return nil
		}
		p.ContinuationToken = page.NextContinuationToken
	}
}

func (e jobExec) Warm(ctx context.Context, id string, run int, spec jobs.Spec, obj jobs.Object, report func(jobs.Chunk)) error {
	n := e.n
	o, err := n.head(ctx, spec.Bucket, obj.Key)
	if err != nil {
		return mapErr("head", err)
	}
	v := n.version(o.Bucket, o.Key, o.ETag, o.Size)
	copies := max(1, spec.Replicas)
	// The chunk reads run under work: a cancel ends them, but when the node
	// stops they may finish (for at most stopDrain), so that what they
	// read is kept rather than read again after the restart.
	work, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(nil)
	stop := context.AfterFunc(ctx, func() {
		if cause := context.Cause(ctx); !errors.Is(cause, jobs.ErrStopping) {
			cancelWork(cause)
			return
		}
		time.AfterFunc(stopDrain, func() { cancelWork(jobs.ErrStopping) })
	})
	defer stop()
	// The first copy of every chunk: one request per home and batch of
	// its chunks (so the job's node holds one transfer slot per home, not
	// per chunk, and each home reads its chunks with its own origin slots),
	// all homes at once.
	place := n.snapshot()
	byHome := make(map[peer.ID][]int64)
	var order []peer.ID
	for i := range v.NumChunks() {
		h := place.ChunkHomes(v, i, 1)[0]
		if byHome[h] == nil {
			order = append(order, h)
		}
		byHome[h] = append(byHome[h], i)
	}
	jr := jobRun{id, run}
	report = n.countJobChunk(report)
	g, gctx := errgroup.WithContext(work)
	for _, h := range order {
		idx := byHome[h]
		g.Go(func() error {
			for len(idx) > 0 {
				if ctx.Err() != nil {
					return nil // no new batch once the run ends
				}
				batch := idx[:min(len(idx), warmBatch)]
				idx = idx[len(batch):]
				answers, err := n.warmBatchAt(gctx, h, jr, v, batch, spec.Pin)
				if err != nil {
					return err
				}
				if err := n.warmExtras(gctx, jr, spec, v, batch, answers, copies, report); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // stopped before every chunk was started
	}
	if spec.Local {
		// The job's node holds every chunk: its manifest can be built.
		mc, err := n.ensureManifest(ctx, v)
		if err == nil && spec.Pin {
			err = n.store.Pin(ctx, mc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// countJobChunk counts a job's chunk in the node's metrics before passing
// it on.
func (n *Node) countJobChunk(report func(jobs.Chunk)) func(jobs.Chunk) {
	return func(c jobs.Chunk) {
		switch c.Source {
		case jobs.SourceOrigin:
			n.m.jobBytes.origin.Add(c.Bytes)
		case jobs.SourcePeer:
			n.m.jobBytes.peer.Add(c.Bytes)
		default:
			n.m.jobBytes.cached.Add(c.Bytes)
		}
		n.m.jobOriginBytes.Add(c.OriginBytes)
		report(c)
	}
}

// warmBatch is how many chunks of one object one warm request names: the
// job's progress moves per batch (32 MiB with 4 MiB chunks), and the
// answers (about 100 bytes each) stay far below a metadata answer's 64 KiB.
const warmBatch = 8

// warmBatchAt warms chunks idx of v at node h as their first home and
// returns one answer per chunk. A member that cannot answer is replaced
// by this node's own read path for those chunks.
func (n *Node) warmBatchAt(ctx context.Context, h peer.ID, id jobRun, v catalog.Version, idx []int64, pin bool) ([]warmAnswer, error) {
	if n.cl != nil && h != n.cl.self {
		var as []warmAnswer
		err := n.control(ctx, h, ctlReq{Op: opWarmBatch, Job: id.id, Run: id.run, Chunk: encodeChunkKey(v, 0), Indexes: idx, Pin: pin, Home: true}, &as)
		switch {
		case err == nil && len(as) == len(idx):
			return as, nil
		case err == nil:
			err = fmt.Errorf("node: %d answers for %d chunks", len(as), len(idx))
		case isRemoteCancel(err):
			return nil, fmt.Errorf("%w: %w", errJobCancelled, err)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		n.log.Debug("home could not warm chunks; warming here", "home", h, "job", id.id, "chunks", len(idx), "err", err)
		return n.warmHereAll(ctx, v, idx, pin, false), nil
	}
	return n.warmHereAll(ctx, v, idx, pin, true), nil
}

// warmHereAll warms chunks idx of v on this node, warmChunks at once; a
// chunk that fails has its answer's Err set.
func (n *Node) warmHereAll(ctx context.Context, v catalog.Version, idx []int64, pin, home bool) []warmAnswer {
	out := make([]warmAnswer, len(idx))
	var g errgroup.Group
	g.SetLimit(warmChunks)
	for k, i := range idx {
		g.Go(func() error {
			a, err := n.warmHere(ctx, v, i, pin, home)
			if err != nil {
				a = warmAnswer{Err: err.Error()}
			}
			out[k] = a
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// warmExtras completes the chunks of a batch whose first copy answered:
// the next copies-1 home candidates in order copy them (a replica
// target), this node too with Local; then each chunk is reported.
func (n *Node) warmExtras(ctx context.Context, id jobRun, spec jobs.Spec, v catalog.Version, idx []int64, first []warmAnswer, copies int, report func(jobs.Chunk)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(warmChunks)
	for k, i := range idx {
		a := first[k]
		if a.Err != "" {
			return fmt.Errorf("chunk %d: %s", i, a.Err)
		}
		g.Go(func() error {
			c := jobs.Chunk{Bytes: n.request(v, i).len, Source: a.Source()}
			if c.Source == jobs.SourceOrigin {
				c.OriginBytes = c.Bytes
			}
			if copies > 1 || spec.Local {
				more, err := n.warmJobChunk(gctx, id, spec, v, i, copies, 1)
				if err != nil {
					return fmt.Errorf("chunk %d: %w", i, err)
				}
				c.OriginBytes += more.OriginBytes
			}
			report(c)
			return nil
		})
	}
	return g.Wait()
}

// warmJobChunk warms chunk i of v at its first copies home candidates, in
// order (the first one reads it, from the origin if the cluster lacks it;
// the next ones copy it from there), and on this node too with Local,
// skipping the first skip candidates (already warmed).
func (n *Node) warmJobChunk(ctx context.Context, id jobRun, spec jobs.Spec, v catalog.Version, i int64, copies, skip int) (jobs.Chunk, error) {
	place := n.snapshot()
	self := place.Self()
	targets := place.ChunkHomes(v, i, copies)
	out := jobs.Chunk{Bytes: n.request(v, i).len}
	for k, h := range targets {
		if k < skip {
			continue
		}
		a, err := n.warmAt(ctx, h, id, v, i, spec.Pin, k == 0)
		if err != nil && h != self && ctx.Err() == nil && !errors.Is(err, errJobCancelled) {
			// The home cannot answer (it left, stalls, is busy): this
			// node warms the chunk itself, through its read path (which
			// tries the other homes, then the origin).
			n.log.Debug("home could not warm a chunk; warming here", "home", h, "job", id.id, "chunk", i, "err", err)
			a, err = n.warmAt(ctx, self, id, v, i, spec.Pin, false)
		}
		if err != nil {
			return jobs.Chunk{}, err
		}
		if k == 0 {
			out.Source = a.Source()
		}
		if a.Source() == jobs.SourceOrigin {
			out.OriginBytes += out.Bytes
		}
	}
	if spec.Local && !slices.Contains(targets, self) {
		a, err := n.warmAt(ctx, self, id, v, i, spec.Pin, false)
		if err != nil {
			return jobs.Chunk{}, err
		}
		if a.Source() == jobs.SourceOrigin {
			out.OriginBytes += out.Bytes
		}
	}
	return out, nil
}

// errJobCancelled: a member refused chunk work for a cancelled job.
var errJobCancelled = errors.New("node: job cancelled")

// jobRun names one run of a job.
type jobRun struct {
	id  string
	run int
}

// warmAt warms chunk i of v on node p (this node or a member); home: p is
// the chunk's first home in this node's placement.
func (n *Node) warmAt(ctx context.Context, p peer.ID, id jobRun, v catalog.Version, i int64, pin, home bool) (warmAnswer, error) {
	if n.cl == nil || p == n.cl.self {
		return n.warmHere(ctx, v, i, pin, home)
	}
	var a warmAnswer
	err := n.control(ctx, p, ctlReq{Op: opWarm, Job: id.id, Run: id.run, Chunk: encodeChunkKey(v, i), Pin: pin, Home: home}, &a)
	if err != nil {
		if isRemoteCancel(err) {
			return warmAnswer{}, fmt.Errorf("%w: %w", errJobCancelled, err)
		}
		return warmAnswer{}, err
	}
	return a, nil
}

// warmHere reads chunk i of v into this node's store through the read path
// (as its home if the job's node says so, or this node comes first in its
// own placement), and pins it. The job's node decides who is home: a
// member whose view differs for a moment (it passes over a peer it
// penalized, or has not seen one come back) must not forward the chunk to
// a third node that would read it from the origin a second time.
func (n *Node) warmHere(ctx context.Context, v catalog.Version, i int64, pin, home bool) (warmAnswer, error) {
	place := n.snapshot()
	d, _, err := n.readChunk(ctx, v, i, access{asHome: home || place.HomeOf(v, i)})
	if err != nil {
		return warmAnswer{}, err
	}
	if pin {
		if err := n.store.Pin(ctx, d.cid); err != nil {
			return warmAnswer{}, fmt.Errorf("pin chunk %d: %w", i, err)
		}
		n.notePinned(ctx, v)
	}
	return warmAnswer{CID: d.cid.String(), Src: string(d.src), Size: int64(len(d.data))}, nil
}

// notePinned makes sure this node's catalog has the object record of a
// version it pinned chunks of, so that Unpin finds them.
func (n *Node) notePinned(ctx context.Context, v catalog.Version) {
	if o, err := n.cat.GetObject(ctx, v.Bucket, v.Key); err == nil && o.ETag == v.ETag {
		return
	}
	if _, err := n.head(ctx, v.Bucket, v.Key); err != nil {
		n.log.Debug("recording a pinned object failed", "bucket", v.Bucket, "key", v.Key, "err", err)
	}
}

// warmAnswer is a member's answer to a warm request.
type warmAnswer struct {
	CID  string `json:"c,omitempty"`
	Src  string `json:"s,omitempty"`
	Size int64  `json:"n,omitempty"`
	Err  string `json:"e,omitempty"` // in a batch: this chunk failed
}

// Source maps the answer's source to the job's.
func (a warmAnswer) Source() jobs.Source {
	switch Source(a.Src) {
	case SourceOrigin:
		return jobs.SourceOrigin
	case SourcePeer:
		return jobs.SourcePeer
	}
	return jobs.SourceCached
}

// jobPeers adapts the node's members to jobs.Peers.
type jobPeers struct{ n *Node }

var _ jobs.Peers = jobPeers{}

func (p jobPeers) Jobs(ctx context.Context) ([]jobs.Job, error) {
	var out []jobs.Job
	var errs []error
	for _, r := range p.n.askMembers(ctx, ctlReq{Op: opJobs}) {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.peer, r.err))
			continue
		}
		var js []jobs.Job
		if err := decodeCtl(r.data, &js); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.peer, err))
			continue
		}
		out = append(out, js...)
	}
	return out, errors.Join(errs...)
}

func (p jobPeers) Job(ctx context.Context, id string) (jobs.Job, bool, error) {
	var errs []error
	for _, r := range p.n.askMembers(ctx, ctlReq{Op: opJob, Job: id}) {
		if r.err != nil {
			if !isRemoteNotFound(r.err) {
				errs = append(errs, fmt.Errorf("%s: %w", r.peer, r.err))
			}
			continue
		}
		var j jobs.Job
		if err := decodeCtl(r.data, &j); err == nil && j.ID == id {
			return j, true, nil
		}
	}
	return jobs.Job{}, false, errors.Join(errs...)
}

func (p jobPeers) Cancel(ctx context.Context, id string, run int) (bool, error) {
	found := false
	var errs []error
	for _, r := range p.n.askMembers(ctx, ctlReq{Op: opCancel, Job: id, Run: run}) {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.peer, r.err))
			continue
		}
		var ok bool
		if decodeCtl(r.data, &ok) == nil && ok {
			found = true
		}
	}
	return found, errors.Join(errs...)
}
