package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/shoal-cache/shoal/gateway"
)

var (
	_ fs.NodeGetattrer     = (*file)(nil)
	_ fs.NodeOpener        = (*file)(nil)
	_ fs.NodeSetattrer     = (*file)(nil)
	_ fs.NodeSetxattrer    = (*file)(nil)
	_ fs.NodeRemovexattrer = (*file)(nil)
	_ fs.FileReader        = (*handle)(nil)
	_ fs.FileReleaser      = (*handle)(nil)
	_ fs.FileGetattrer     = (*handle)(nil)
	_ fs.FileWriter        = (*handle)(nil)
)

// file is an object as a regular file.
type file struct {
	fs.Inode
	m           *FS
	bucket, key string

	mu   sync.Mutex         // guards info and kept
	info gateway.ObjectInfo // the version last seen (lookup, getattr or open)
	// kept is the ETag of the version last opened: the one whose pages
	// the kernel's page cache may hold for this inode.
	kept string
}

func (f *file) setInfo(info gateway.ObjectInfo) {
	f.mu.Lock()
	f.info = info
	f.mu.Unlock()
}

func (f *file) currentInfo() gateway.ObjectInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info
}

func (f *file) fillAttr(a *fuse.Attr, info gateway.ObjectInfo) {
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(info.Size)
	a.Blocks = (a.Size + 511) / 512
	// st_blksize is the buffer cat, cp and Python size their reads by.
	a.Blksize = uint32(f.m.cfg.MaxRead)
	a.Owner = fuse.Owner{Uid: f.m.uid, Gid: f.m.gid}
	t := info.LastModified
	a.SetTimes(&t, &t, &t)
}

// Getattr refreshes the attributes through the backend (the node answers
// from its metadata cache within its TTL) once the kernel's copy expired.
// On an open handle, fstat describes the version the handle reads. If the
// backend fails, the last known attributes stand (as the node serves stale
// metadata while the origin is down).
func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		return h.Getattr(ctx, out)
	}
	ctx, cancel := f.m.opCtx(ctx)
	defer cancel()
	info, err := f.m.b.HeadObject(ctx, f.bucket, f.key)
	switch e, _ := errno(err); {
	case err == nil:
		f.setInfo(info)
	case e == syscall.ENOENT:
		return syscall.ENOENT
	default:
		f.m.log.Debug("mount: attributes not refreshed", "bucket", f.bucket, "key", f.key, "err", err)
		info = f.currentInfo()
	}
	f.fillAttr(&out.Attr, info)
	out.SetTimeout(f.m.cfg.attrTTL(f.bucket, f.key))
	return 0
}

// Open pins the handle to the object's current version. The kernel keeps
// its page cache when that version is the one it cached at the last open.
func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	hctx, cancel := f.m.opCtx(ctx)
	info, err := f.m.b.HeadObject(hctx, f.bucket, f.key)
	cancel()
	if err != nil {
		return nil, 0, f.m.fail("open", f.bucket, f.key, err)
	}
	f.mu.Lock()
	keep := f.kept == info.ETag
	f.kept = info.ETag
	f.info = info
	f.mu.Unlock()
	var fl uint32
	if keep {
		fl = fuse.FOPEN_KEEP_CACHE
	}
	return newHandle(f, info), fl, 0
}

func (f *file) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (f *file) Setxattr(context.Context, string, []byte, uint32) syscall.Errno { return syscall.EROFS }
func (f *file) Removexattr(context.Context, string) syscall.Errno              { return syscall.EROFS }

// maxSkip: a read this far past an open stream's position is served by
// reading on (the kernel's concurrent read-ahead requests arrive a little
// out of order); farther, the stream is dropped.
const maxSkip = 4 << 20

// handle is one open file: reads of one version.
type handle struct {
	f    *file
	info gateway.ObjectInfo // the version every read asks for

	ctx    context.Context // the stream's: ends at Release
	cancel context.CancelFunc

	mu     sync.Mutex    // guards the fields below; held while the stream reads
	stream io.ReadCloser // open to the end of the object, or nil
	spos   int64         // the stream's position
	next   int64         // where the previous read ended
	run    int64         // bytes read in order up to next
	closed bool
	held   *lease // the last chunk lent (Lender backends), or nil
}

func newHandle(f *file, info gateway.ObjectInfo) *handle {
	ctx, cancel := context.WithCancel(context.Background())
	return &handle{f: f, info: info, ctx: ctx, cancel: cancel}
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	h.f.fillAttr(&out.Attr, h.info)
	out.SetTimeout(h.f.m.cfg.attrTTL(h.info.Bucket, h.info.Key))
	return 0
}

func (h *handle) Write(context.Context, []byte, int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

// Read serves dest at off: from the open stream if it is there (or just
// behind), else by opening one when the handle has been read in order
// long enough, else with a read of exactly this range.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.info.Size
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	n := min(int64(len(dest)), size-off)
	buf := dest[:n]

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, syscall.EBADF
	}
	if off == h.next {
		h.run += n
	} else {
		h.run = n
	}
	h.next = off + n
	if l := h.f.m.lend; l != nil {
		seq := h.run >= h.f.m.cfg.SequentialAfter
		h.mu.Unlock()
		return h.readLent(ctx, l, buf, off, seq)
	}
	if h.stream == nil && h.run >= h.f.m.cfg.SequentialAfter && off+n < size {
		rc, err := h.f.m.b.GetObject(h.ctx, h.info, off, size-off)
		if err != nil {
			h.mu.Unlock()
			return nil, h.f.m.fail("read", h.info.Bucket, h.info.Key, err)
		}
		h.stream, h.spos = rc, off
	}
	if h.stream != nil && off >= h.spos && off-h.spos <= maxSkip {
		err := h.readStreamLocked(buf, off)
		if err == nil {
			h.mu.Unlock()
			return fuse.ReadResultData(buf), 0
		}
		// A broken stream: log it, then try this range once on its own.
		h.f.m.log.Debug("mount: stream ended early, reading the range", "bucket", h.info.Bucket, "key", h.info.Key, "off", off, "err", err)
	} else if h.stream != nil && off >= h.spos {
		h.closeStreamLocked()
	}
	h.mu.Unlock()

	if err := h.readRange(ctx, buf, off); err != nil {
		return nil, h.f.m.fail("read", h.info.Bucket, h.info.Key, err)
	}
	return fuse.ReadResultData(buf), 0
}

