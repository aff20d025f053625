package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestObjectRoundTripPathAndVirtualHosted(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	clients := map[string]*s3.Client{"path": e.client(t), "vhost": e.vhostClient(t)}
	keys := []string{"plain.txt", "dir/sub/file.bin", "with space & plus+.txt", "unicode/żółw-🐢.txt", "a/../b", "../../etc/passwd", "%41literal%", "trailing/"}
	for style, c := range clients {
		for _, key := range keys {
			t.Run(style+"/"+key, func(t *testing.T) {
				data := randBytes(t, 1000)
				put, err := c.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader(data),
					ContentType: aws.String("text/x-test"),
					Metadata:    map[string]string{"owner": "shoal", "color": "blue"},
				})
				if err != nil {
					t.Fatalf("put: %v", err)
				}
				stored, ok := e.be.object(testBucket, key)
				if !ok || !bytes.Equal(stored, data) {
					t.Fatalf("backend holds %d bytes under %q (found=%v), want the uploaded 1000", len(stored), key, ok)
				}
				if aws.ToString(put.ETag) != md5ETag(data) {
					t.Errorf("put ETag %s, want %s", aws.ToString(put.ETag), md5ETag(data))
				}
				got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				body, err := io.ReadAll(got.Body)
				got.Body.Close()
				if err != nil || !bytes.Equal(body, data) {
					t.Fatalf("get body mismatch (err %v)", err)
				}
				if aws.ToString(got.ETag) != md5ETag(data) || aws.ToInt64(got.ContentLength) != 1000 ||
					aws.ToString(got.ContentType) != "text/x-test" || got.Metadata["owner"] != "shoal" || got.Metadata["color"] != "blue" {
					t.Errorf("get headers: etag %s len %d type %s meta %v", aws.ToString(got.ETag), aws.ToInt64(got.ContentLength), aws.ToString(got.ContentType), got.Metadata)
				}
				if got.LastModified == nil || time.Since(*got.LastModified) > time.Minute {
					t.Errorf("Last-Modified %v", got.LastModified)
				}
				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("head: %v", err)
				}
				if aws.ToInt64(head.ContentLength) != 1000 || aws.ToString(head.ETag) != md5ETag(data) {
					t.Errorf("head: len %d etag %s", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag))
				}
				if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)}); err != nil {
					t.Fatalf("delete: %v", err)
				}
				_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
				if code, status := apiCode(t, err); code != "NoSuchKey" || status != 404 {
					t.Errorf("get after delete: %s %d", code, status)
				}
				_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
				if _, status := apiCode(t, err); status != 404 {
					t.Errorf("head after delete: status %d", status)
				}
			})
		}
	}
}

func TestBucketOperations(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	for name, c := range map[string]*s3.Client{"path": e.client(t), "vhost": e.vhostClient(t)} {
		t.Run(name, func(t *testing.T) {
			lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, b := range lb.Buckets {
				names = append(names, aws.ToString(b.Name))
			}
			if !slices.Equal(names, []string{"other-bucket", testBucket}) {
				t.Errorf("buckets %v", names)
			}
			loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(testBucket)})
			if err != nil {
				t.Fatal(err)
			}
			if loc.LocationConstraint != "" {
				t.Errorf("location %q, want empty for us-east-1", loc.LocationConstraint)
			}
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(testBucket)}); err != nil {
				t.Errorf("head bucket: %v", err)
			}
			_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("no-such-bucket")})
			if _, status := apiCode(t, err); status != 404 {
				t.Errorf("head missing bucket: status %d", status)
			}
			_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("no-such-bucket")})
			if code, status := apiCode(t, err); code != "NoSuchBucket" || status != 404 {
				t.Errorf("list missing bucket: %s %d", code, status)
			}
			_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("new-bucket")})
			if code, status := apiCode(t, err); code != "NotImplemented" || status != 501 {
				t.Errorf("create bucket: %s %d", code, status)
			}
			_, err = c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
			if code, status := apiCode(t, err); code != "NotImplemented" || status != 501 {
				t.Errorf("get acl: %s %d", code, status)
			}
		})
	}
}

