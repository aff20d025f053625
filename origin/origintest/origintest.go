// Package origintest is the conformance suite every origin implementation
// (origin.S3 against a real S3-compatible server, origin.Dir) must pass.
package origintest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/integrity"
	"github.com/shoal-cache/shoal/origin"
)

// Origin is the method set shared by origin.S3 and origin.Dir.
type Origin interface {
	HeadObject(ctx context.Context, bucket, key string) (origin.ObjectInfo, error)
	GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error)
	ListObjects(ctx context.Context, p origin.ListParams) (origin.ListResult, error)
	ListBuckets(ctx context.Context) ([]origin.Bucket, error)
	HeadBucket(ctx context.Context, bucket string) (string, error)
	PutObject(ctx context.Context, p origin.PutParams) (origin.ObjectInfo, error)
	DeleteObject(ctx context.Context, bucket, key string) error
	CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error)
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []origin.CompletedPart) (origin.ObjectInfo, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
}

// Env is one fresh origin plus ways to change its data behind its back.
type Env struct {
	Origin Origin
	// CreateBucket creates an empty bucket without going through Origin.
	CreateBucket func(t testing.TB, bucket string)
	// Seed writes an object without going through Origin; the bucket exists.
	Seed func(t testing.TB, bucket, key string, data []byte)
	// SeedChecksum writes an object as an S3 client does when it sends a
	// checksum (PutObject with ChecksumAlgorithm alg, one of the
	// integrity algorithms but MD5). Nil for an origin that has no such
	// thing (the file origin); the suite then checks only that whatever
	// integrity data the origin reports is true.
	SeedChecksum func(t testing.TB, bucket, key string, data []byte, alg integrity.Algorithm)
}

