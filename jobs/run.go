package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// run is one job running in this process.
type run struct {
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the run has ended and recorded it

	mu      sync.Mutex // guards job, started, base, now
	job     Job
	started time.Time // this run's start
	base    int64     // BytesDone when this run started working
	now     func() time.Time
}

func (r *run) snapshot() Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.job
	j.Failures = append([]Failure(nil), j.Failures...)
	if j.State == StateRunning && r.now != nil {
		if el := r.now().Sub(r.started).Seconds(); el > 0 {
			j.Rate = float64(j.BytesDone-r.base) / el
		}
		if j.Rate > 0 && j.Listed {
			j.ETASeconds = float64(max(0, j.Bytes-j.BytesDone)) / j.Rate
		}
	}
	if j.BytesDone > 0 {
		j.Amplification = float64(j.OriginBytes) / float64(j.BytesDone)
	}
	return j
}

func (r *run) update(fn func(j *Job)) {
	r.mu.Lock()
	fn(&r.job)
	r.mu.Unlock()
}

// execute runs a job to its end: list, skip what earlier runs finished,
// warm the rest with retries, record the outcome. A run stopped with the
// node leaves the record live, for the next start to resume.
func (m *Manager) execute(ctx context.Context, r *run) {
	r.mu.Lock()
	r.now, r.started = m.now, m.now()
	r.job.Runs++
	spec, id, runNo := r.job.Spec, r.job.ID, r.job.Runs
	prevOrigin := r.job.OriginBytes
	r.mu.Unlock()
	log := m.log.With("job", id, "bucket", spec.Bucket, "prefix", spec.Prefix)

	// Saver: progress reaches the store every SaveEvery.
	saverDone := make(chan struct{})
	saverStop := make(chan struct{})
	go func() {
		defer close(saverDone)
		t := time.NewTicker(m.cfg.SaveEvery)
		defer t.Stop()
		for {
			select {
			case <-saverStop:
				return
			case <-t.C:
				_ = m.save(context.WithoutCancel(ctx), r.snapshot())
			}
		}
	}()

	err := m.work(ctx, r, spec, id, runNo, prevOrigin, log)
	close(saverStop)
	<-saverDone

	cause := context.Cause(ctx)
	r.update(func(j *Job) {
		j.Updated = m.now()
		switch {
		case errors.Is(cause, ErrStopping):
			// The node stops: the record stays live and resumes at the next start.
		case errors.Is(cause, errCancelled):
			j.State, j.Finished = StateCancelled, m.now()
		case err != nil:
			j.State, j.Error, j.Finished = StateFailed, err.Error(), m.now()
		case j.ObjectsFailed > 0:
			j.State, j.Finished = StateFailed, m.now()
		default:
			j.State, j.Finished = StateDone, m.now()
		}
	})
	final := r.snapshot()
	if final.State != StateRunning && final.State != StateListing {
		final.Rate, final.ETASeconds = 0, 0
	}
	r.update(func(j *Job) { *j = final })
	if err := m.save(context.WithoutCancel(ctx), final); err != nil {
		log.Warn("recording job failed", "err", err)
	}
	log.Info("job ended", "state", final.State, "objects", final.ObjectsDone, "failed", final.ObjectsFailed,
		"bytes", final.BytesDone, "origin_bytes", final.OriginBytes, "amplification", final.Amplification)
}