func TestListObjects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	c := e.client(t)
	keys := []string{"a/1", "a/2", "a/b/3", "b/1", "c", "d e+f", "z/ü"}
	for _, k := range keys {
		e.be.put(testBucket, k, []byte(k), nil)
	}

	t.Run("paginate v2", func(t *testing.T) {
		var got []string
		pages := 0
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(out.Contents) > 2 || aws.ToInt32(out.KeyCount) != int32(len(out.Contents)) {
				t.Errorf("page of %d, KeyCount %d", len(out.Contents), aws.ToInt32(out.KeyCount))
			}
			for _, o := range out.Contents {
				got = append(got, aws.ToString(o.Key))
				if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) || aws.ToString(o.ETag) == "" || o.LastModified == nil {
					t.Errorf("entry %+v", o)
				}
			}
		}
		if !slices.Equal(got, keys) || pages != 4 {
			t.Errorf("got %v in %d pages", got, pages)
		}
	})
	t.Run("delimiter and prefix", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatal(err)
		}
		var cps, ks []string
		for _, p := range out.CommonPrefixes {
			cps = append(cps, aws.ToString(p.Prefix))
		}
		for _, o := range out.Contents {
			ks = append(ks, aws.ToString(o.Key))
		}
		if !slices.Equal(cps, []string{"a/", "b/", "z/"}) || !slices.Equal(ks, []string{"c", "d e+f"}) {
			t.Errorf("prefixes %v keys %v", cps, ks)
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String("a/"), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 2 || len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "a/b/" || aws.ToString(out.Prefix) != "a/" {
			t.Errorf("a/ listing: %d keys, prefixes %v", len(out.Contents), out.CommonPrefixes)
		}
	})
	t.Run("start-after", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), StartAfter: aws.String("c")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 2 || aws.ToString(out.Contents[0].Key) != "d e+f" || aws.ToString(out.StartAfter) != "c" {
			t.Errorf("start-after c: %v", out.Contents)
		}
	})
	t.Run("encoding-type url", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String("d"), EncodingType: types.EncodingTypeUrl})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 1 {
			t.Fatalf("%d entries", len(out.Contents))
		}
		raw := aws.ToString(out.Contents[0].Key)
		dec, err := url.QueryUnescape(strings.ReplaceAll(raw, "+", "%2B"))
		if raw == "d e+f" || err != nil || dec != "d e+f" {
			t.Errorf("encoded key %q decodes to %q (%v)", raw, dec, err)
		}
	})
	t.Run("max-keys bounds", func(t *testing.T) {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(0)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 0 || aws.ToInt32(out.MaxKeys) != 0 {
			t.Errorf("max-keys 0: %d entries, MaxKeys %d", len(out.Contents), aws.ToInt32(out.MaxKeys))
		}
		out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(5000)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.MaxKeys) != 1000 || len(out.Contents) != len(keys) {
			t.Errorf("max-keys 5000: MaxKeys %d, %d entries", aws.ToInt32(out.MaxKeys), len(out.Contents))
		}
		_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(-1)})
		if code, status := apiCode(t, err); code != "InvalidArgument" || status != 400 {
			t.Errorf("max-keys -1: %s %d", code, status)
		}
	})
	t.Run("v1 markers", func(t *testing.T) {
		var got []string
		marker := ""
		for range 10 {
			out, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String(testBucket), MaxKeys: aws.Int32(3), Marker: aws.String(marker)})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				got = append(got, aws.ToString(o.Key))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			marker = aws.ToString(out.NextMarker)
		}
		if !slices.Equal(got, keys) {
			t.Errorf("v1 listing %v", got)
		}
	})
}