// Run runs the suite; newEnv is called once per subtest.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e Env)
	}{
		{"HeadAndGetRanges", testHeadAndGetRanges},
		{"IfMatch", testIfMatch},
		{"Missing", testMissing},
		{"ListPrefixDelimiter", testListPrefixDelimiter},
		{"ListPagination", testListPagination},
		{"PutGetDelete", testPutGetDelete},
		{"PutUnknownSize", testPutUnknownSize},
		{"Multipart", testMultipart},
		{"MultipartErrors", testMultipartErrors},
		{"Buckets", testBuckets},
		{"IntegrityClaimsAreTrue", testIntegrityClaimsAreTrue},
		{"ChecksumsOnHead", testChecksumsOnHead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newEnv(t)) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func readRange(t *testing.T, o Origin, bucket, key, etag string, off, n int64) ([]byte, error) {
	t.Helper()
	rc, err := o.GetRange(ctxT(t), bucket, key, etag, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func testHeadAndGetRanges(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	data := RandomBytes(100_000)
	e.Seed(t, "bkt", "dir/obj.bin", data)

	info, err := e.Origin.HeadObject(ctx, "bkt", "dir/obj.bin")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.Bucket != "bkt" || info.Key != "dir/obj.bin" {
		t.Fatalf("head = %+v", info)
	}
	if len(info.ETag) < 3 || info.ETag[0] != '"' || info.ETag[len(info.ETag)-1] != '"' {
		t.Fatalf("ETag %q is not quoted", info.ETag)
	}
	if info.LastModified.IsZero() {
		t.Fatal("LastModified is zero")
	}
	size := int64(len(data))
	for _, tc := range []struct{ off, n, wantFrom, wantTo int64 }{
		{0, -1, 0, size},
		{0, 10, 0, 10},
		{10, 1000, 10, 1010},
		{size - 1, 1, size - 1, size},
		{size - 5, -1, size - 5, size},
		{size - 5, 100, size - 5, size}, // cut short at the end
		{12345, 0, 0, 0},                // empty
	} {
		got, err := readRange(t, e.Origin, "bkt", "dir/obj.bin", "", tc.off, tc.n)
		if err != nil {
			t.Fatalf("GetRange(%d,%d): %v", tc.off, tc.n, err)
		}
		if want := data[tc.wantFrom:tc.wantTo]; !bytes.Equal(got, want) {
			t.Fatalf("GetRange(%d,%d): got %d bytes, want %d (content equal: %v)", tc.off, tc.n, len(got), len(want), bytes.Equal(got, want))
		}
	}
	for _, off := range []int64{size, size + 100} {
		if _, err := readRange(t, e.Origin, "bkt", "dir/obj.bin", "", off, 10); !errors.Is(err, origin.ErrInvalidRange) {
			t.Fatalf("GetRange at %d of %d: err = %v, want ErrInvalidRange", off, size, err)
		}
	}
}

func testIfMatch(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	e.Seed(t, "bkt", "k", []byte("version one"))
	info, err := e.Origin.HeadObject(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readRange(t, e.Origin, "bkt", "k", info.ETag, 8, 3)
	if err != nil || string(got) != "one" {
		t.Fatalf("GetRange with current ETag = %q, %v", got, err)
	}
	if _, err := readRange(t, e.Origin, "bkt", "k", `"0123456789abcdef0123456789abcdef"`, 0, -1); !errors.Is(err, origin.ErrPreconditionFailed) {
		t.Fatalf("GetRange with wrong ETag: err = %v, want ErrPreconditionFailed", err)
	}
	e.Seed(t, "bkt", "k", []byte("version two, longer"))
	if _, err := readRange(t, e.Origin, "bkt", "k", info.ETag, 0, 4); !errors.Is(err, origin.ErrPreconditionFailed) {
		t.Fatalf("GetRange with old ETag after overwrite: err = %v, want ErrPreconditionFailed", err)
	}
	info2, err := e.Origin.HeadObject(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	if info2.ETag == info.ETag {
		t.Fatalf("ETag unchanged after overwrite: %s", info.ETag)
	}
	got, err = readRange(t, e.Origin, "bkt", "k", info2.ETag, 0, -1)
	if err != nil || string(got) != "version two, longer" {
		t.Fatalf("GetRange with new ETag = %q, %v", got, err)
	}
}

func testMissing(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	e.Seed(t, "bkt", "present", []byte("x"))
	if _, err := e.Origin.HeadObject(ctx, "bkt", "absent"); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("HeadObject missing key: %v, want ErrNotFound", err)
	}
	if _, err := readRange(t, e.Origin, "bkt", "absent", "", 0, -1); !errors.Is(err, origin.ErrNotFound) {
		t.Errorf("GetRange missing key: %v, want ErrNotFound", err)
	}
	if _, err := readRange(t, e.Origin, "nobucket", "k", "", 0, -1); !errors.Is(err, origin.ErrNoSuchBucket) {
		t.Errorf("GetRange missing bucket: %v, want ErrNoSuchBucket", err)
	}
	// S3 answers HEAD with a bare 404, so a missing bucket may look like a
	// missing key there.
	if _, err := e.Origin.HeadObject(ctx, "nobucket", "k"); !errors.Is(err, origin.ErrNoSuchBucket) {
		t.Errorf("HeadObject missing bucket: %v, want ErrNoSuchBucket", err)
	}
	if _, err := e.Origin.ListObjects(ctx, origin.ListParams{Bucket: "nobucket"}); !errors.Is(err, origin.ErrNoSuchBucket) {
		t.Errorf("ListObjects missing bucket: %v, want ErrNoSuchBucket", err)
	}
	if _, err := e.Origin.HeadBucket(ctx, "nobucket"); !errors.Is(err, origin.ErrNoSuchBucket) {
		t.Errorf("HeadBucket missing bucket: %v, want ErrNoSuchBucket", err)
	}
	if _, err := e.Origin.PutObject(ctx, origin.PutParams{Bucket: "nobucket", Key: "k", Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, origin.ErrNoSuchBucket) {
		t.Errorf("PutObject missing bucket: %v, want ErrNoSuchBucket", err)
	}
}

// listAll pages through a listing and returns entries and prefixes in order.
func listAll(t *testing.T, o Origin, p origin.ListParams) (keys, prefixes []string, pages int) {
	t.Helper()
	ctx := ctxT(t)
	for {
		res, err := o.ListObjects(ctx, p)
		if err != nil {
			t.Fatalf("ListObjects(%+v): %v", p, err)
		}
		pages++
		if p.MaxKeys > 0 && len(res.Entries)+len(res.CommonPrefixes) > p.MaxKeys {
			t.Fatalf("page has %d items, MaxKeys %d", len(res.Entries)+len(res.CommonPrefixes), p.MaxKeys)
		}
		for _, en := range res.Entries {
			keys = append(keys, en.Key)
		}
		prefixes = append(prefixes, res.CommonPrefixes...)
		if !res.IsTruncated {
			return keys, prefixes, pages
		}
		if res.NextContinuationToken == "" {
			t.Fatal("truncated page without a continuation token")
		}
		if pages > 1000 {
			t.Fatal("listing does not end")
		}
		p.ContinuationToken = res.NextContinuationToken
	}
}

func testListPrefixDelimiter(t *testing.T, e Env) {
	e.CreateBucket(t, "bkt")
	all := []string{"a-x", "a/1", "a/2", "a/b/3", "b/4", "c"} // byte order: '-' < '/'
	for _, k := range all {
		e.Seed(t, "bkt", k, []byte("data of "+k))
	}
	for _, tc := range []struct {
		name         string
		p            origin.ListParams
		keys, prefix []string
	}{
		{"all", origin.ListParams{}, all, nil},
		{"prefix", origin.ListParams{Prefix: "a/"}, []string{"a/1", "a/2", "a/b/3"}, nil},
		{"prefix partial segment", origin.ListParams{Prefix: "a"}, []string{"a-x", "a/1", "a/2", "a/b/3"}, nil},
		{"delimiter at root", origin.ListParams{Delimiter: "/"}, []string{"a-x", "c"}, []string{"a/", "b/"}},
		{"prefix and delimiter", origin.ListParams{Prefix: "a/", Delimiter: "/"}, []string{"a/1", "a/2"}, []string{"a/b/"}},
		{"start after", origin.ListParams{StartAfter: "a/2"}, []string{"a/b/3", "b/4", "c"}, nil},
		{"no match", origin.ListParams{Prefix: "zzz"}, nil, nil},
		{"delimiter paged", origin.ListParams{Delimiter: "/", MaxKeys: 1}, []string{"a-x", "c"}, []string{"a/", "b/"}},
		{"prefix delimiter paged", origin.ListParams{Prefix: "a/", Delimiter: "/", MaxKeys: 1}, []string{"a/1", "a/2"}, []string{"a/b/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Bucket = "bkt"
			keys, prefixes, _ := listAll(t, e.Origin, p)
			if !slices.Equal(keys, tc.keys) || !slices.Equal(prefixes, tc.prefix) {
				t.Fatalf("keys %q prefixes %q, want %q %q", keys, prefixes, tc.keys, tc.prefix)
			}
		})
	}
	res, err := e.Origin.ListObjects(ctxT(t), origin.ListParams{Bucket: "bkt", Prefix: "a/1"})
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("list a/1: %+v, %v", res, err)
	}
	if en := res.Entries[0]; en.Size != int64(len("data of a/1")) || en.ETag == "" || en.LastModified.IsZero() {
		t.Fatalf("entry %+v", en)
	}
}

func testListPagination(t *testing.T, e Env) {
	e.CreateBucket(t, "bkt")
	var want []string
	for i := range 23 {
		k := fmt.Sprintf("p/%02d/obj", i)
		want = append(want, k)
		e.Seed(t, "bkt", k, []byte{byte(i)})
	}
	keys, _, pages := listAll(t, e.Origin, origin.ListParams{Bucket: "bkt", MaxKeys: 5})
	if !slices.Equal(keys, want) {
		t.Fatalf("paged keys %q, want %q", keys, want)
	}
	if pages != 5 {
		t.Fatalf("%d pages of 5 for 23 keys, want 5", pages)
	}
	_, prefixes, pages := listAll(t, e.Origin, origin.ListParams{Bucket: "bkt", Prefix: "p/", Delimiter: "/", MaxKeys: 10})
	if len(prefixes) != 23 || prefixes[0] != "p/00/" || prefixes[22] != "p/22/" || pages != 3 {
		t.Fatalf("prefixes %q in %d pages", prefixes, pages)
	}
}

func testPutGetDelete(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	data := RandomBytes(70_000)
	info, err := e.Origin.PutObject(ctx, origin.PutParams{
		Bucket: "bkt", Key: "up/loaded.dat", Body: bytes.NewReader(data), Size: int64(len(data)),
		ContentType: "text/plain", Metadata: map[string]string{"color": "blue", "Owner": "team-a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag == "" || info.Size != int64(len(data)) {
		t.Fatalf("put info %+v", info)
	}
	head, err := e.Origin.HeadObject(ctx, "bkt", "up/loaded.dat")
	if err != nil {
		t.Fatal(err)
	}
	if head.ETag != info.ETag || head.Size != int64(len(data)) || head.ContentType != "text/plain" {
		t.Fatalf("head %+v after put %+v", head, info)
	}
	if head.Metadata["color"] != "blue" || head.Metadata["owner"] != "team-a" {
		t.Fatalf("metadata %v, want color=blue owner=team-a", head.Metadata)
	}
	got, err := readRange(t, e.Origin, "bkt", "up/loaded.dat", head.ETag, 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after put: %d bytes, %v", len(got), err)
	}

	// Overwrite replaces content and ETag.
	if _, err := e.Origin.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "up/loaded.dat", Body: strings.NewReader("small"), Size: 5}); err != nil {
		t.Fatal(err)
	}
	got, err = readRange(t, e.Origin, "bkt", "up/loaded.dat", "", 0, -1)
	if err != nil || string(got) != "small" {
		t.Fatalf("after overwrite: %q, %v", got, err)
	}

	if err := e.Origin.DeleteObject(ctx, "bkt", "up/loaded.dat"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Origin.HeadObject(ctx, "bkt", "up/loaded.dat"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("head after delete: %v, want ErrNotFound", err)
	}
	if err := e.Origin.DeleteObject(ctx, "bkt", "up/loaded.dat"); err != nil {
		t.Fatalf("delete missing key: %v, want nil", err)
	}
	keys, _, _ := listAll(t, e.Origin, origin.ListParams{Bucket: "bkt"})
	if len(keys) != 0 {
		t.Fatalf("keys after delete: %q", keys)
	}
}

// onlyReader hides any Seek/Len/WriteTo so the body is a plain stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testPutUnknownSize(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	for _, size := range []int{0, 1000} {
		data := RandomBytes(size)
		key := fmt.Sprintf("stream-%d", size)
		if _, err := e.Origin.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: key, Body: onlyReader{bytes.NewReader(data)}, Size: -1}); err != nil {
			t.Fatalf("put %d bytes of unknown size: %v", size, err)
		}
		got, err := readRange(t, e.Origin, "bkt", key, "", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %s: %d bytes, %v", key, len(got), err)
		}
	}
	// A known size streamed from a non-seekable reader.
	data := RandomBytes(300_000)
	if _, err := e.Origin.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "known", Body: onlyReader{bytes.NewReader(data)}, Size: int64(len(data))}); err != nil {
		t.Fatalf("put non-seekable with size: %v", err)
	}
	got, err := readRange(t, e.Origin, "bkt", "known", "", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get known: %d bytes, %v", len(got), err)
	}
}

