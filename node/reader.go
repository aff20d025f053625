package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

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
	rctx, cancel := context.WithCancel(ctx)
	r := &chunkReader{
		n: n, v: v, ctx: rctx, cancel: cancel,
		off: off, end: off + length,
		next: off / v.ChunkSize, last: (off + length - 1) / v.ChunkSize,
	}
	r.fill()
	if err := r.wait(); err != nil {
		r.Close()
		return nil, mapErr(fmt.Sprintf("get %s/%s", info.Bucket, info.Key), err)
	}
	return r, nil
}

// chunkReader streams chunks in order with a bounded read-ahead window.
// It is used by one goroutine at a time (io.Reader contract); Close may be
// called from another.
type chunkReader struct {
	n      *Node
	v      catalog.Version
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // fetch goroutines

	off, end   int64 // remaining byte range of the object [off, end)
	next, last int64 // next chunk to launch; last chunk needed
	pending    []*pendingChunk
	cur        []byte // unread part of the current chunk
	err        error  // sticky

	closed    atomic.Bool
	closeOnce sync.Once
}

type pendingChunk struct {
	i    int64
	done chan struct{}
	data []byte
	err  error
}

// fill launches fetches until ReadAhead are pending (the one being read
// counts) or every needed chunk is launched.
func (r *chunkReader) fill() {
	for len(r.pending) < r.n.cfg.ReadAhead && r.next <= r.last {
		p := &pendingChunk{i: r.next, done: make(chan struct{})}
		r.next++
		r.pending = append(r.pending, p)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(p.done)
			p.data, p.err = r.n.chunk(r.ctx, r.v, p.i)
		}()
	}
}

// wait makes cur the head chunk's bytes that fall inside the range.
func (r *chunkReader) wait() error {
	p := r.pending[0]
	select {
	case <-p.done:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	r.pending = r.pending[1:]
	if p.err != nil {
		return p.err
	}
	start := p.i * r.v.ChunkSize
	want := min(r.v.ChunkSize, r.v.Size-start)
	if int64(len(p.data)) != want {
		return fmt.Errorf("chunk %d: %d bytes, want %d: %w", p.i, len(p.data), want, errShortChunk)
	}
	from := max(r.off, start) - start
	to := min(r.end, start+want) - start
	r.cur = p.data[from:to]
	r.off = start + to
	r.fill()
	return nil
}

func (r *chunkReader) Read(b []byte) (int, error) {
	if r.closed.Load() {
		return 0, fmt.Errorf("node: read %s/%s: %w", r.v.Bucket, r.v.Key, errReaderClosed)
	}
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

// Close cancels pending fetches and waits for the reader's goroutines.
func (r *chunkReader) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.cancel()
		r.wg.Wait()
	})
	return nil
}
