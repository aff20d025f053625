package gateway

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// crc64NVMEPoly is the bit-reversed CRC-64/NVME polynomial
// (0xad93d23594c935a9), the form hash/crc64 expects; S3 calls it CRC64NVME.
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)
)

// checksumAlgos maps S3 checksum header names to hash constructors.
var checksumAlgos = map[string]func() hash.Hash{
	"x-amz-checksum-crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"x-amz-checksum-crc32c":    func() hash.Hash { return crc32.New(crc32cTable) },
	"x-amz-checksum-crc64nvme": func() hash.Hash { return crc64.New(crc64NVMETable) },
	"x-amz-checksum-sha1":      sha1.New,
	"x-amz-checksum-sha256":    sha256.New,
}

// verifyingReader passes an upload body through while counting it and
// hashing it for every digest the client declared. Its final Read returns
// io.EOF only if the size and every digest check out; otherwise it returns
// the S3 error, so a Backend that commits only on io.EOF never commits a
// corrupt upload.
type verifyingReader struct {
	r    io.Reader
	n    int64
	want int64 // expected decoded length, -1 if unknown
	max  int64

	sha256, md5, ck     hash.Hash
	wantSHA256, wantMD5 []byte
	ckName              string
	wantCk              func() (string, bool) // expected base64 checksum, known at EOF
	err                 error                 // sticky terminal result
	chunked             *chunkedReader
	declaredTrailer     string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if n > 0 {
		for _, h := range []hash.Hash{v.sha256, v.md5, v.ck} {
			if h != nil {
				h.Write(p[:n])
			}
		}
		v.n += int64(n)
		if (v.want >= 0 && v.n > v.want) || v.n > v.max {
			v.err = errEntityTooLarge
			if v.want >= 0 && v.n > v.want {
				v.err = errIncompleteBody.with("The request body is longer than its declared length.")
			}
			return 0, v.err
		}
	}
	switch {
	case err == io.EOF:
		v.err = v.finish()
		return n, v.err
	case errors.Is(err, io.ErrUnexpectedEOF):
		v.err = errIncompleteBody
		return n, v.err
	case err != nil:
		v.err = err
		return n, err
	}
	return n, nil
}

// Err returns the terminal verification error, if the body failed.
func (v *verifyingReader) Err() error {
	if v.err == io.EOF {
		return nil
	}
	return v.err
}

func (v *verifyingReader) finish() error {
	if v.want >= 0 && v.n != v.want {
		return errIncompleteBody
	}
	if v.sha256 != nil && !bytes.Equal(v.sha256.Sum(nil), v.wantSHA256) {
		return errContentSHA256Mismatch
	}
	if v.md5 != nil && !bytes.Equal(v.md5.Sum(nil), v.wantMD5) {
		return errBadDigest
	}
	if v.chunked != nil && v.declaredTrailer != "" {
		if _, ok := v.chunked.Trailers()[v.declaredTrailer]; !ok {
			return errInvalidRequest.with("The declared trailing checksum " + v.declaredTrailer + " was not sent.")
		}
	}
	if v.ck != nil {
		want, ok := v.wantCk()
		if ok {
			got := base64.StdEncoding.EncodeToString(v.ck.Sum(nil))
			if got != want {
				return errBadDigest.with("The " + v.ckName + " you specified did not match the calculated checksum.")
			}
		}
	}
	return io.EOF
}

// hasBodyDigest reports whether a request declares a digest of its body
// (Content-MD5, an x-amz-checksum-* header, or a trailing checksum) that
// uploadBody will verify; mode is the request's x-amz-content-sha256.
func hasBodyDigest(r *http.Request, mode string) bool {
	if r.Header.Get("Content-Md5") != "" {
		return true
	}
	for name := range checksumAlgos {
		if r.Header.Get(name) != "" {
			return true
		}
	}
	if mode != streamingSignedTrailer && mode != streamingUnsignedTrailer {
		return false
	}
	_, ok := checksumAlgos[strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))]
	return ok
}

// uploadBody prepares the request body of PutObject/UploadPart/POST XML
// uploads: it decodes aws-chunked framing, and verifies
// x-amz-content-sha256, Content-MD5 and x-amz-checksum-* while streaming.
// size is the decoded payload length (-1 if unknown).
func (g *Gateway) uploadBody(r *http.Request, auth authResult) (*verifyingReader, int64, error) {
	v := &verifyingReader{r: r.Body, want: -1, max: g.cfg.MaxObjectSize}
	size := r.ContentLength
	mode := auth.payload // the value the signature covered, never re-read
	switch mode {
	case "", unsignedPayload:
	case streamingSignedPayload, streamingSignedTrailer, streamingUnsignedTrailer:
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		if dl == "" {
			return nil, 0, errMissingContentLength.with("The x-amz-decoded-content-length header is required for aws-chunked uploads.")
		}
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return nil, 0, errInvalidArgument.with("x-amz-decoded-content-length is not a valid length.")
		}
		size = n
		signed := mode != streamingUnsignedTrailer
		trailer := mode != streamingSignedPayload
		var signer *chunkSigner
		if signed && !auth.anonymous {
			signer = &chunkSigner{key: auth.signingKey, amzDate: auth.amzDate, scope: auth.scope, prevSig: auth.seedSig}
		}
		cr := newChunkedReader(r.Body, signed, trailer, signer)
		v.r, v.chunked = cr, cr
		if trailer {
			t := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
			if t != "" {
				if _, ok := checksumAlgos[t]; !ok {
					return nil, 0, errInvalidRequest.with("Unsupported trailing checksum " + strconv.Quote(truncate(t, 64)) + ".")
				}
				v.declaredTrailer = t
				v.ckName, v.ck = t, checksumAlgos[t]()
				v.wantCk = func() (string, bool) {
					val, ok := cr.Trailers()[t]
					return val, ok
				}
			}
		}
	case "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER":
		return nil, 0, errNotImplemented.with("SigV4a streaming uploads are not supported.")
	default:
		want, err := hex.DecodeString(mode)
		if err != nil || len(want) != sha256.Size {
			return nil, 0, errInvalidArgument.with("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a hex SHA-256.")
		}
		v.sha256, v.wantSHA256 = sha256.New(), want
	}
	if size > g.cfg.MaxObjectSize {
		return nil, 0, errEntityTooLarge
	}
	v.want = size
	if md := r.Header.Get("Content-Md5"); md != "" {
		want, err := base64.StdEncoding.DecodeString(md)
		if err != nil || len(want) != md5.Size {
			return nil, 0, errInvalidDigest
		}
		v.md5, v.wantMD5 = md5.New(), want
	}
	if v.ck == nil {
		for name, mk := range checksumAlgos {
			val := r.Header.Get(name)
			if val == "" {
				continue
			}
			h := mk()
			if raw, err := base64.StdEncoding.DecodeString(val); err != nil || len(raw) != h.Size() {
				return nil, 0, errInvalidDigest.with("The " + name + " header is not a valid base64 checksum.")
			}
			v.ckName, v.ck = name, h
			v.wantCk = func() (string, bool) { return val, true }
			break
		}
	}
	return v, size, nil
}