func testMultipart(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	p1 := RandomBytes(5 << 20) // S3's minimum for all parts but the last
	p2 := RandomBytes(1234)
	id, err := e.Origin.CreateMultipartUpload(ctx, "bkt", "big/object", "application/x-test", map[string]string{"stage": "two"})
	if err != nil {
		t.Fatal(err)
	}
	// Upload out of order: completion orders by part number.
	e2, err := e.Origin.UploadPart(ctx, "bkt", "big/object", id, 2, bytes.NewReader(p2), int64(len(p2)))
	if err != nil {
		t.Fatal(err)
	}
	e1, err := e.Origin.UploadPart(ctx, "bkt", "big/object", id, 1, onlyReader{bytes.NewReader(p1)}, int64(len(p1)))
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.Origin.CompleteMultipartUpload(ctx, "bkt", "big/object", id, []origin.CompletedPart{{PartNumber: 1, ETag: e1}, {PartNumber: 2, ETag: e2}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.Trim(info.ETag, `"`), "-2") {
		t.Fatalf("multipart ETag %q, want the -2 suffix", info.ETag)
	}
	head, err := e.Origin.HeadObject(ctx, "bkt", "big/object")
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(p1), p2...)
	if head.Size != int64(len(want)) || head.ETag != info.ETag || head.ContentType != "application/x-test" || head.Metadata["stage"] != "two" {
		t.Fatalf("head %+v, complete %+v", head, info)
	}
	got, err := readRange(t, e.Origin, "bkt", "big/object", head.ETag, int64(len(p1))-10, 20)
	if err != nil || !bytes.Equal(got, want[len(p1)-10:len(p1)+10]) {
		t.Fatalf("range across the part boundary: %v", err)
	}
	got, err = readRange(t, e.Origin, "bkt", "big/object", "", 0, -1)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("whole object: %d bytes, %v", len(got), err)
	}
	// The upload is gone after completion.
	if err := e.Origin.AbortMultipartUpload(ctx, "bkt", "big/object", id); !errors.Is(err, origin.ErrNoSuchUpload) && err != nil {
		t.Fatalf("abort after complete: %v", err)
	}
}