func TestRangeRequests(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	c := e.client(t)
	data := randBytes(t, 1000)
	e.be.put(testBucket, "obj", data, nil)
	e.be.put(testBucket, "empty", nil, nil)

	for _, tc := range []struct {
		rng          string
		wantBody     []byte
		contentRange string
	}{
		{"bytes=0-99", data[:100], "bytes 0-99/1000"},
		{"bytes=990-", data[990:], "bytes 990-999/1000"},
		{"bytes=-10", data[990:], "bytes 990-999/1000"},
		{"bytes=-5000", data, "bytes 0-999/1000"},
		{"bytes=500-5000", data[500:], "bytes 500-999/1000"},
		{"bytes=999-999", data[999:], "bytes 999-999/1000"},
		{"bytes=5-2", data, ""},                   // invalid: ignored
		{"bytes=abc", data, ""},                   // invalid: ignored
		{"items=0-1", data, ""},                   // other unit: ignored
		{"bytes=0-1,5-6", data, ""},               // multiple ranges: whole object
		{"bytes=0-1, 3-4", data, ""},              // multiple ranges: whole object
		{"bytes=99999999999999999999-", data, ""}, // overflow: invalid
	} {
		t.Run(tc.rng, func(t *testing.T) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("obj"), Range: aws.String(tc.rng)})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body %d bytes, want %d", len(body), len(tc.wantBody))
			}
			if aws.ToString(out.ContentRange) != tc.contentRange {
				t.Errorf("Content-Range %q, want %q", aws.ToString(out.ContentRange), tc.contentRange)
			}
			if aws.ToInt64(out.ContentLength) != int64(len(tc.wantBody)) || aws.ToString(out.AcceptRanges) != "bytes" {
				t.Errorf("Content-Length %d Accept-Ranges %q", aws.ToInt64(out.ContentLength), aws.ToString(out.AcceptRanges))
			}
		})
	}
	for _, tc := range []struct{ key, rng, size string }{
		{"obj", "bytes=1000-", "1000"},
		{"obj", "bytes=-0", "1000"},
		{"empty", "bytes=0-", "0"},
		{"empty", "bytes=-1", "0"},
	} {
		t.Run("416 "+tc.key+" "+tc.rng, func(t *testing.T) {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(tc.key), Range: aws.String(tc.rng)})
			if code, status := apiCode(t, err); code != "InvalidRange" || status != 416 {
				t.Errorf("%s %d", code, status)
			}
			a := newEnvSharing(t, e)
			status, h, body := a.do(t, "GET", "/"+testBucket+"/"+tc.key, map[string]string{"Range": tc.rng}, nil)
			if status != 416 || h.Get("Content-Range") != "bytes */"+tc.size || errCode(body) != "InvalidRange" {
				t.Errorf("raw: %d %q %s", status, h.Get("Content-Range"), body)
			}
		})
	}
	t.Run("zero-length object", func(t *testing.T) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("empty")})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if len(body) != 0 || aws.ToInt64(out.ContentLength) != 0 {
			t.Errorf("empty object: %d bytes, Content-Length %d", len(body), aws.ToInt64(out.ContentLength))
		}
	})
	t.Run("partNumber", func(t *testing.T) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("obj"), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(body, data) {
			t.Errorf("partNumber=1 served %d bytes", len(body))
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("obj"), PartNumber: aws.Int32(2)})
		if code, _ := apiCode(t, err); code != "NotImplemented" {
			t.Errorf("partNumber=2: %s", code)
		}
	})
}

// newEnvSharing returns an anonymous gateway over the same backend, for raw
// HTTP assertions.
func newEnvSharing(t *testing.T, e *testEnv) *testEnv {
	t.Helper()
	a := newEnv(t, false, false)
	gw, err := New(Config{AllowAnonymous: true}, e.be)
	if err != nil {
		t.Fatal(err)
	}
	a.srv.Config.Handler = gw
	a.be = e.be
	return a
}

