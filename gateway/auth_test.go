package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestAuthRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	e.be.put(testBucket, "k", []byte("secret data"), nil)
	get := func(c *s3.Client) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name   string
		client *s3.Client
		code   string
		status int
	}{
		{"wrong secret", e.client(t, func(o *s3.Options) { o.Credentials = staticCreds(testAK, "wrong") }), "SignatureDoesNotMatch", 403},
		{"unknown key", e.client(t, func(o *s3.Options) { o.Credentials = staticCreds("NOPE", testSK) }), "InvalidAccessKeyId", 403},
		{"anonymous", e.client(t, func(o *s3.Options) { o.Credentials = aws.AnonymousCredentials{} }), "AccessDenied", 403},
		{"wrong region", e.client(t, func(o *s3.Options) { o.Region = "eu-west-1" }), "AuthorizationHeaderMalformed", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, status := apiCode(t, get(tc.client))
			if code != tc.code || status != tc.status {
				t.Errorf("%s %d, want %s %d", code, status, tc.code, tc.status)
			}
			// A refused write must not reach the backend.
			_, err := tc.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: strings.NewReader("evil")})
			if err == nil {
				t.Error("put accepted")
			}
			if d, _ := e.be.object(testBucket, "k"); string(d) != "secret data" {
				t.Errorf("object overwritten: %q", d)
			}
		})
	}
	t.Run("correct credentials", func(t *testing.T) {
		if err := get(e.client(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("clock skew", func(t *testing.T) {
		skewed := newEnv(t, true, false, WithClock(func() time.Time { return time.Now().Add(20 * time.Minute) }))
		skewed.be.put(testBucket, "k", []byte("x"), nil)
		_, err := skewed.client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
		if code, status := apiCode(t, err); code != "RequestTimeTooSkewed" || status != 403 {
			t.Errorf("%s %d", code, status)
		}
		near := newEnv(t, true, false, WithClock(func() time.Time { return time.Now().Add(10 * time.Minute) }))
		near.be.put(testBucket, "k", []byte("x"), nil)
		out, err := near.client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
		if err != nil {
			t.Fatalf("10 minutes of skew must be accepted: %v", err)
		}
		out.Body.Close()
	})
	t.Run("sigv2", func(t *testing.T) {
		status, _, body := e.do(t, "GET", "/"+testBucket+"/k", map[string]string{"Authorization": "AWS " + testAK + ":c2lnbmF0dXJl", "Date": time.Now().UTC().Format(http.TimeFormat)}, nil)
		if status != 403 || errCode(body) != "AccessDenied" {
			t.Errorf("%d %s", status, body)
		}
		status, _, body = e.do(t, "GET", "/"+testBucket+"/k?AWSAccessKeyId="+testAK+"&Signature=abc&Expires=9999999999", nil, nil)
		if status != 403 || errCode(body) != "AccessDenied" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("malformed header", func(t *testing.T) {
		for _, h := range []string{
			"AWS4-HMAC-SHA256 Credential=x",
			"AWS4-HMAC-SHA256 Credential=" + testAK + "/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=zz",
			"AWS4-HMAC-SHA512 Credential=a/b/c/d/e",
		} {
			status, _, body := e.do(t, "GET", "/"+testBucket+"/k", map[string]string{"Authorization": h, "X-Amz-Date": time.Now().UTC().Format(amzDateFormat)}, nil)
			if status != 400 || errCode(body) != "AuthorizationHeaderMalformed" {
				t.Errorf("%q: %d %s", h, status, body)
			}
		}
	})
}

func TestPresigned(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	e.be.put(testBucket, "dir/presigned file.txt", []byte("presigned body"), nil)
	pc := s3.NewPresignClient(e.client(t))
	req, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/presigned file.txt")}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(e *testEnv, u string) (int, string) {
		resp, err := e.srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := fetch(e, req.URL); status != 200 || body != "presigned body" {
		t.Fatalf("presigned GET: %d %q", status, body)
	}
	if status, body := fetch(e, strings.Replace(req.URL, "presigned%20file", "presigned%20filf", 1)); status != 403 || errCode(body) != "SignatureDoesNotMatch" {
		t.Errorf("tampered path: %d %s", status, body)
	}

	bad := s3.NewPresignClient(e.client(t, func(o *s3.Options) { o.Credentials = staticCreds(testAK, "wrong") }))
	breq, err := bad.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/presigned file.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := fetch(e, breq.URL); status != 403 || errCode(body) != "SignatureDoesNotMatch" {
		t.Errorf("wrong secret: %d %s", status, body)
	}

	later := newEnv(t, true, false, WithClock(func() time.Time { return time.Now().Add(11 * time.Minute) }))
	later.be = e.be
	gw, _ := New(Config{Credentials: []Credential{{testAK, testSK}}}, e.be, WithClock(func() time.Time { return time.Now().Add(11 * time.Minute) }))
	later.srv.Config.Handler = gw
	// The signed host differs between servers, so re-sign for this one.
	lreq, err := s3.NewPresignClient(later.client(t)).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("dir/presigned file.txt")}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if status, body := fetch(later, lreq.URL); status != 403 || errCode(body) != "AccessDenied" || !strings.Contains(body, "Request has expired") {
		t.Errorf("expired: %d %s", status, body)
	}

	preq, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("uploaded")})
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(preq.Method, preq.URL, strings.NewReader("via presigned put"))
	for k, vs := range preq.SignedHeader {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d, _ := e.be.object(testBucket, "uploaded"); resp.StatusCode != 200 || string(d) != "via presigned put" {
		t.Errorf("presigned PUT: %d, stored %q", resp.StatusCode, d)
	}
}

// awsChunked frames data as aws-chunked with the given chunk size. sign
// returns the chunk-signature extension for a chunk ("" for none).
func awsChunked(data []byte, chunk int, sign func([]byte) string, trailer string) []byte {
	var b bytes.Buffer
	write := func(c []byte) {
		fmt.Fprintf(&b, "%x", len(c))
		if sign != nil {
			b.WriteString(";chunk-signature=" + sign(c))
		}
		b.WriteString("\r\n")
		b.Write(c)
		if len(c) > 0 {
			b.WriteString("\r\n")
		}
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		write(data[:n])
		data = data[n:]
	}
	write(nil)
	b.WriteString(trailer)
	b.WriteString("\r\n")
	return b.Bytes()
}

func TestSignedStreamingUpload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	data := randBytes(t, 200_000)

	send := func(t *testing.T, key string, tamper bool) (int, string) {
		now := time.Now().UTC()
		req, _ := http.NewRequest("PUT", e.srv.URL+"/"+testBucket+"/"+key, nil)
		req.Header.Set("X-Amz-Content-Sha256", streamingSignedPayload)
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
		req.Header.Set("Content-Encoding", "aws-chunked")
		// Content-Length of the framed body: compute with a dummy signature.
		dummy := awsChunked(data, 64<<10, func([]byte) string { return strings.Repeat("0", 64) }, "")
		req.ContentLength = int64(len(dummy))
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, streamingSignedPayload, "s3", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
		sh, err := parseSigV4Header(req.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := hex.DecodeString(sh.signature)
		ss := v4.NewStreamSigner(creds, "s3", "us-east-1", seed)
		body := awsChunked(data, 64<<10, func(c []byte) string {
			sig, err := ss.GetSignature(ctx, nil, c, now)
			if err != nil {
				t.Fatal(err)
			}
			return hex.EncodeToString(sig)
		}, "")
		if tamper {
			body[200] ^= 1 // flip a payload bit inside the first chunk
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := send(t, "signed", false); status != 200 {
		t.Fatalf("signed streaming upload: %d %s", status, body)
	}
	if d, _ := e.be.object(testBucket, "signed"); !bytes.Equal(d, data) {
		t.Fatalf("stored %d bytes", len(d))
	}
	if status, body := send(t, "tampered", true); status != 403 || errCode(body) != "SignatureDoesNotMatch" {
		t.Errorf("tampered chunk: %d %s", status, body)
	}
	if _, ok := e.be.object(testBucket, "tampered"); ok {
		t.Error("tampered upload was committed")
	}
}

func TestSignedTrailerUpload(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	data := randBytes(t, 100_000)
	crc := crc32.ChecksumIEEE(data)
	good := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})

	send := func(t *testing.T, key, checksum string) (int, string) {
		now := time.Now().UTC()
		req, _ := http.NewRequest("PUT", e.srv.URL+"/"+testBucket+"/"+key, nil)
		req.Header.Set("X-Amz-Content-Sha256", streamingSignedTrailer)
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		req.Header.Set("Content-Encoding", "aws-chunked")
		zero := strings.Repeat("0", 64)
		trailerFor := func(sig string) string {
			return "x-amz-checksum-crc32:" + checksum + "\r\nx-amz-trailer-signature:" + sig + "\r\n"
		}
		req.ContentLength = int64(len(awsChunked(data, 32<<10, func([]byte) string { return zero }, trailerFor(zero))))
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, streamingSignedTrailer, "s3", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
		sh, _ := parseSigV4Header(req.Header.Get("Authorization"))
		seed, _ := hex.DecodeString(sh.signature)
		ss := v4.NewStreamSigner(creds, "s3", "us-east-1", seed)
		var prev []byte
		body := awsChunked(data, 32<<10, func(c []byte) string {
			prev, _ = ss.GetSignature(ctx, nil, c, now)
			return hex.EncodeToString(prev)
		}, "")
		// Trailer signature (AWS "Signature calculations for trailing headers").
		date := now.Format(scopeDateFmt)
		scope := date + "/us-east-1/s3/aws4_request"
		th := sha256.Sum256([]byte("x-amz-checksum-crc32:" + checksum + "\n"))
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + now.Format(amzDateFormat) + "\n" + scope + "\n" + hex.EncodeToString(prev) + "\n" + hex.EncodeToString(th[:])
		tsig := hex.EncodeToString(hmacSHA256(signingKey(testSK, date, "us-east-1", "s3"), []byte(sts)))
		body = append(body[:len(body)-2], []byte(trailerFor(tsig)+"\r\n")...)
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := send(t, "good", good); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if d, _ := e.be.object(testBucket, "good"); !bytes.Equal(d, data) {
		t.Fatalf("stored %d bytes", len(d))
	}
	if status, body := send(t, "bad", "AAAAAA=="); status != 400 || errCode(body) != "BadDigest" {
		t.Errorf("bad trailer checksum: %d %s", status, body)
	}
	if _, ok := e.be.object(testBucket, "bad"); ok {
		t.Error("upload with a bad checksum was committed")
	}
}

// hashInQuery presigns with the SDK's own SigV4 presigner, putting the
// payload's SHA-256 into the signed query (X-Amz-Content-Sha256), so the
// URL is good for exactly one body.
type hashInQuery struct {
	inner s3.HTTPPresignerV4
	sum   string
}

func (p hashInQuery) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, _ string, service, region string,
	at time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	q := r.URL.Query()
	q.Set("X-Amz-Content-Sha256", p.sum)
	r.URL.RawQuery = q.Encode()
	return p.inner.PresignHTTP(ctx, creds, r, p.sum, service, region, at, optFns...)
}

// The signature and the body check must read the payload hash from the
// same place: a presigned URL that signs a body's hash accepts that body
// only, whatever header the client adds.
func TestPresignedPayloadHashHasOneSource(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	good := []byte("the body the URL was signed for")
	sum := sha256.Sum256(good)
	hexSum := hex.EncodeToString(sum[:])
	pc := s3.NewPresignClient(e.client(t))
	preq, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("signed-body")},
		func(o *s3.PresignOptions) { o.Presigner = hashInQuery{inner: o.Presigner, sum: hexSum} })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(preq.URL, "X-Amz-Content-Sha256="+hexSum) {
		t.Fatalf("presigned URL does not carry the hash: %s", preq.URL)
	}
	put := func(body []byte, hdr map[string]string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPut, preq.URL, bytes.NewReader(body))
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		resp, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	evil := []byte("a body nobody signed")
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"other body", nil, 400, "XAmzContentSHA256Mismatch"},
		{"other body, header says unsigned", map[string]string{"X-Amz-Content-Sha256": unsignedPayload}, 400, "InvalidArgument"},
		{"other body, header carries its own hash", map[string]string{"X-Amz-Content-Sha256": hexSHA256(evil)}, 400, "InvalidArgument"},
		{"other body, header says streaming", map[string]string{"X-Amz-Content-Sha256": streamingUnsignedTrailer, "X-Amz-Decoded-Content-Length": "20"}, 400, "InvalidArgument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := put(evil, tc.hdr)
			if status != tc.status || errCode(body) != tc.code {
				t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
			}
			if d, ok := e.be.object(testBucket, "signed-body"); ok {
				t.Fatalf("an unsigned body was stored: %q", d)
			}
		})
	}
	if status, body := put(good, map[string]string{"X-Amz-Content-Sha256": hexSum}); status != 200 {
		t.Fatalf("signed body with the same hash in the header: %d %s", status, body)
	}
	if status, body := put(good, nil); status != 200 {
		t.Fatalf("signed body: %d %s", status, body)
	}
	if d, _ := e.be.object(testBucket, "signed-body"); !bytes.Equal(d, good) {
		t.Fatalf("stored %q", d)
	}
}
