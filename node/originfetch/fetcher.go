package originfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/origin"
)

// Origin is what a Fetcher reads: ranged reads pinned to an ETag. A
// changed object fails with origin.ErrPreconditionFailed.
type Origin interface {
	GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error)
}

// Errors of a fetch (wrapped; both also wrap origin.ErrUnavailable, so a
// client is told the origin could not deliver).
var (
	// ErrShort: the origin delivered fewer or more bytes than asked.
	ErrShort = errors.New("originfetch: origin sent the wrong number of bytes")
	// ErrStalled: a response delivered nothing for the stall time, more
	// often than MaxResumes allows.
	ErrStalled = errors.New("originfetch: origin response stalled")
)

// Request is one chunk to read.
type Request struct {
	Bucket, Key, ETag string
	// Off and Len locate the chunk in the object; exactly Len bytes are
	// read.
	Off, Len int64
	// Hash names the chunk's CID hash.
	Hash content.Hash
	// With Limit > 0, at most Limit fetches of the same Group (one object
	// version) run at once on this node, lowest Index first.
	Group string
	Index int64
	Limit int
}

// Counters are the fetcher's figures (read them with Load).
type Counters struct {
	Chunks  atomic.Int64 // chunks read whole
	Bytes   atomic.Int64 // bytes read from the origin
	Resumes atomic.Int64 // stalled responses asked again for the rest
	Hedges  atomic.Int64 // requests sent a second time (no answer)
}

// Fetcher reads chunks from the origin. It is safe for concurrent use.
type Fetcher struct {
	org  Origin
	p    Policy
	log  *slog.Logger
	gate *orderGate
	slot chan struct{} // node-wide slots
	c    Counters

	wg sync.WaitGroup // hedged requests and the draining of their answers
}

// New returns a Fetcher over org. log may be nil.
func New(org Origin, p Policy, log *slog.Logger) (*Fetcher, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("originfetch: %w", err)
	}
	p = p.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{org: org, p: p, log: log, gate: newOrderGate(max(p.Settle, 0)),
		slot: make(chan struct{}, p.Slots)}, nil
}

// Counters returns the fetcher's live counters.
func (f *Fetcher) Counters() *Counters { return &f.c }

// Close waits for the fetcher's own goroutines (hedged requests still
// being answered). Fetches must have returned first.
func (f *Fetcher) Close() { f.wg.Wait() }

// Fetch reads req's range of the origin into a new Arrival and returns the
// finished chunk, hashed as it came. It waits for a version slot (lowest
// index first) and a node-wide slot, then sends the range request;
// started, if not nil, is called with the Arrival once the origin has
// answered, before the first byte is read, so that the caller can let
// others follow the bytes. A response that stalls is abandoned and the
// missing bytes asked for again.
func (f *Fetcher) Fetch(ctx context.Context, req Request, started func(*Arrival)) (content.Block, error) {
	if req.Len < 0 || req.Off < 0 {
		return content.Block{}, fmt.Errorf("originfetch: range %d+%d: %w", req.Off, req.Len, origin.ErrInvalidArgument)
	}
	asked := time.Now()
	if req.Limit > 0 {
		release, err := f.gate.acquire(ctx, req.Group, req.Index, req.Limit)
		if err != nil {
			return content.Block{}, err
		}
		defer release()
	}
	select {
	case f.slot <- struct{}{}:
	case <-ctx.Done():
		return content.Block{}, ctx.Err()
	}
	defer func() { <-f.slot }()
	asking := time.Now()
	rc, err := f.open(ctx, req, req.Off, req.Len)
	if err != nil {
		return content.Block{}, fmt.Errorf("originfetch: range %d+%d of %s/%s: %w", req.Off, req.Len, req.Bucket, req.Key, err)
	}
	answered := time.Now()
	a := newArrival(req.Hash, req.Len)
	if started != nil {
		started(a)
	}
	blk, err := a.finish(f.read(ctx, rc, a, req))
	if err != nil {
		return content.Block{}, err
	}
	f.c.Chunks.Add(1)
	f.log.Debug("origin chunk", "bucket", req.Bucket, "key", req.Key, "chunk", req.Index,
		"queued", asking.Sub(asked), "headers", answered.Sub(asking), "read", time.Since(answered))
	return blk, nil
}

// errStalled marks one stalled response (resumed unless too many).
var errStalled = errors.New("response stalled")

