package integration

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

func TestRangeReadsMultiChunk(t *testing.T) {
	t.Parallel()
	const size = 5*mib + mib/2
	data := randomBytes(size, 1)
	s, n := startS3Node(t, "ranges", testenv.NodeOptions{ChunkSize: "1MiB"})
	s.PutObject(t, "ranges", "big.bin", data)
	c := n.Client(t)

	tests := []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=0-99", 0, 99},
		{"bytes=1048570-1048580", mib - 6, mib + 4},            // across the first boundary
		{"bytes=1048576-2097151", mib, 2*mib - 1},              // exactly chunk 1
		{"bytes=1000000-4500000", 1000000, 4500000},            // spans four chunks
		{"bytes=5242880-", 5 * mib, size - 1},                  // `a-`: the short last chunk
		{"bytes=3000000-", 3000000, size - 1},                  // `a-` from mid-object
		{"bytes=-100", size - 100, size - 1},                   // `-n`
		{"bytes=-1048677", size - 1048677, size - 1},           // `-n` across a boundary
		{"bytes=-99999999", 0, size - 1},                       // `-n` larger than the object
		{fmt.Sprintf("bytes=100-%d", size+500), 100, size - 1}, // end past EOF is clipped
	}
	for _, tt := range tests {
		got, out, err := get(ctxT(t), c, "ranges", "big.bin", tt.rng)
		if err != nil {
			t.Fatalf("%s: %v", tt.rng, err)
		}
		want := data[tt.start : tt.end+1]
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, want %d; %s", tt.rng, len(got), len(want), firstDiff(got, want))
		}
		wantCR := fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end, size)
		if aws.ToString(out.ContentRange) != wantCR {
			t.Errorf("%s: Content-Range %q, want %q", tt.rng, aws.ToString(out.ContentRange), wantCR)
		}
	}
	// The whole object, twice (cold then warm).
	mustGet(t, c, "ranges", "big.bin", data)
	mustGet(t, c, "ranges", "big.bin", data)

	_, _, err := get(ctxT(t), c, "ranges", "big.bin", fmt.Sprintf("bytes=%d-", size))
	wantStatus(t, "range at EOF", err, 416, "InvalidRange")
	_, _, err = get(ctxT(t), c, "ranges", "big.bin", "bytes=9999999-10000000")
	wantStatus(t, "range past EOF", err, 416, "InvalidRange")
}

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "cond", testenv.NodeOptions{})
	s.PutObject(t, "cond", "k", []byte("hello conditional"))
	c := n.Client(t)
	ctx := ctxT(t)

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("cond"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(head.ETag)
	if etag == "" || head.LastModified == nil {
		t.Fatalf("HEAD: etag %q, last-modified %v", etag, head.LastModified)
	}
	past, future := head.LastModified.Add(-time.Hour), time.Now().Add(time.Hour)

	// Matching conditions serve the object.
	for name, in := range map[string]*s3.GetObjectInput{
		"If-Match":            {IfMatch: aws.String(etag)},
		"If-None-Match other": {IfNoneMatch: aws.String(`"0123"`)},
		"If-Modified-Since":   {IfModifiedSince: &past},
		"If-Unmodified-Since": {IfUnmodifiedSince: &future},
	} {
		in.Bucket, in.Key = aws.String("cond"), aws.String("k")
		out, err := c.GetObject(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out.Body.Close()
	}
	// 304 Not Modified.
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfNoneMatch: aws.String(etag)})
	wantStatus(t, "GET If-None-Match", err, 304, "")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfModifiedSince: &future})
	wantStatus(t, "GET If-Modified-Since future", err, 304, "")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfNoneMatch: aws.String(etag)})
	wantStatus(t, "HEAD If-None-Match", err, 304, "")
	// 412 Precondition Failed.
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfMatch: aws.String(`"0123"`)})
	wantStatus(t, "GET If-Match other", err, 412, "PreconditionFailed")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfUnmodifiedSince: &past})
	wantStatus(t, "GET If-Unmodified-Since past", err, 412, "PreconditionFailed")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfMatch: aws.String(`"0123"`)})
	wantStatus(t, "HEAD If-Match other", err, 412, "")
	// If-Match wins over If-Unmodified-Since (RFC 9110).
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfMatch: aws.String(etag), IfUnmodifiedSince: &past})
	if err != nil {
		t.Fatalf("If-Match + stale If-Unmodified-Since: %v", err)
	}
	out.Body.Close()
}