func testMultipartErrors(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	id, err := e.Origin.CreateMultipartUpload(ctx, "bkt", "k", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	etag, err := e.Origin.UploadPart(ctx, "bkt", "k", id, 1, strings.NewReader("part one"), 8)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Origin.CompleteMultipartUpload(ctx, "bkt", "k", id, []origin.CompletedPart{{PartNumber: 1, ETag: `"00000000000000000000000000000000"`}})
	if !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("complete with a wrong part ETag: %v, want ErrInvalidArgument", err)
	}
	if _, err := e.Origin.HeadObject(ctx, "bkt", "k"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("object exists after failed completion: %v", err)
	}
	if err := e.Origin.AbortMultipartUpload(ctx, "bkt", "k", id); err != nil {
		t.Fatalf("abort: %v", err)
	}
	_, err = e.Origin.CompleteMultipartUpload(ctx, "bkt", "k", id, []origin.CompletedPart{{PartNumber: 1, ETag: etag}})
	if !errors.Is(err, origin.ErrNoSuchUpload) {
		t.Fatalf("complete after abort: %v, want ErrNoSuchUpload", err)
	}
	if _, err := e.Origin.UploadPart(ctx, "bkt", "k", id, 2, strings.NewReader("x"), 1); !errors.Is(err, origin.ErrNoSuchUpload) {
		t.Fatalf("upload part after abort: %v, want ErrNoSuchUpload", err)
	}
	if _, err := e.Origin.UploadPart(ctx, "bkt", "k", "not-an-upload-id-0123456789abcdef", 1, strings.NewReader("x"), 1); !errors.Is(err, origin.ErrNoSuchUpload) {
		t.Fatalf("upload part to unknown upload: %v, want ErrNoSuchUpload", err)
	}
}