// readLent serves buf's range with bytes the backend lends: a slice of
// one chunk goes to the kernel as it is (given back once written); a range
// across chunks is copied into buf. Reads of one handle run in parallel
// (the kernel's read-ahead sends several). The handle keeps the last chunk
// it was lent, from the first byte it asked for to the chunk's end, so the
// kernel's next requests inside that chunk cost no call to the backend;
// a sequential handle asks the backend to fetch the chunks after it.
func (h *handle) readLent(ctx context.Context, l Lender, buf []byte, off int64, seq bool) (fuse.ReadResult, syscall.Errno) {
	n := int64(len(buf))
	if c := h.heldLease(off, n); c != nil {
		return &lent{data: c.data[off-c.off : off-c.off+n], release: c.drop}, 0
	}
	ahead := 0
	if seq {
		ahead = lendAhead
	}
	c, err := h.lease(ctx, l, off, ahead)
	if err != nil {
		return nil, h.f.m.fail("read", h.info.Bucket, h.info.Key, err)
	}
	if int64(len(c.data)) >= n {
		return &lent{data: c.data[:n], release: c.drop}, 0
	}
	// The range crosses a chunk boundary: assemble it.
	k := int64(copy(buf, c.data))
	c.drop()
	for k < n {
		c, err = h.lease(ctx, l, off+k, ahead)
		if err != nil {
			return nil, h.f.m.fail("read", h.info.Bucket, h.info.Key, err)
		}
		k += int64(copy(buf[k:], c.data[:min(int64(len(c.data)), n-k)]))
		c.drop()
	}
	return fuse.ReadResultData(buf), 0
}

// lease asks the backend for the bytes from off to the end of off's chunk
// and keeps them as the handle's held lease. It returns them with one
// hold for the caller (drop it once done).
func (h *handle) lease(ctx context.Context, l Lender, off int64, ahead int) (*lease, error) {
	data, release, err := l.ReadShared(ctx, h.info, off, h.info.Size-off, ahead)
	if err != nil {
		return nil, err
	}
	c := &lease{off: off, data: data, release: release}
	c.refs.Store(2) // the caller's and the handle's
	h.mu.Lock()
	old := h.held
	if h.closed {
		c.refs.Add(-1) // a closed handle keeps nothing
	} else {
		h.held = c
	}
	h.mu.Unlock()
	if old != nil {
		old.drop()
	}
	return c, nil
}

// heldLease returns the held lease with a hold for the caller when it
// covers [off, off+n), or nil.
func (h *handle) heldLease(off, n int64) *lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.held
	if c == nil || off < c.off || off+n > c.off+int64(len(c.data)) {
		return nil
	}
	c.refs.Add(1)
	return c
}

// lendAhead: the chunks a sequential handle asks to be fetched after the
// one it reads (the backend bounds it by its own read-ahead).
const lendAhead = 16

// lease is a lent range of one chunk, given back to the backend when its
// last holder (the handle, the replies in flight) drops it.
type lease struct {
	off     int64 // object offset of data[0]
	data    []byte
	release func()
	refs    atomic.Int32
}

func (c *lease) drop() {
	if c.refs.Add(-1) == 0 {
		c.release()
	}
}

// lent is a read reply in a lent buffer, given back once the kernel has
// it (go-fuse calls Done after the reply is written, or dropped).
type lent struct {
	data    []byte
	release func()
	once    sync.Once
}

func (r *lent) Bytes([]byte) ([]byte, fuse.Status) { return r.data, fuse.OK }
func (r *lent) Size() int                          { return len(r.data) }
func (r *lent) Done()                              { r.once.Do(r.release) }

// readStreamLocked reads buf at off from the stream, skipping to off; on
// an error it closes the stream.
func (h *handle) readStreamLocked(buf []byte, off int64) error {
	if skip := off - h.spos; skip > 0 {
		if _, err := io.CopyN(io.Discard, h.stream, skip); err != nil {
			h.closeStreamLocked()
			return err
		}
		h.spos = off
	}
	if _, err := io.ReadFull(h.stream, buf); err != nil {
		h.closeStreamLocked()
		return err
	}
	h.spos += int64(len(buf))
	if h.spos >= h.info.Size {
		h.closeStreamLocked()
	}
	return nil
}

func (h *handle) closeStreamLocked() {
	if h.stream != nil {
		h.stream.Close()
		h.stream = nil
	}
}

// readRange reads exactly buf at off: the backend fetches only the chunks
// under it.
func (h *handle) readRange(ctx context.Context, buf []byte, off int64) error {
	rc, err := h.f.m.b.GetObject(ctx, h.info, off, int64(len(buf)))
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%d bytes at %d: body ended early: %w", len(buf), off, gateway.ErrUnavailable)
		}
		return err
	}
	return nil
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	h.closed = true
	if h.held != nil {
		h.held.drop()
		h.held = nil
	}
	h.closeStreamLocked()
	h.mu.Unlock()
	h.cancel()
	return 0
}
