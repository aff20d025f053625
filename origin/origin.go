package origin

import (
	"errors"
	"io"
	"strings"
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

	// Integrity data, as the origin reports it (nothing is computed here;
	// package internal/integrity checks an object's bytes against it).
	//
	// Checksums are the object's S3 checksums (HEAD with ChecksumMode
	// ENABLED); zero when the origin reports none.
	Checksums Checksums `json:"ck,omitzero"`
	// ETagIsMD5 says that ETag is the hex MD5 of the object's bytes: S3
	// makes it so for a single-part upload (PutObject) stored without
	// SSE-KMS or SSE-C. It is set when the ETag has 32 hex digits and no
	// "-N" multipart suffix and the HEAD named neither KMS nor a customer
	// key. S3-compatible servers may differ (an encrypting or compressing
	// gateway can send 32 hex digits that are no MD5), so a mismatch says
	// "cannot be verified this way" as much as "forged".
	ETagIsMD5 bool `json:"md5,omitempty"`
}

// Checksum types of S3's x-amz-checksum-type.
const (
	// ChecksumFullObject: each value is the checksum of the whole object's
	// bytes and can be checked by streaming them.
	ChecksumFullObject = "FULL_OBJECT"
	// ChecksumComposite: each value is a checksum of the parts' checksums,
	// suffixed "-N" (N parts); checking it needs the part boundaries.
	ChecksumComposite = "COMPOSITE"
)

// Checksums are an object's S3 checksums, each the base64 of the
// big-endian digest, as in the x-amz-checksum-* headers. S3 keeps one
// algorithm per object; empty fields were not reported. The field set is
// the same as gateway.Checksums, so one converts to the other.
type Checksums struct {
	CRC64NVME string `json:"crc64nvme,omitempty"`
	CRC32C    string `json:"crc32c,omitempty"`
	CRC32     string `json:"crc32,omitempty"`
	SHA1      string `json:"sha1,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	// Type is ChecksumFullObject, ChecksumComposite, or "" when the origin
	// did not say (then a value with a "-N" suffix is composite).
	Type string `json:"type,omitempty"`
}

// IsZero reports whether no checksum was reported.
func (c Checksums) IsZero() bool { return c == Checksums{} }

// etagIsPlainMD5 reports whether an ETag has the form of an MD5: 32 hex
// digits (quotes allowed), no multipart suffix.
func etagIsPlainMD5(etag string) bool {
	e := strings.Trim(etag, `"`)
	if len(e) != 32 {
		return false
	}
	for _, c := range e {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
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
