package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/origin"
)

// Stalled origin reads. A response body that stops delivering mid-chunk is
// usually one TCP connection in retransmission backoff (a lost packet on a
// congested link: seconds before it moves again), not an origin that is
// down. Every reader of the cluster waits on that chunk (its home streams
// it to them), so a home does what S3's performance guidelines recommend
// for latency-sensitive reads: it gives up on the stalled response and asks
// again for the bytes it is missing, on a fresh connection. An origin that
// is really down still fails the read (the origin client's own timeouts and
// retries), after maxOriginResumes resumes at most.
const (
	// originStall is how long a response body may deliver nothing before
	// the rest of the chunk is asked for again: far above the gaps of a
	// moving transfer (a 64 KiB piece every few ms at any useful rate) and
	// above TCP's first retransmission timeouts (200-400 ms), far below the
	// backoffs that follow them.
	originStall = time.Second
	// maxOriginResumes bounds the extra requests for one chunk.
	maxOriginResumes = 3
)

// errOriginStalled: a response body delivered nothing for originStall.
var errOriginStalled = errors.New("node: origin response stalled")

// readOrigin copies exactly req.Len bytes of the chunk into a, starting with
// the response rc (which it closes), resuming at the first missing byte with
// a new range request when a response stalls.
func (n *Node) readOrigin(ctx context.Context, rc io.ReadCloser, a io.Writer, req ChunkRequest) error {
	v := req.Version
	buf := make([]byte, originPiece)
	var got int64
	for resumes := 0; ; resumes++ {
		k, err := copyWatched(a, rc, req.Len-got, buf, n.originStall)
		got += k
		n.m.originBytes.Add(k)
		if err == nil && got == req.Len {
			var one [1]byte
			extra, _ := rc.Read(one[:])
			rc.Close()
			if extra > 0 {
				return fmt.Errorf("node: origin read %s/%s chunk %d: %w: more than %d bytes: %w",
					v.Bucket, v.Key, req.Index, errShortChunk, req.Len, origin.ErrUnavailable)
			}
			return nil
		}
		rc.Close()
		switch {
		case err == nil:
			err = fmt.Errorf("%w: got %d of %d bytes: %w", errShortChunk, got, req.Len, origin.ErrUnavailable)
		case errors.Is(err, errOriginStalled) && (resumes >= maxOriginResumes || ctx.Err() != nil):
			err = fmt.Errorf("%w after %d resumes: %w", err, resumes, origin.ErrUnavailable)
		case errors.Is(err, errOriginStalled):
			n.m.originResumes.Add(1)
			n.log.Debug("origin response stalled; asking again for the rest", "bucket", v.Bucket, "key", v.Key,
				"chunk", req.Index, "got", got, "of", req.Len)
			rc, err = n.openOrigin(ctx, v, req.Off+got, req.Len-got)
			if err == nil {
				continue
			}
		}
		return fmt.Errorf("node: origin read %s/%s chunk %d: %w", v.Bucket, v.Key, req.Index, err)
	}
}

// copyWatched copies up to limit bytes from rc to dst through buf. When rc
// delivers nothing for stall it closes rc and returns errOriginStalled with
// the count copied so far. End of input before limit is not an error (the
// caller checks the count).
func copyWatched(dst io.Writer, rc io.ReadCloser, limit int64, buf []byte, stall time.Duration) (int64, error) {
	var stalled atomic.Bool
	t := time.AfterFunc(stall, func() {
		stalled.Store(true)
		rc.Close()
	})
	defer t.Stop()
	var got int64
	for got < limit {
		p := buf[:min(int64(len(buf)), limit-got)]
		k, err := rc.Read(p)
		if k > 0 {
			t.Reset(stall)
			if _, werr := dst.Write(p[:k]); werr != nil {
				return got, werr
			}
			got += int64(k)
		}
		switch {
		case err == nil:
		case stalled.Load():
			return got, errOriginStalled
		case errors.Is(err, io.EOF):
			return got, nil
		default:
			return got, err
		}
	}
	return got, nil
}

// openOrigin sends the range request for [off, off+length) of v and, when no
// answer has come within the stall time (a connection whose handshake or
// request was lost on a congested link waits out a retransmission timeout
// of a second or more), one more: the first answer wins, the other request
// is cancelled and its body, if any, closed. An error answer before the
// second request is sent is returned as is (the origin client has retried
// it already).
func (n *Node) openOrigin(ctx context.Context, v catalog.Version, off, length int64) (io.ReadCloser, error) {
	type answer struct {
		rc     io.ReadCloser
		err    error
		cancel context.CancelFunc
	}
	results := make(chan answer, 2)
	send := func() {
		actx, cancel := context.WithCancel(ctx)
		n.wg.Go(func() {
			rc, err := n.org.GetRange(actx, v.Bucket, v.Key, v.ETag, off, length)
			results <- answer{rc, err, cancel}
		})
	}
	send()
	pending, hedged := 1, false
	timer := time.NewTimer(n.originStall)
	defer timer.Stop()
	// drain closes the answers still to come once this call has returned.
	drain := func(k int) {
		if k == 0 {
			return
		}
		n.wg.Go(func() {
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
				drain(pending)
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
				n.m.originHedges.Add(1)
				n.log.Debug("origin slow to answer; asking again", "bucket", v.Bucket, "key", v.Key, "off", off)
				send()
			}
		case <-ctx.Done():
			drain(pending)
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