// read copies exactly req.Len bytes into a, starting with the response rc
// (which it closes), resuming at the first missing byte with a new range
// request when a response stalls.
func (f *Fetcher) read(ctx context.Context, rc io.ReadCloser, a io.Writer, req Request) error {
	buf := make([]byte, Piece)
	var got int64
	for resumes := 0; ; resumes++ {
		k, err := f.copyWatched(a, rc, req.Len-got, buf)
		got += k
		f.c.Bytes.Add(k)
		if err == nil && got == req.Len {
			var one [1]byte
			extra, _ := rc.Read(one[:])
			rc.Close()
			if extra > 0 {
				return fmt.Errorf("originfetch: %s/%s chunk %d: %w: more than %d bytes: %w",
					req.Bucket, req.Key, req.Index, ErrShort, req.Len, origin.ErrUnavailable)
			}
			return nil
		}
		rc.Close()
		switch {
		case err == nil:
			err = fmt.Errorf("%w: got %d of %d bytes: %w", ErrShort, got, req.Len, origin.ErrUnavailable)
		case errors.Is(err, errStalled) && (resumes >= f.p.resumes() || ctx.Err() != nil):
			err = fmt.Errorf("%w after %d resumes: %w", ErrStalled, resumes, origin.ErrUnavailable)
		case errors.Is(err, errStalled):
			f.c.Resumes.Add(1)
			f.log.Debug("origin response stalled; asking again for the rest", "bucket", req.Bucket, "key", req.Key,
				"chunk", req.Index, "got", got, "of", req.Len)
			rc, err = f.open(ctx, req, req.Off+got, req.Len-got)
			if err == nil {
				continue
			}
		}
		return fmt.Errorf("originfetch: %s/%s chunk %d: %w", req.Bucket, req.Key, req.Index, err)
	}
}

// copyWatched copies up to limit bytes from rc to dst through buf. When rc
// delivers nothing for the stall time it closes rc and returns errStalled
// with the count copied so far. End of input before limit is not an error
// (the caller checks the count).
func (f *Fetcher) copyWatched(dst io.Writer, rc io.ReadCloser, limit int64, buf []byte) (int64, error) {
	var stalled atomic.Bool
	if f.p.hedges() {
		t := time.AfterFunc(f.p.Stall, func() {
			stalled.Store(true)
			rc.Close()
		})
		defer t.Stop()
		rc = &resetOnRead{ReadCloser: rc, t: t, d: f.p.Stall}
	}
	var got int64
	for got < limit {
		p := buf[:min(int64(len(buf)), limit-got)]
		k, err := rc.Read(p)
		if k > 0 {
			if _, werr := dst.Write(p[:k]); werr != nil {
				return got, werr
			}
			got += int64(k)
		}
		switch {
		case err == nil:
		case stalled.Load():
			return got, errStalled
		case errors.Is(err, io.EOF):
			return got, nil
		default:
			return got, err
		}
	}
	return got, nil
}

// resetOnRead pushes the stall timer back whenever bytes arrive.
type resetOnRead struct {
	io.ReadCloser
	t *time.Timer
	d time.Duration
}

func (r *resetOnRead) Read(p []byte) (int, error) {
	k, err := r.ReadCloser.Read(p)
	if k > 0 {
		r.t.Reset(r.d)
	}
	return k, err
}

// open sends the range request for [off, off+length) and, when no answer
// has come within the stall time (a connection whose handshake or request
// was lost on a congested link waits out a retransmission timeout of a
// second or more), one more: the first answer wins, the other request is
// cancelled and its body, if any, closed. An error answer before the
// second request is sent is returned as is (the origin client has retried
// it already).
func (f *Fetcher) open(ctx context.Context, req Request, off, length int64) (io.ReadCloser, error) {
	if !f.p.hedges() {
		return f.org.GetRange(ctx, req.Bucket, req.Key, req.ETag, off, length)
	}
	type answer struct {
		rc     io.ReadCloser
		err    error
		cancel context.CancelFunc
		id     int // index in cancels
	}
	results := make(chan answer, 2)
	var cancels []context.CancelFunc // of every request sent
	send := func() {
		actx, cancel := context.WithCancel(ctx)
		id := len(cancels)
		cancels = append(cancels, cancel)
		f.wg.Go(func() {
			rc, err := f.org.GetRange(actx, req.Bucket, req.Key, req.ETag, off, length)
			results <- answer{rc, err, cancel, id}
		})
	}
	send()
	pending, hedged := 1, false
	timer := time.NewTimer(f.p.Stall)
	defer timer.Stop()
	// drain cancels the requests still out and closes their answers once
	// this call has returned (the winner's context is kept: its body is
	// still to be read).
	drain := func(k int, keep *answer) {
		for id, cancel := range cancels {
			if keep == nil || id != keep.id {
				cancel()
			}
		}
		if k == 0 {
			return
		}
		f.wg.Go(func() {
			for range k {
				a := <-results
				if a.err == nil {
					a.rc.Close()
				}
				a.cancel()
			}
		})
	}
	var firstErr error
	for {
		select {
		case a := <-results:
			pending--
			if a.err == nil {
				drain(pending, &a)
				return &cancelOnClose{ReadCloser: a.rc, cancel: a.cancel}, nil
			}
			a.cancel()
			if firstErr == nil {
				firstErr = a.err
			}
			if pending == 0 {
				return nil, firstErr
			}
		case <-timer.C:
			if !hedged {
				hedged = true
				pending++
				f.c.Hedges.Add(1)
				f.log.Debug("origin slow to answer; asking again", "bucket", req.Bucket, "key", req.Key, "off", off)
				send()
			}
		case <-ctx.Done():
			drain(pending, nil)
			return nil, ctx.Err()
		}
	}
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
