package node

import (
	"context"
	"fmt"

	"github.com/shoal-cache/shoal/gateway"
)

// ReadShared is GetObject for a caller that writes the bytes out and keeps
// none of them (the FUSE mount hands them to the kernel): it lends the
// bytes at off of the version info names, up to length and never past the
// end of off's chunk, so a range that crosses a chunk boundary takes one
// call per chunk. Where the store holds the chunk the slice is the store's
// own buffer, read-only, and release (never nil) gives it back once the
// bytes are written; no copy is made on this side. The first call of a
// range waits for its chunk at most OriginWait, as a GET's first chunk.
//
// A sequential reader passes ahead > 0: when off is a chunk's first byte
// the next ahead chunks (at most ReadAhead) are fetched in the background,
// bounded by the node's task pool, so that they are held when the reader
// gets there (GetObject's read-ahead window, for a reader without a
// stream).
func (n *Node) ReadShared(ctx context.Context, info gateway.ObjectInfo, off, length int64, ahead int) ([]byte, func(), error) {
	if info.Bucket == "" || off < 0 || length <= 0 || info.Size < 0 || off >= info.Size || length > info.Size-off {
		return nil, noRelease, fmt.Errorf("node: read %s/%s: range %d+%d of %d bytes: %w",
			info.Bucket, info.Key, off, length, info.Size, gateway.ErrInvalidArgument)
	}
	v := n.version(info.Bucket, info.Key, info.ETag, info.Size)
	i := off / v.ChunkSize
	start := off - i*v.ChunkSize
	if start == 0 && ahead > 0 {
		last := (v.Size - 1) / v.ChunkSize
		for j := i + 1; j <= min(i+int64(min(ahead, n.cfg.ReadAhead)), last); j++ {
			if !n.bg.submit(func(ctx context.Context) {
				_, release, err := n.readChunk(ctx, v, j, access{borrow: true, ahead: true})
				release()
				if err != nil && ctx.Err() == nil {
					n.log.Debug("read-ahead failed", "bucket", v.Bucket, "key", v.Key, "chunk", j, "err", err)
				}
			}) {
				n.m.tasksDropped.Add(1)
			}
		}
	}
	data, release, err := n.readerChunk(ctx, v, i, true)
	if err != nil {
		release()
		return nil, noRelease, mapErr(fmt.Sprintf("read %s/%s", info.Bucket, info.Key), err)
	}
	if want := min(v.ChunkSize, v.Size-i*v.ChunkSize); int64(len(data)) != want {
		release()
		return nil, noRelease, fmt.Errorf("node: read %s/%s chunk %d: %d bytes, want %d: %w",
			info.Bucket, info.Key, i, len(data), want, gateway.ErrUnavailable)
	}
	end := min(start+length, int64(len(data)))
	return data[start:end:end], release, nil
}
