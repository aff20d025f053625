// Package gateway owns the S3-compatible HTTP API of a Shoal node.
//
// It turns S3 requests (path-style and virtual-hosted-style addressing) into
// calls on the small Backend interface the node implements, and owns
// everything that is HTTP or S3 protocol: request routing to operations, AWS
// Signature Version 4 verification (header and presigned query), aws-chunked
// upload decoding with chunk signatures and trailing checksums, payload
// digests (x-amz-content-sha256, Content-MD5, x-amz-checksum-*), Range and
// conditional request evaluation, S3 XML bodies, the one function that
// maps errors to S3 error codes and HTTP statuses, and what keeps web pages
// away from an anonymous gateway (Host allow-list, refusal of cross-site
// requests that change data).
//
// It imports nothing else of Shoal: caching, chunking and the origin live
// behind Backend. A *Gateway is an http.Handler; the caller owns the
// http.Server and its listener.
package gateway
