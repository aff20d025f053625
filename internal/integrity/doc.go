// Package integrity checks a whole object against the integrity data its
// origin reports: S3's full-object checksums (CRC64NVME, CRC32C, CRC32,
// SHA1, SHA256) and an ETag that is a plain MD5. A Checker hashes the
// object's bytes as its chunks stream past, in order, without holding them;
// the CRC functions also combine per-chunk CRCs into the CRC of the whole
// (crc(A||B) from crc(A), crc(B) and len(B)), so a node that remembers each
// chunk's CRC can check an object it holds without reading it again.
//
// Values use S3's encodings: checksums are the base64 of the big-endian
// digest (x-amz-checksum-*), an MD5 ETag is 32 hex digits (quotes allowed).
// COMPOSITE checksums (a checksum of the parts' checksums, value "…-N") and
// multipart ETags ("…-N") depend on the part boundaries and are refused
// with ErrUnsupported.
package integrity
