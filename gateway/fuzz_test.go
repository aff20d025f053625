package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-5", "bytes=10-", "bytes=5-2", "bytes=0-1,2-3", "items=1-2", "bytes=", "bytes=-", "bytes= 1 - 2 ", "bytes=99999999999999999999-1", ""} {
		f.Add(s, int64(100))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		r, ok := parseRange(h)
		if !ok {
			return
		}
		if strings.Contains(h, ",") {
			t.Fatalf("multi-range %q accepted", h)
		}
		if size < 0 {
			size = -size
			if size < 0 {
				return
			}
		}
		off, n, sat := r.resolve(size)
		if !sat {
			return
		}
		if off < 0 || n <= 0 || off+n > size || off+n < off {
			t.Fatalf("%q on size %d: off %d len %d", h, size, off, n)
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "127.0.0.1:9000", "/bucket/key?list-type=2"},
		{"GET", "bucket.s3.local:9000", "/a/b/c"},
		{"PUT", "localhost", "/bucket/a%2F..%2Fb?partNumber=1&uploadId=x"},
		{"POST", "b.localhost", "/k?uploads"},
		{"DELETE", "x", "/bucket/%00"},
		{"GET", "x", "/bucket?acl"},
		{"HEAD", "", "/"},
		{"GET", "Bucket.S3.LOCAL.", "/%FF"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, host, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return
		}
		rt, err := parseRoute(method, host, u.Path, q, []string{"s3.local"})
		if err != nil {
			if mapError(err).Status < 400 {
				t.Fatalf("error %v maps to status < 400", err)
			}
			return
		}
		if rt.op == "" {
			t.Fatal("no operation")
		}
		if rt.bucket != "" && !validBucketName(rt.bucket) {
			t.Fatalf("invalid bucket %q accepted", rt.bucket)
		}
		if len(rt.key) > maxKeyBytes || !utf8.ValidString(rt.key) || strings.IndexByte(rt.key, 0) >= 0 {
			t.Fatalf("invalid key %q accepted", rt.key)
		}
		if rt.key != "" && rt.bucket == "" {
			t.Fatal("key without bucket")
		}
	})
}

func FuzzChunkedReader(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), false, false, []byte("hello"))
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), false, true, []byte("x"))
	f.Add([]byte("5;chunk-signature="+strings.Repeat("a", 64)+"\r\nhello\r\n0;chunk-signature="+strings.Repeat("b", 64)+"\r\n\r\n"), true, false, []byte("payload"))
	f.Add([]byte("fffffffffffffff\r\n"), false, false, []byte{})
	f.Add([]byte("0\r\n"+strings.Repeat("a:b\r\n", 20)+"\r\n"), false, true, []byte{})
	f.Fuzz(func(t *testing.T, body []byte, signed, trailer bool, payload []byte) {
		// Arbitrary input: never panics, never yields more than it got.
		var signer *chunkSigner
		if signed {
			signer = &chunkSigner{key: []byte("k"), amzDate: "20250101T000000Z", scope: "20250101/us-east-1/s3/aws4_request", prevSig: strings.Repeat("0", 64)}
		}
		out, err := io.ReadAll(io.LimitReader(newChunkedReader(bytes.NewReader(body), signed, trailer, signer), int64(len(body))+1))
		if len(out) > len(body) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(body))
		}
		if err == nil && signed && len(body) > 0 {
			// Only a correctly signed body can decode; random bytes cannot.
			t.Logf("signed body decoded without error: %q", body)
		}
		// Round trip: framing any payload decodes to the payload.
		for _, chunk := range []int{1, 7, 64 << 10} {
			framed := awsChunked(payload, chunk, nil, "")
			got, err := io.ReadAll(newChunkedReader(bytes.NewReader(framed), false, false, nil))
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("round trip chunk %d: %v, %d bytes of %d", chunk, err, len(got), len(payload))
			}
		}
	})
}

func FuzzParseSigV4Header(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
	f.Add("AWS4-HMAC-SHA256 Credential=AK/2025/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=00")
	f.Add("AWS4-HMAC-SHA256")
	f.Add("AWS AK:sig")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=, Signature=")
	f.Fuzz(func(t *testing.T, h string) {
		sh, err := parseSigV4Header(h)
		if err != nil {
			if mapError(err).Code != "AuthorizationHeaderMalformed" {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !isHexSig(sh.signature) || len(sh.signedHeaders) == 0 || sh.accessKey == "" || len(sh.date) != 8 {
			t.Fatalf("accepted incomplete header: %+v", sh)
		}
		for _, s := range sh.signedHeaders {
			if s == "" || s != strings.ToLower(s) {
				t.Fatalf("bad signed header %q", s)
			}
		}
		again := sigV4Algorithm + " Credential=" + sh.accessKey + "/" + sh.date + "/" + sh.region + "/" + sh.service + "/aws4_request, SignedHeaders=" + strings.Join(sh.signedHeaders, ";") + ", Signature=" + sh.signature
		sh2, err := parseSigV4Header(again)
		if err != nil || sh2.accessKey != sh.accessKey || sh2.signature != sh.signature || strings.Join(sh2.signedHeaders, ";") != strings.Join(sh.signedHeaders, ";") {
			t.Fatalf("re-parse of %q: %+v %v", again, sh2, err)
		}
	})
}

// FuzzServeHTTP drives whole requests through the handler: whatever the
// input, it answers with a status and never panics.
func FuzzServeHTTP(f *testing.F) {
	f.Add("GET", "/test-bucket/k", "bytes=0-1", "", []byte(nil))
	f.Add("PUT", "/test-bucket/k?partNumber=1&uploadId=upload-1", "", streamingUnsignedTrailer, []byte("3\r\nabc\r\n0\r\n\r\n"))
	f.Add("POST", "/test-bucket?delete", "", "", []byte("<Delete><Object><Key>k</Key></Object></Delete>"))
	f.Add("POST", "/test-bucket/k?uploadId=upload-1", "", "", []byte("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"))
	f.Add("GET", "/test-bucket?list-type=2&max-keys=1&delimiter=/&encoding-type=url", "", "", []byte(nil))
	be := newFakeBackend(testBucket)
	be.put(testBucket, "k", []byte("hello"), nil)
	// httptest.NewRequest addresses example.com.
	gw, err := New(Config{AllowAnonymous: true, AllowedHosts: []string{"example.com"}}, be)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, rng, sha string, body []byte) {
		if !validMethod(method) || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") || strings.ContainsAny(rng+sha, "\r\n") {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		req := httptest.NewRequest("GET", "/", bytes.NewReader(body))
		req.Method, req.URL, req.RequestURI = method, u, target
		req.Header.Set("Range", rng)
		req.Header.Set("X-Amz-Content-Sha256", sha)
		req.Header.Set("X-Amz-Decoded-Content-Length", "3")
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("server error %d for %s %s: %s", rec.Code, method, target, rec.Body.String())
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