func (m *Manager) work(ctx context.Context, r *run, spec Spec, id string, runNo int, prevOrigin int64, log interface {
	Warn(string, ...any)
}) error {
	if err := m.exec.Begin(ctx, id, runNo, spec); err != nil {
		return err
	}
	// What earlier runs finished.
	done := make(map[string]item)
	if err := m.store.JobItems(ctx, id, func(key string, rec []byte) bool {
		var it item
		if json.Unmarshal(rec, &it) == nil && it.Done {
			done[key] = it
		}
		return true
	}); err != nil {
		return err
	}
	var objs []Object
	var p Progress
	if err := m.exec.List(ctx, spec.Bucket, spec.Prefix, func(o Object) error {
		p.Objects++
		p.Bytes += o.Size
		if it, ok := done[o.Key]; ok && it.ETag == o.ETag && it.Size == o.Size {
			p.ObjectsDone++
			p.BytesDone += it.Size
			p.Chunks += it.Chunks
			p.BytesOrigin += it.Origin
			p.BytesPeer += it.Peer
			p.BytesCached += it.Cached
			return nil
		}
		objs = append(objs, o)
		return nil
	}); err != nil {
		return err
	}
	p.Listed = true
	// Every byte earlier runs read from the origin, finished objects or
	// not (the record's own count: an interrupted object's chunks left the
	// origin too).
	p.OriginBytes = prevOrigin
	r.update(func(j *Job) {
		j.Progress = p
		j.Failures = nil
		j.State = StateRunning
		j.Updated = m.now()
	})
	r.mu.Lock()
	r.base, r.started = p.BytesDone, m.now()
	r.mu.Unlock()
	_ = m.save(ctx, r.snapshot())

	work := make(chan Object)
	var wg sync.WaitGroup
	for range min(m.cfg.ObjectConcurrency, max(1, len(objs))) {
		wg.Go(func() {
			for o := range work {
				m.object(ctx, r, spec, id, runNo, o, log)
			}
		})
	}
feed:
	for _, o := range objs {
		select {
		case work <- o:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return nil
}

// object warms one object with retries and records its outcome.
func (m *Manager) object(ctx context.Context, r *run, spec Spec, id string, runNo int, o Object, log interface {
	Warn(string, ...any)
}) {
	var lastErr error
	wait := m.cfg.Backoff
	for attempt := 1; attempt <= m.cfg.Attempts; attempt++ {
		var mu sync.Mutex // guards part
		var part Progress
		err := m.exec.Warm(ctx, id, runNo, spec, o, func(c Chunk) {
			mu.Lock()
			part.add(c)
			mu.Unlock()
			r.update(func(j *Job) { j.Progress.add(c) })
		})
		mu.Lock()
		got := part
		mu.Unlock()
		if err == nil {
			r.update(func(j *Job) { j.ObjectsDone++ })
			it := item{ETag: o.ETag, Done: true, Size: o.Size, Chunks: got.Chunks, Origin: got.BytesOrigin,
				Peer: got.BytesPeer, Cached: got.BytesCached, OBytes: got.OriginBytes, Tries: attempt}
			m.putItem(ctx, id, o.Key, it)
			return
		}
		// Take the attempt's partial figures back: a retry counts again
		// (its chunks now come back cached).
		r.update(func(j *Job) {
			j.Chunks -= got.Chunks
			j.BytesDone -= got.BytesDone
			j.BytesOrigin -= got.BytesOrigin
			j.BytesPeer -= got.BytesPeer
			j.BytesCached -= got.BytesCached
			// OriginBytes stays: those bytes did leave the origin.
		})
		lastErr = err
		if ctx.Err() != nil {
			return
		}
		if attempt == m.cfg.Attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, m.cfg.MaxBackoff)
	}
	log.Warn("object failed", "key", o.Key, "attempts", m.cfg.Attempts, "err", lastErr)
	r.update(func(j *Job) {
		j.ObjectsFailed++
		if len(j.Failures) < MaxFailuresListed {
			j.Failures = append(j.Failures, Failure{Key: o.Key, Reason: lastErr.Error(), Attempts: m.cfg.Attempts})
		}
	})
	m.putItem(ctx, id, o.Key, item{ETag: o.ETag, Size: o.Size, Reason: lastErr.Error(), Tries: m.cfg.Attempts})
}

func (m *Manager) putItem(ctx context.Context, id, key string, it item) {
	b, _ := json.Marshal(it)
	if err := m.store.PutJobItem(context.WithoutCancel(ctx), id, key, b); err != nil {
		m.log.Warn("recording job item failed", "job", id, "key", key, "err", err)
	}
}