func TestMetadataPassthrough(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "meta", testenv.NodeOptions{})
	ctx := ctxT(t)
	_, err := s.Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket:             aws.String("meta"),
		Key:                aws.String("doc.json"),
		Body:               strings.NewReader(`{"a":1}`),
		ContentType:        aws.String("application/json"),
		CacheControl:       aws.String("max-age=60"),
		ContentDisposition: aws.String(`attachment; filename="doc.json"`),
		Metadata:           map[string]string{"owner": "alice", "build-id": "42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := n.Client(t)
	check := func(what string, ct, cc, cd *string, meta map[string]string, length *int64) {
		t.Helper()
		if aws.ToString(ct) != "application/json" {
			t.Errorf("%s: Content-Type %q", what, aws.ToString(ct))
		}
		if aws.ToString(cc) != "max-age=60" {
			t.Errorf("%s: Cache-Control %q", what, aws.ToString(cc))
		}
		if aws.ToString(cd) != `attachment; filename="doc.json"` {
			t.Errorf("%s: Content-Disposition %q", what, aws.ToString(cd))
		}
		if meta["owner"] != "alice" || meta["build-id"] != "42" {
			t.Errorf("%s: metadata %v", what, meta)
		}
		if aws.ToInt64(length) != 7 {
			t.Errorf("%s: Content-Length %d", what, aws.ToInt64(length))
		}
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("meta"), Key: aws.String("doc.json")})
	if err != nil {
		t.Fatal(err)
	}
	check("HEAD", h.ContentType, h.CacheControl, h.ContentDisposition, h.Metadata, h.ContentLength)
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("meta"), Key: aws.String("doc.json")})
	if err != nil {
		t.Fatal(err)
	}
	g.Body.Close()
	check("GET", g.ContentType, g.CacheControl, g.ContentDisposition, g.Metadata, g.ContentLength)
	if aws.ToString(g.ETag) != aws.ToString(h.ETag) || aws.ToString(h.ETag) == "" {
		t.Errorf("ETag GET %q HEAD %q", aws.ToString(g.ETag), aws.ToString(h.ETag))
	}
}

func TestListObjectsV2(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "list", testenv.NodeOptions{})
	var all []string
	for i := range 7 {
		all = append(all, fmt.Sprintf("logs/2024/%02d.txt", i))
	}
	all = append(all, "logs/readme", "data/x.bin", "top.txt")
	for _, k := range all {
		s.PutObject(t, "list", k, []byte("v:"+k))
	}
	c := n.Client(t)
	ctx := ctxT(t)

	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes, keys []string
	for _, p := range out.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if !slices.Equal(prefixes, []string{"data/", "logs/"}) || !slices.Equal(keys, []string{"top.txt"}) {
		t.Fatalf("delimiter listing: prefixes %v keys %v", prefixes, keys)
	}

	// Pagination: 2 keys a page under logs/2024/.
	var got []string
	pages := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{
		Bucket: aws.String("list"), Prefix: aws.String("logs/2024/"), MaxKeys: aws.Int32(2),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Contents) > 2 {
			t.Fatalf("page of %d keys with MaxKeys 2", len(page.Contents))
		}
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != int64(len("v:"+aws.ToString(o.Key))) {
				t.Errorf("%s: size %d", aws.ToString(o.Key), aws.ToInt64(o.Size))
			}
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if !slices.Equal(got, all[:7]) || pages != 4 {
		t.Fatalf("paginated %d pages: %v, want %v", pages, got, all[:7])
	}

	// StartAfter.
	out, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), StartAfter: aws.String("logs/2024/05.txt")})
	if err != nil {
		t.Fatal(err)
	}
	keys = nil
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if !slices.Equal(keys, []string{"logs/2024/06.txt", "logs/readme", "top.txt"}) {
		t.Fatalf("start-after: %v", keys)
	}

	// ListBuckets shows the bucket.
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "list" {
		t.Fatalf("ListBuckets: %+v", lb.Buckets)
	}
}