func TestConditionalRequests(t *testing.T) {
	e := newEnv(t, false, false)
	data := []byte("conditional body")
	lm := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	info := e.be.put(testBucket, "obj", data, nil)
	etag := info.ETag
	before, after := lm.Add(-time.Hour).Format(http.TimeFormat), lm.Add(time.Hour).Format(http.TimeFormat)
	exact := lm.Format(http.TimeFormat)

	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"if-match hit", map[string]string{"If-Match": etag}, 200},
		{"if-match unquoted", map[string]string{"If-Match": strings.Trim(etag, `"`)}, 200},
		{"if-match list", map[string]string{"If-Match": `"nope", ` + etag}, 200},
		{"if-match star", map[string]string{"If-Match": "*"}, 200},
		{"if-match miss", map[string]string{"If-Match": `"nope"`}, 412},
		{"if-match weak never matches", map[string]string{"If-Match": "W/" + etag}, 412},
		{"if-none-match hit", map[string]string{"If-None-Match": etag}, 304},
		{"if-none-match weak hit", map[string]string{"If-None-Match": "W/" + etag}, 304},
		{"if-none-match star", map[string]string{"If-None-Match": "*"}, 304},
		{"if-none-match miss", map[string]string{"If-None-Match": `"nope"`}, 200},
		{"if-modified-since before", map[string]string{"If-Modified-Since": before}, 200},
		{"if-modified-since exact", map[string]string{"If-Modified-Since": exact}, 304},
		{"if-modified-since after", map[string]string{"If-Modified-Since": after}, 304},
		{"if-modified-since garbage ignored", map[string]string{"If-Modified-Since": "yesterday"}, 200},
		{"if-unmodified-since before", map[string]string{"If-Unmodified-Since": before}, 412},
		{"if-unmodified-since exact", map[string]string{"If-Unmodified-Since": exact}, 200},
		// If-Match wins over If-Unmodified-Since (S3 and RFC 9110).
		{"if-match true + ius false", map[string]string{"If-Match": etag, "If-Unmodified-Since": before}, 200},
		// If-None-Match wins over If-Modified-Since.
		{"inm false(miss) + ims true(not modified)", map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": after}, 200},
		{"inm hit + ims modified", map[string]string{"If-None-Match": etag, "If-Modified-Since": before}, 304},
		{"if-match miss beats inm", map[string]string{"If-Match": `"nope"`, "If-None-Match": etag}, 412},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				status, h, body := e.do(t, method, "/"+testBucket+"/obj", tc.hdr, nil)
				if status != tc.want {
					t.Fatalf("status %d, want %d (%s)", status, tc.want, body)
				}
				switch status {
				case 304:
					if h.Get("ETag") != etag || h.Get("Last-Modified") != exact || body != "" {
						t.Errorf("304: ETag %q Last-Modified %q body %q", h.Get("ETag"), h.Get("Last-Modified"), body)
					}
				case 412:
					if method == "GET" && errCode(body) != "PreconditionFailed" {
						t.Errorf("412 body %q", body)
					}
					if method == "HEAD" && body != "" {
						t.Errorf("HEAD error with body %q", body)
					}
				case 200:
					if method == "GET" && body != string(data) {
						t.Errorf("body %q", body)
					}
				}
			})
		}
	}

	t.Run("sdk if-none-match", func(t *testing.T) {
		ea := newEnv(t, true, false)
		ea.be = e.be
		gw, _ := New(Config{Credentials: []Credential{{testAK, testSK}}}, e.be)
		ea.srv.Config.Handler = gw
		_, err := ea.client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("obj"), IfNoneMatch: aws.String(etag)})
		if _, status := apiCode(t, err); status != 304 {
			t.Errorf("status %d", status)
		}
		_, err = ea.client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("obj"), IfMatch: aws.String(`"other"`)})
		if code, status := apiCode(t, err); status != 412 || code != "PreconditionFailed" {
			t.Errorf("%s %d", code, status)
		}
	})
}

func TestResponseHeadersAndOverrides(t *testing.T) {
	e := newEnv(t, false, false)
	e.be.put(testBucket, "doc", []byte("hello"), func(i *ObjectInfo) {
		i.ContentType = "text/plain"
		i.CacheControl = "max-age=60"
		i.ContentDisposition = `attachment; filename="x.txt"`
		i.ContentEncoding = "identity"
		i.ContentLanguage = "en"
		i.Metadata = map[string]string{"project": "shoal"}
	})
	status, h, body := e.do(t, "GET", "/"+testBucket+"/doc", nil, nil)
	if status != 200 || body != "hello" {
		t.Fatalf("%d %q", status, body)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/plain", "Cache-Control": "max-age=60", "Content-Disposition": `attachment; filename="x.txt"`,
		"Content-Encoding": "identity", "Content-Language": "en", "X-Amz-Meta-Project": "shoal", "Content-Length": "5",
		"Last-Modified": "Sat, 01 Mar 2025 12:00:00 GMT", "ETag": md5ETag([]byte("hello")), "Server": "Shoal", "Accept-Ranges": "bytes",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if h.Get("X-Amz-Request-Id") == "" {
		t.Error("no request id")
	}
	_, h, _ = e.do(t, "GET", "/"+testBucket+"/doc?response-content-type=application%2Fjson&response-cache-control=no-store&response-content-disposition=inline", nil, nil)
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Disposition") != "inline" {
		t.Errorf("overrides: %v", h)
	}
}