func testBuckets(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "alpha")
	e.CreateBucket(t, "beta")
	bs, err := e.Origin.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"alpha", "beta"}) {
		t.Fatalf("buckets %q", names)
	}
	region, err := e.Origin.HeadBucket(ctx, "alpha")
	if err != nil || region == "" {
		t.Fatalf("HeadBucket = %q, %v", region, err)
	}
}

// wants lists the integrity data info claims, for integrity.NewChecker.
func wants(info origin.ObjectInfo) []integrity.Want {
	var ws []integrity.Want
	c := info.Checksums
	for _, w := range []integrity.Want{
		{Algorithm: integrity.CRC64NVME, Value: c.CRC64NVME},
		{Algorithm: integrity.CRC32C, Value: c.CRC32C},
		{Algorithm: integrity.CRC32, Value: c.CRC32},
		{Algorithm: integrity.SHA1, Value: c.SHA1},
		{Algorithm: integrity.SHA256, Value: c.SHA256},
	} {
		if w.Value != "" {
			ws = append(ws, w)
		}
	}
	if info.ETagIsMD5 {
		ws = append(ws, integrity.Want{Algorithm: integrity.MD5, Value: info.ETag})
	}
	return ws
}

// checkClaims fails the test unless every full-object claim in info holds
// for data. Composite checksums are skipped: they need the part boundaries.
func checkClaims(t *testing.T, what string, info origin.ObjectInfo, data []byte) {
	t.Helper()
	if info.Checksums.Type == origin.ChecksumComposite {
		info.Checksums = origin.Checksums{}
	}
	c, err := integrity.NewChecker(wants(info)...)
	if err != nil {
		t.Fatalf("%s: the origin reports integrity data that cannot be checked: %+v: %v", what, info, err)
	}
	c.Write(data)
	if err := c.Verify(); err != nil {
		t.Fatalf("%s: the origin's integrity data is false: %v", what, err)
	}
}

