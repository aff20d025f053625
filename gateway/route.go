package gateway

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shoal-cache/shoal/internal/s3name"
)

// operation names an S3 API operation; it is also the metrics label.
type operation string

const (
	opListBuckets       operation = "ListBuckets"
	opHeadBucket        operation = "HeadBucket"
	opGetBucketLocation operation = "GetBucketLocation"
	opListObjectsV2     operation = "ListObjectsV2"
	opListObjects       operation = "ListObjects"
	opGetObject         operation = "GetObject"
	opHeadObject        operation = "HeadObject"
	opPutObject         operation = "PutObject"
	opDeleteObject      operation = "DeleteObject"
	opDeleteObjects     operation = "DeleteObjects"
	opCreateMultipart   operation = "CreateMultipartUpload"
	opUploadPart        operation = "UploadPart"
	opCompleteMultipart operation = "CompleteMultipartUpload"
	opAbortMultipart    operation = "AbortMultipartUpload"
	opUnknown           operation = "Unknown"
)

// maxKeyBytes is S3's limit on the UTF-8 length of an object key.
const maxKeyBytes = s3name.MaxKeyLen

// route is what a request addresses.
type route struct {
	bucket string
	key    string
	op     operation
}

// unsupportedSubresources are S3 query parameters that select an API this
// gateway does not implement; their presence means NotImplemented.
var unsupportedSubresources = []string{
	"accelerate", "acl", "analytics", "attributes", "cors", "encryption",
	"intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging",
	"metrics", "notification", "object-lock", "ownershipControls", "policy",
	"policyStatus", "publicAccessBlock", "replication", "requestPayment",
	"restore", "retention", "select", "tagging", "torrent", "versioning",
	"versions", "website", "uploads", "renameObject", "session",
}

// parseRoute maps host, decoded path, query and method to bucket, key and
// operation. domains are lower-case virtual-hosting domains.
func parseRoute(method, host, path string, q url.Values, domains []string) (route, error) {
	var rt route
	if !strings.HasPrefix(path, "/") {
		return rt, errInvalidURI
	}
	bucket, hostStyle := bucketFromHost(host, domains)
	rest := path[1:]
	if !hostStyle {
		bucket, rest, _ = strings.Cut(rest, "/")
	}
	rt.bucket, rt.key = bucket, rest
	if rt.bucket != "" && !validBucketName(rt.bucket) {
		return rt, errInvalidBucketName.with("The specified bucket is not valid: " + strconv.Quote(truncate(rt.bucket, 80)))
	}
	if rt.key != "" {
		if len(rt.key) > maxKeyBytes {
			return rt, errKeyTooLong
		}
		if !utf8.ValidString(rt.key) || strings.IndexByte(rt.key, 0) >= 0 {
			return rt, errInvalidArgument.with("Object key must be valid UTF-8 without NUL characters.")
		}
	}
	for k := range q {
		if !utf8.ValidString(k) {
			return rt, errInvalidArgument.with("Query parameter names must be valid UTF-8.")
		}
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	unsupported := func() bool {
		for _, s := range unsupportedSubresources {
			if has(s) {
				return true
			}
		}
		return false
	}

	switch {
	case rt.bucket == "":
		if rt.key != "" {
			return rt, errInvalidBucketName
		}
		switch method {
		case "GET":
			if unsupported() {
				return rt, errNotImplemented
			}
			rt.op = opListBuckets
			return rt, nil
		case "HEAD":
			rt.op = opListBuckets
			return rt, nil
		}
		return rt, errMethodNotAllowed
	case rt.key == "":
		switch method {
		case "GET", "HEAD":
			if has("location") && method == "GET" {
				rt.op = opGetBucketLocation
				return rt, nil
			}
			if unsupported() || has("location") {
				return rt, errNotImplemented
			}
			if method == "HEAD" {
				rt.op = opHeadBucket
			} else if q.Get("list-type") == "2" {
				rt.op = opListObjectsV2
			} else if has("list-type") {
				return rt, errInvalidArgument.with("Invalid list-type; only 2 is supported.")
			} else {
				rt.op = opListObjects
			}
			return rt, nil
		case "POST":
			if has("delete") {
				rt.op = opDeleteObjects
				return rt, nil
			}
			return rt, errNotImplemented
		case "PUT", "DELETE":
			// CreateBucket, DeleteBucket and bucket configuration.
			return rt, errNotImplemented
		}
		return rt, errMethodNotAllowed
	}

	switch method {
	case "GET", "HEAD":
		if unsupported() || has("uploadId") {
			return rt, errNotImplemented
		}
		if v, ok := q["versionId"]; ok && (len(v) != 1 || v[0] != "null") {
			return rt, errNotImplemented.with("Object versions are not supported.")
		}
		rt.op = opGetObject
		if method == "HEAD" {
			rt.op = opHeadObject
		}
		return rt, nil
	case "PUT":
		switch {
		case has("uploadId") || has("partNumber"):
			if !has("uploadId") || !has("partNumber") {
				return rt, errInvalidArgument.with("UploadPart needs both partNumber and uploadId.")
			}
			rt.op = opUploadPart
		case unsupported():
			return rt, errNotImplemented
		default:
			rt.op = opPutObject
		}
		return rt, nil
	case "POST":
		switch {
		case has("uploads"):
			rt.op = opCreateMultipart
		case has("uploadId"):
			rt.op = opCompleteMultipart
		default:
			return rt, errNotImplemented
		}
		return rt, nil
	case "DELETE":
		switch {
		case has("uploadId"):
			rt.op = opAbortMultipart
		case unsupported():
			return rt, errNotImplemented
		default:
			rt.op = opDeleteObject
		}
		return rt, nil
	}
	return rt, errMethodNotAllowed
}

// bucketFromHost returns the bucket a virtual-hosted-style Host names.
func bucketFromHost(host string, domains []string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	try := func(d string) (string, bool) {
		if len(host) > len(d)+1 && strings.HasSuffix(host, d) && host[len(host)-len(d)-1] == '.' {
			return host[:len(host)-len(d)-1], true
		}
		return "", false
	}
	for _, d := range domains {
		if b, ok := try(d); ok {
			return b, true
		}
	}
	return try("localhost")
}

// validBucketName applies S3's general-purpose bucket naming rules.
func validBucketName(b string) bool { return s3name.ValidBucket(b) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
