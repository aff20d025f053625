// Package s3name owns S3's limits on names, the one place they are
// defined: bucket names (3-63 characters, general-purpose bucket rules),
// object keys (at most 1024 bytes of UTF-8) and the bound Shoal puts on
// ETags. The gateway checks requests against them; the origins, the
// catalog's and the cluster's encodings (manifests, home request keys,
// manifest records) bound their fields by them. It imports nothing but
// the standard library.
package s3name

import (
	"net"
	"strings"
)

const (
	// MinBucketLen and MaxBucketLen bound a bucket name's length (S3:
	// 3-63 characters).
	MinBucketLen = 3
	MaxBucketLen = 63
	// MaxKeyLen is S3's limit on the UTF-8 length of an object key.
	MaxKeyLen = 1024
	// MaxETagLen bounds an ETag: S3's are a quoted hex MD5 (34 bytes) or,
	// for multipart uploads, one with a "-N" suffix; other S3-compatible
	// servers send other opaque strings. 256 is generous.
	MaxETagLen = 256
)

// ValidBucket applies S3's general-purpose bucket naming rules: 3-63
// characters of lower-case letters, digits, '-' and '.', starting and
// ending with a letter or digit, no "..", not an IP address, none of the
// reserved prefixes and suffixes.
func ValidBucket(b string) bool {
	if len(b) < MinBucketLen || len(b) > MaxBucketLen {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(b)-1 {
				return false
			}
			if c == '.' && (b[i-1] == '.' || b[i+1] == '.') {
				return false
			}
		default:
			return false
		}
	}
	if net.ParseIP(b) != nil {
		return false
	}
	if strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") ||
		strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3") {
		return false
	}
	return true
}