// testIntegrityClaimsAreTrue: an origin need not report integrity data, but
// what it reports must hold, for objects seeded behind its back, written
// through it, and assembled from parts.
func testIntegrityClaimsAreTrue(t *testing.T, e Env) {
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	seeded := RandomBytes(200_000)
	e.Seed(t, "bkt", "seeded", seeded)
	info, err := e.Origin.HeadObject(ctx, "bkt", "seeded")
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, "seeded object", info, seeded)

	put := RandomBytes(100_000)
	if _, err := e.Origin.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "put", Body: bytes.NewReader(put), Size: int64(len(put))}); err != nil {
		t.Fatal(err)
	}
	if info, err = e.Origin.HeadObject(ctx, "bkt", "put"); err != nil {
		t.Fatal(err)
	}
	checkClaims(t, "object written through the origin", info, put)

	p1, p2 := RandomBytes(5<<20), RandomBytes(1000)
	id, err := e.Origin.CreateMultipartUpload(ctx, "bkt", "mp", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	e1, err := e.Origin.UploadPart(ctx, "bkt", "mp", id, 1, bytes.NewReader(p1), int64(len(p1)))
	if err != nil {
		t.Fatal(err)
	}
	e2, err := e.Origin.UploadPart(ctx, "bkt", "mp", id, 2, bytes.NewReader(p2), int64(len(p2)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Origin.CompleteMultipartUpload(ctx, "bkt", "mp", id, []origin.CompletedPart{{PartNumber: 1, ETag: e1}, {PartNumber: 2, ETag: e2}}); err != nil {
		t.Fatal(err)
	}
	if info, err = e.Origin.HeadObject(ctx, "bkt", "mp"); err != nil {
		t.Fatal(err)
	}
	if info.ETagIsMD5 {
		t.Fatalf("multipart ETag %s claimed to be an MD5", info.ETag)
	}
	checkClaims(t, "multipart object", info, append(p1, p2...))
}

// testChecksumsOnHead: an object uploaded with a checksum has that
// checksum, of the whole object, on HEAD.
func testChecksumsOnHead(t *testing.T, e Env) {
	if e.SeedChecksum == nil {
		t.Skip("this origin has no checksums to report")
	}
	ctx := ctxT(t)
	e.CreateBucket(t, "bkt")
	data := RandomBytes(300_001)
	for _, alg := range []integrity.Algorithm{integrity.CRC64NVME, integrity.CRC32C, integrity.CRC32, integrity.SHA1, integrity.SHA256} {
		t.Run(string(alg), func(t *testing.T) {
			key := "sum-" + string(alg)
			e.SeedChecksum(t, "bkt", key, data, alg)
			info, err := e.Origin.HeadObject(ctx, "bkt", key)
			if err != nil {
				t.Fatal(err)
			}
			got := map[integrity.Algorithm]string{}
			for _, w := range wants(info) {
				got[w.Algorithm] = w.Value
			}
			if got[alg] == "" {
				t.Fatalf("HEAD reports no %s checksum: %+v", alg, info.Checksums)
			}
			if info.Checksums.Type != origin.ChecksumFullObject {
				t.Fatalf("checksum type %q, want %s", info.Checksums.Type, origin.ChecksumFullObject)
			}
			checkClaims(t, "object uploaded with "+string(alg), info, data)
		})
	}
}