func TestMultipartUpload(t *testing.T) {
	ctx := context.Background()
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https-trailer"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, true, useTLS)
			c := e.client(t)
			key := "big/object.bin"
			cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key), ContentType: aws.String("application/x-test")})
			if err != nil {
				t.Fatal(err)
			}
			p1, p2 := randBytes(t, 300_000), randBytes(t, 1234)
			var parts []types.CompletedPart
			for i, p := range [][]byte{p1, p2} {
				up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
				if err != nil {
					t.Fatalf("part %d: %v", i+1, err)
				}
				if aws.ToString(up.ETag) != md5ETag(p) {
					t.Errorf("part etag %s", aws.ToString(up.ETag))
				}
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag})
			}
			_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{parts[1], parts[0]}}})
			if code, status := apiCode(t, err); code != "InvalidPartOrder" || status != 400 {
				t.Errorf("out of order: %s %d", code, status)
			}
			done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String(key), UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(aws.ToString(done.ETag), `-2"`) || aws.ToString(done.Key) != key {
				t.Errorf("complete: etag %s key %s", aws.ToString(done.ETag), aws.ToString(done.Key))
			}
			stored, _ := e.be.object(testBucket, key)
			if !bytes.Equal(stored, append(append([]byte{}, p1...), p2...)) {
				t.Errorf("stored object is %d bytes", len(stored))
			}

			cr2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("aborted")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(testBucket), Key: aws.String("aborted"), UploadId: cr2.UploadId}); err != nil {
				t.Fatal(err)
			}
			_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(testBucket), Key: aws.String("aborted"), UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))})
			if code, status := apiCode(t, err); code != "NoSuchUpload" || status != 404 {
				t.Errorf("part after abort: %s %d", code, status)
			}
		})
	}
}

func TestPutWithSDKChecksums(t *testing.T) {
	ctx := context.Background()
	for _, useTLS := range []bool{false, true} {
		for _, algo := range []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmCrc64nvme} {
			name := "http/"
			if useTLS {
				name = "https/"
			}
			t.Run(name+string(algo), func(t *testing.T) {
				e := newEnv(t, true, useTLS)
				data := randBytes(t, 70_000)
				_, err := e.client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k"), Body: bytes.NewReader(data), ChecksumAlgorithm: algo})
				if err != nil {
					t.Fatal(err)
				}
				stored, _ := e.be.object(testBucket, "k")
				if !bytes.Equal(stored, data) {
					t.Fatalf("stored %d bytes", len(stored))
				}
				mode := <-e.seen
				if useTLS && algo != "" && mode != streamingUnsignedTrailer {
					t.Errorf("over TLS the SDK sent x-amz-content-sha256 %q; this test expects it to exercise %s", mode, streamingUnsignedTrailer)
				}
				if e.be.lastPutSize != int64(len(data)) {
					t.Errorf("backend saw Size %d", e.be.lastPutSize)
				}
			})
		}
	}
}

func TestDeleteObjects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	e.be.put(testBucket, "x", []byte("1"), nil)
	e.be.put(testBucket, "y", []byte("2"), nil)
	out, err := e.client(t).DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(testBucket), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("x")}, {Key: aws.String("y")}, {Key: aws.String("never-existed")},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 3 || len(out.Errors) != 0 {
		t.Errorf("deleted %d errors %d", len(out.Deleted), len(out.Errors))
	}
	if _, ok := e.be.object(testBucket, "x"); ok {
		t.Error("x still exists")
	}
}

func TestStreamingAbortsOnBackendFailure(t *testing.T) {
	e := newEnv(t, false, false)
	data := randBytes(t, 1<<20)
	e.be.put(testBucket, "broken", data, nil)
	e.be.failAfter["broken"] = 300_000
	resp, err := e.srv.Client().Get(e.srv.URL + "/" + testBucket + "/broken")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 1<<20 {
		t.Fatalf("status %d length %d", resp.StatusCode, resp.ContentLength)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read %d bytes without error; a truncated transfer must be visible to the client", len(got))
	}
	if len(got) >= 1<<20 || !bytes.Equal(got, data[:len(got)]) {
		t.Errorf("got %d bytes", len(got))
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, false, false)
	// The read path's series are there at zero before any request.
	if v := metricValue(t, e, "shoal_gateway_response_bytes_total", "GetObject", ""); v != 0 || !hasSeries(t, e, "shoal_gateway_response_bytes_total", "GetObject") {
		t.Errorf("before any request: GetObject bytes series %v, want a zero series", v)
	}
	if !hasSeries(t, e, "shoal_gateway_requests_total", "HeadObject") {
		t.Error("before any request: no HeadObject requests series")
	}
	e.be.put(testBucket, "m", []byte("12345"), nil)
	e.do(t, "GET", "/"+testBucket+"/m", nil, nil)
	e.do(t, "GET", "/"+testBucket+"/missing", nil, nil)
	if v := metricValue(t, e, "shoal_gateway_requests_total", "GetObject", "2xx"); v != 1 {
		t.Errorf("2xx GetObject = %v", v)
	}
	if v := metricValue(t, e, "shoal_gateway_requests_total", "GetObject", "4xx"); v != 1 {
		t.Errorf("4xx GetObject = %v", v)
	}
	if v := metricValue(t, e, "shoal_gateway_response_bytes_total", "GetObject", ""); v < 5 {
		t.Errorf("bytes out = %v", v)
	}
	if v := metricValue(t, e, "shoal_gateway_request_duration_seconds", "GetObject", ""); v != 2 {
		t.Errorf("latency observations = %v", v)
	}
}

