package gateway

import (
	"context"
	"errors"
	"io"
	"time"
)

// Backend is what the gateway needs from the node behind it. *node.Node
// satisfies it. The gateway evaluates Range and conditional headers itself:
// it asks HeadObject for the current version, decides, then asks GetObject
// for bytes of exactly that version (identified by info.ETag), so a reader
// never gets a mix of two versions.
type Backend interface {
	HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// GetObject streams length bytes from offset off of the version info
	// describes. If that version is no longer available, it returns
	// ErrPreconditionFailed (or an error from the stream, mid-way).
	GetObject(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error)
	ListObjectsV2(ctx context.Context, p ListParams) (ListResult, error)
	ListBuckets(ctx context.Context) ([]Bucket, error)
	// BucketLocation returns the bucket's region ("" for us-east-1), or
	// ErrNoSuchBucket.
	BucketLocation(ctx context.Context, bucket string) (string, error)

	PutObject(ctx context.Context, p PutParams) (ObjectInfo, error)
	DeleteObject(ctx context.Context, bucket, key string) error
	CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (uploadID string, err error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (etag string, err error)
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectInfo, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
}

// Errors a Backend returns (wrapped), mapped to S3 error codes by the
// gateway's single error-mapping function. The two 503s carry a
// Retry-After header (see WithRetryAfter for a backend's own hint).
var (
	ErrNoSuchKey          = errors.New("no such key")         // 404 NoSuchKey
	ErrNoSuchBucket       = errors.New("no such bucket")      // 404 NoSuchBucket
	ErrNoSuchUpload       = errors.New("no such upload")      // 404 NoSuchUpload
	ErrAccessDenied       = errors.New("access denied")       // 403 AccessDenied
	ErrPreconditionFailed = errors.New("precondition failed") // 412 PreconditionFailed
	ErrInvalidArgument    = errors.New("invalid argument")    // 400 InvalidArgument
	ErrUnavailable        = errors.New("service unavailable") // 503 ServiceUnavailable (origin down, no cached copy)
	ErrSlowDown           = errors.New("slow down")           // 503 SlowDown (overloaded)
	ErrNotImplemented     = errors.New("not implemented")     // 501 NotImplemented
)

// ObjectInfo describes one object version.
type ObjectInfo struct {
	Bucket       string
	Key          string
	ETag         string // quoted
	Size         int64
	ContentType  string
	LastModified time.Time
	Metadata     map[string]string // user metadata, lower-case keys without x-amz-meta-

	CacheControl       string
	ContentDisposition string
	ContentEncoding    string
	ContentLanguage    string

	// Checksums are the object's checksums as its origin reported them.
	// The gateway sends them (x-amz-checksum-*, x-amz-checksum-type) on a
	// GET or HEAD of the whole object that asks for them with
	// x-amz-checksum-mode: ENABLED, as S3 does, and never on a range: they
	// describe the whole object's bytes.
	Checksums Checksums
}

// Checksums are S3 checksums of one object version, each the base64 of the
// big-endian digest as in the x-amz-checksum-* headers; empty fields were
// not reported. Type is "FULL_OBJECT", "COMPOSITE" (values suffixed "-N")
// or "" (not said). The field set matches origin.Checksums, so a
// conversion carries one into the other.
type Checksums struct {
	CRC64NVME string
	CRC32C    string
	CRC32     string
	SHA1      string
	SHA256    string
	Type      string
}

// ListParams are ListObjectsV2 parameters, already validated by the gateway.
type ListParams struct {
	Bucket            string
	Prefix            string
	Delimiter         string
	ContinuationToken string
	StartAfter        string
	MaxKeys           int
}

// ListEntry is one key in a listing.
type ListEntry struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// ListResult is one page of a listing.
type ListResult struct {
	Entries               []ListEntry
	CommonPrefixes        []string
	IsTruncated           bool
	NextContinuationToken string
}

// Bucket is one entry of ListBuckets.
type Bucket struct {
	Name         string
	CreationDate time.Time
}

// PutParams describe an upload passed through to the origin.
type PutParams struct {
	Bucket      string
	Key         string
	Body        io.Reader
	Size        int64 // decoded payload length; -1 if unknown
	ContentType string
	Metadata    map[string]string
}

// CompletedPart names one part of a multipart upload.
type CompletedPart struct {
	PartNumber int32
	ETag       string
}
