package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
)

var errReaderClosed = errors.New("reader closed")

// GetObject streams length bytes at off of the version info names, fetching
// only the chunks that cover the range, up to ReadAhead chunks ahead of the
// reader. It waits for the first chunk, so a version that is no longer
// available fails here (ErrPreconditionFailed) rather than mid-stream.
// Closing the reader cancels its pending fetches (a fetch shared with other
// readers goes on for them).
func (n *Node) GetObject(ctx context.Context, info gateway.ObjectInfo, off, length int64) (io.ReadCloser, error) {
	if info.Bucket == "" || off < 0 || length < 0 || info.Size < 0 || off > info.Size || length > info.Size-off {
		return nil, fmt.Errorf("node: get %s/%s: range %d+%d of %d bytes: %w",
			info.Bucket, info.Key, off, length, info.Size, gateway.ErrInvalidArgument)
	}
	if length == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	v := n.version(info.Bucket, info.Key, info.ETag, info.Size)
	r := &chunkReader{
		n: n, v: v, ctx: ctx, cancel: func() {}, check: n.newStreamCheck(ctx, v, off, length),
		off: off, end: off + length,
		first: off / v.ChunkSize, next: off / v.ChunkSize, last: (off + length - 1) / v.ChunkSize,
	}
	if r.next == r.last {
		// One chunk (every small object): fetch it here, without a
		// goroutine, its hand-over or a context of its own to cancel.
		p := &pendingChunk{i: r.next, done: make(chan struct{})}
		p.data, p.release, p.err = n.readerChunk(ctx, v, p.i, true)
		close(p.done)
		r.next++
		r.pending = append(r.pending, p)
	} else {
		r.ctx, r.cancel = context.WithCancel(ctx)
		r.fill()
	}
	if err := r.wait(); err != nil {
		r.Close()
		return nil, mapErr(fmt.Sprintf("get %s/%s", info.Bucket, info.Key), err)
	}
	return r, nil
}

// readerChunk is chunk i of v for a reader, borrowed from the store on a
// hit (release, never nil, gives it back).
// The first chunk of a read is waited for at most OriginWait (bounded).
func (n *Node) readerChunk(ctx context.Context, v catalog.Version, i int64, bounded bool) ([]byte, func(), error) {
	d, release, err := n.readChunk(ctx, v, i, access{borrow: true, ahead: true, bounded: bounded})
	return d.data, release, err
}

// chunkReader streams chunks in order with a bounded read-ahead window.
// It is used by one goroutine at a time (io.Reader contract); Close may be
// called from another.
//
// Buffer ownership: a chunk borrowed from the store (readChunk) belongs to
// the reader until it releases it: the current chunk once the reader moves
// past it, pending ones at Close. Buffers are released only when no Read or
// WriteTo is running and no fetch goroutine is left, so bytes being
// written to a client are never recycled under it.
type chunkReader struct {
	n      *Node
	v      catalog.Version
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch goroutines

	off, end   int64 // remaining byte range of the object [off, end)
	first      int64 // first chunk of the read
	next, last int64 // next chunk to launch; last chunk needed
	pending    []*pendingChunk
	cur        []byte // unread part of the current chunk
	curRelease func() // gives the current chunk back; nil when none
	err        error  // sticky
	// check: a full read of a version not verified yet is checked
	// against the origin's integrity data as its chunks pass (verify.go);
	// nil when not needed.
	check *streamCheck

	mu        sync.Mutex // guards the fields below
	closed    bool       // Close was called: launch nothing more
	fetched   bool       // Close saw every fetch goroutine end
	active    bool       // a Read or WriteTo is running
	closeOnce sync.Once
}

type pendingChunk struct {
	i       int64
	done    chan struct{}
	data    []byte
	release func() // set with data; never nil once done is closed
	err     error
}

// fill launches fetches until ReadAhead are pending (the one being read
// counts) or every needed chunk is launched.
func (r *chunkReader) fill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for !r.closed && len(r.pending) < r.n.cfg.ReadAhead && r.next <= r.last {
		p := &pendingChunk{i: r.next, done: make(chan struct{})}
		r.next++
		r.pending = append(r.pending, p)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(p.done)
			p.data, p.release, p.err = r.n.readerChunk(r.ctx, r.v, p.i, p.i == r.first)
		}()
	}
}