// hasSeries reports whether family name has a series for operation op.
func hasSeries(t *testing.T, e *testEnv, name, op string) bool {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return true
				}
			}
		}
	}
	return false
}

// metricValue returns a counter's value or a histogram's sample count for
// the given operation (and status class, if not empty).
func metricValue(t *testing.T, e *testEnv, name, op, class string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "operation" && l.GetValue() != op) || (class != "" && l.GetName() == "status" && l.GetValue() != class) {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// TestChecksumHeaders: the origin's whole-object checksums reach a client
// that asks for them on HEAD and on a full GET (where the SDK checks the
// body against them), and never come with a range.
func TestChecksumHeaders(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, false)
	data := randBytes(t, 100_000)
	h := checksumAlgos["x-amz-checksum-crc64nvme"]()
	h.Write(data)
	good := base64.StdEncoding.EncodeToString(h.Sum(nil))
	e.be.put(testBucket, "good", data, func(i *ObjectInfo) { i.Checksums = Checksums{CRC64NVME: good, Type: "FULL_OBJECT"} })
	// A checksum the bytes do not match: what a client sees if a cache
	// served other bytes than the origin's object.
	e.be.put(testBucket, "bad", data, func(i *ObjectInfo) { i.Checksums = Checksums{CRC64NVME: "AAAAAAAAAAA=", Type: "FULL_OBJECT"} })
	c := e.client(t, func(o *s3.Options) { o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported })

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("good"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ChecksumCRC64NVME) != good || head.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("HEAD checksum %q type %q, want %s FULL_OBJECT", aws.ToString(head.ChecksumCRC64NVME), head.ChecksumType, good)
	}
	head, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String("good")})
	if err != nil || head.ChecksumCRC64NVME != nil {
		t.Fatalf("HEAD without checksum mode: %v, checksum %v (S3 sends none)", err, aws.ToString(head.ChecksumCRC64NVME))
	}

	for key, wantOK := range map[string]bool{"good": true, "bad": false} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if wantOK && (err != nil || !bytes.Equal(got, data) || aws.ToString(out.ChecksumCRC64NVME) != good) {
			t.Fatalf("GET %s: %d bytes, %v, checksum %q", key, len(got), err, aws.ToString(out.ChecksumCRC64NVME))
		}
		if !wantOK && (err == nil || !strings.Contains(err.Error(), "checksum")) {
			t.Fatalf("GET %s: %v; want the SDK to refuse a body that does not match the checksum sent with it", key, err)
		}
	}

	anon := newEnv(t, false, false)
	anon.be.put(testBucket, "good", data, func(i *ObjectInfo) { i.Checksums = Checksums{CRC64NVME: good, Type: "FULL_OBJECT"} })
	status, rh, _ := anon.do(t, "GET", "/"+testBucket+"/good", map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}, nil)
	if status != http.StatusOK || rh.Get("X-Amz-Checksum-Crc64nvme") != good || rh.Get("X-Amz-Checksum-Type") != "FULL_OBJECT" {
		t.Fatalf("full GET: status %d, checksum %q", status, rh.Get("X-Amz-Checksum-Crc64nvme"))
	}
	for _, tc := range []struct{ query, rng string }{
		{"", "bytes=0-99"}, {"", "bytes=-1"}, {"", "bytes=0-"}, {"?partNumber=1", ""},
	} {
		hdr := map[string]string{"X-Amz-Checksum-Mode": "ENABLED"}
		if tc.rng != "" {
			hdr["Range"] = tc.rng
		}
		status, rh, _ := anon.do(t, "GET", "/"+testBucket+"/good"+tc.query, hdr, nil)
		if status/100 != 2 || rh.Get("X-Amz-Checksum-Crc64nvme") != "" || rh.Get("X-Amz-Checksum-Type") != "" {
			t.Fatalf("GET %+v: status %d, checksum headers %q %q", tc, status, rh.Get("X-Amz-Checksum-Crc64nvme"), rh.Get("X-Amz-Checksum-Type"))
		}
	}
}
