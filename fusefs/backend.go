package fusefs

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/shoal-cache/shoal/gateway"
)

// Backend is the read path the mount reads through. *node.Node satisfies
// it (the chunk machinery the gateway uses: memory, SSD, peers, home,
// origin); so does Remote, a node's gateway over HTTP.
type Backend interface {
	// HeadObject returns the current version of bucket/key.
	HeadObject(ctx context.Context, bucket, key string) (gateway.ObjectInfo, error)
	// GetObject streams length bytes at off of exactly the version info
	// names (ErrPreconditionFailed once that version is gone).
	GetObject(ctx context.Context, info gateway.ObjectInfo, off, length int64) (io.ReadCloser, error)
	ListObjectsV2(ctx context.Context, p gateway.ListParams) (gateway.ListResult, error)
	ListBuckets(ctx context.Context) ([]gateway.Bucket, error)
}

// Lender is a Backend that can lend the bytes of a range instead of
// copying them into the mount's buffer: *node.Node is one (its store's
// buffers go to the kernel as they are, one copy less per read than
// GetObject). ReadShared returns up to length bytes at off, never past the
// end of a chunk (a range that crosses one takes a call per chunk), and
// release (never nil) once the bytes are written; ahead > 0 marks a
// sequential reader, whose next chunks are fetched in the background. A
// Backend that is not a Lender (Remote) is read through GetObject.
type Lender interface {
	ReadShared(ctx context.Context, info gateway.ObjectInfo, off, length int64, ahead int) ([]byte, func(), error)
}

// errno maps a backend error to what a file system call returns, and
// whether it is a failure worth a log line (a missing key is an answer,
// not a failure).
func errno(err error) (syscall.Errno, bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, gateway.ErrNoSuchKey), errors.Is(err, gateway.ErrNoSuchBucket):
		return syscall.ENOENT, false
	case errors.Is(err, gateway.ErrAccessDenied):
		return syscall.EACCES, true
	case errors.Is(err, gateway.ErrInvalidArgument):
		return syscall.EINVAL, true
	case errors.Is(err, context.Canceled):
		// The caller was interrupted (a signal): the kernel has given up
		// on the request already.
		return syscall.EINTR, false
	default:
		// ErrUnavailable and ErrSlowDown (origin down, nothing cached),
		// ErrPreconditionFailed (the version changed while open), our
		// own deadline, anything unexplained.
		return syscall.EIO, true
	}
}