// wait makes cur the head chunk's bytes that fall inside the range,
// releasing the previous chunk.
func (r *chunkReader) wait() error {
	p := r.pending[0]
	select {
	case <-p.done:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	r.pending = r.pending[1:]
	if p.err != nil {
		p.release()
		return p.err
	}
	start := p.i * r.v.ChunkSize
	want := min(r.v.ChunkSize, r.v.Size-start)
	if int64(len(p.data)) != want {
		p.release()
		return fmt.Errorf("chunk %d: %d bytes, want %d: %w", p.i, len(p.data), want, errShortChunk)
	}
	if r.check != nil {
		// Before any byte of the chunk is exposed: the last chunk of a
		// version that proves false is never released.
		last, ok := r.check.add(p.i, p.data)
		if !ok {
			p.release()
			r.check = nil
			r.n.poison(r.ctx, r.v, "a full read does not match the origin's checksum", "")
			return gateway.WithRetryAfter(fmt.Errorf("node: %s/%s: the bytes from peers do not match the origin's checksum; dropped, read again: %w",
				r.v.Bucket, r.v.Key, gateway.ErrUnavailable), time.Second)
		}
		if last {
			r.check = nil
			r.n.verified(r.ctx, r.v)
		}
	}
	from := max(r.off, start) - start
	to := min(r.end, start+want) - start
	r.releaseCur()
	r.cur, r.curRelease = p.data[from:to], p.release
	r.off = start + to
	r.fill()
	return nil
}

func (r *chunkReader) releaseCur() {
	if r.curRelease != nil {
		r.curRelease()
		r.curRelease = nil
	}
	r.cur = nil
}

// enter marks a Read or WriteTo as running; it fails once Close was called.
func (r *chunkReader) enter() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("node: read %s/%s: %w", r.v.Bucket, r.v.Key, errReaderClosed)
	}
	r.active = true
	return nil
}

// exit ends a Read or WriteTo; if Close ran meanwhile, the buffers are
// released now.
func (r *chunkReader) exit() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active = false
	if r.fetched {
		r.releaseAllLocked()
	}
}

// releaseAllLocked gives back every buffer the reader holds. Only called
// with no fetch goroutine left and no Read or WriteTo running.
func (r *chunkReader) releaseAllLocked() {
	r.releaseCur()
	for _, p := range r.pending {
		if p.release != nil {
			p.release()
			p.release = nil
		}
	}
	r.pending = nil
}

func (r *chunkReader) Read(b []byte) (int, error) {
	if err := r.enter(); err != nil {
		return 0, err
	}
	defer r.exit()
	if r.err != nil {
		return 0, r.err
	}
	for len(r.cur) == 0 {
		if r.off >= r.end {
			return 0, io.EOF
		}
		if err := r.wait(); err != nil {
			r.err = mapErr(fmt.Sprintf("read %s/%s", r.v.Bucket, r.v.Key), err)
			return 0, r.err
		}
	}
	k := copy(b, r.cur)
	r.cur = r.cur[k:]
	return k, nil
}

// WriteTo writes the rest of the range to w straight from the chunks'
// buffers (no copy), so the gateway can hand them to the connection. Errors
// from w are returned as they are; the reader's own are mapped like Read's.
func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	if err := r.enter(); err != nil {
		return 0, err
	}
	defer r.exit()
	var total int64
	for {
		if r.err != nil {
			return total, r.err
		}
		if len(r.cur) > 0 {
			k, err := w.Write(r.cur)
			total += int64(k)
			r.cur = r.cur[k:]
			if err != nil {
				return total, err
			}
			continue
		}
		if r.off >= r.end {
			return total, nil
		}
		if err := r.wait(); err != nil {
			r.err = mapErr(fmt.Sprintf("read %s/%s", r.v.Bucket, r.v.Key), err)
			return total, r.err
		}
	}
}

// Close cancels pending fetches, waits for the reader's goroutines and
// releases its buffers (or leaves that to a Read or WriteTo still running).
func (r *chunkReader) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cancel()
		r.wg.Wait()
		r.mu.Lock()
		r.fetched = true
		if !r.active {
			r.releaseAllLocked()
		}
		r.mu.Unlock()
	})
	return nil
}
