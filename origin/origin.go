// Package origin owns Shoal's access to the system of record: an S3 (or
// S3-compatible) service through aws-sdk-go-v2, and a local directory with
// the same behaviour (each top-level folder is a bucket). Both types have the
// same method set; consumers (package node) declare the small interface they
// need. Errors are translated to this package's sentinels at this boundary.
package origin

import (
	"errors"
	"io"
	"time"
)

// Sentinel errors, compared with errors.Is.
var (
	ErrNotFound           = errors.New("origin: no such key")
	ErrNoSuchBucket       = errors.New("origin: no such bucket")
	ErrNoSuchUpload       = errors.New("origin: no such upload")
	ErrAccessDenied       = errors.New("origin: access denied")
	ErrPreconditionFailed = errors.New("origin: precondition failed") // the object changed (ETag mismatch)
	ErrInvalidRange       = errors.New("origin: invalid range")
	ErrInvalidArgument    = errors.New("origin: invalid argument") // bad key, bad part order, ...
	ErrUnavailable        = errors.New("origin: unavailable")      // network error, 5xx, throttling after retries
)

// ObjectInfo describes one version of an object as the origin reports it.
type ObjectInfo struct {
	Bucket       string    `json:"b"`
	Key          string    `json:"k"`
	ETag         string    `json:"e"` // quoted, as S3 sends it: "\"abc...\""
	Size         int64     `json:"s"`
	ContentType  string    `json:"ct,omitempty"`
	LastModified time.Time `json:"lm"`
	// Metadata holds user metadata (x-amz-meta-*), keys lower-case without
	// the prefix.
	Metadata map[string]string `json:"m,omitempty"`
	// Optional standard headers, passed through verbatim when set.
	CacheControl       string `json:"cc,omitempty"`
	ContentDisposition string `json:"cd,omitempty"`
	ContentEncoding    string `json:"ce,omitempty"`
	ContentLanguage    string `json:"cl,omitempty"`
}

// ListParams are ListObjectsV2 parameters.
type ListParams struct {
	Bucket            string
	Prefix            string
	Delimiter         string
	ContinuationToken string
	StartAfter        string
	MaxKeys           int // 0 means the S3 default, 1000
}

// ListEntry is one key in a listing.
type ListEntry struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// ListResult is one page of ListObjectsV2.
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

// PutParams describe an object written through to the origin.
type PutParams struct {
	Bucket      string
	Key         string
	Body        io.Reader
	Size        int64 // exact length of Body; -1 if unknown
	ContentType string
	Metadata    map[string]string
}

// CompletedPart names one uploaded part when completing a multipart upload.
type CompletedPart struct {
	PartNumber int32
	ETag       string
}
