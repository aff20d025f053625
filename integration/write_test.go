package integration

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// originBytes reads an object straight from the origin.
func originBytes(t *testing.T, s *testenv.S3, bucket, key string) ([]byte, error) {
	t.Helper()
	b, _, err := get(ctxT(t), s.Client(t), bucket, key, "")
	return b, err
}

func TestPutDeletePassthrough(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "writes", testenv.NodeOptions{MetadataTTL: time.Hour})
	c := n.Client(t)
	ctx := ctxT(t)
	put := func(data []byte) {
		t.Helper()
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("writes"), Key: aws.String("doc.txt"), Body: bytes.NewReader(data),
			ContentType: aws.String("text/plain"), Metadata: map[string]string{"rev": "x"},
		})
		if err != nil {
			t.Fatalf("PUT through the gateway: %v", err)
		}
	}
	v1, v2 := []byte("first version"), bytes.Repeat([]byte("second version "), 1000)
	put(v1)
	if got, err := originBytes(t, s, "writes", "doc.txt"); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("origin after PUT: %q %v", got, err)
	}
	mustGet(t, c, "writes", "doc.txt", v1)
	put(v2) // the long TTL would keep v1 without invalidation
	mustGet(t, c, "writes", "doc.txt", v2)
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("writes"), Key: aws.String("doc.txt")})
	if err != nil || h.Metadata["rev"] != "x" || aws.ToString(h.ContentType) != "text/plain" {
		t.Fatalf("HEAD after PUT: %+v %v", h, err)
	}

	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("writes"), Key: aws.String("doc.txt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := originBytes(t, s, "writes", "doc.txt"); httpStatus(err) != 404 {
		t.Fatalf("origin after DELETE: %v", err)
	}
	_, _, err = get(ctx, c, "writes", "doc.txt", "")
	wantStatus(t, "GET after DELETE", err, 404, "NoSuchKey")
}

func TestMultipartUpload(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "mpu", testenv.NodeOptions{ChunkSize: "1MiB"})
	c := n.Client(t)
	ctx := ctxT(t)
	parts := [][]byte{randomBytes(5*mib, 6), randomBytes(5*mib, 7), randomBytes(123457, 8)}

	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("mpu"), Key: aws.String("big/upload.bin"), ContentType: aws.String("application/x-test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String("mpu"), Key: aws.String("big/upload.bin"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p))),
		})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("mpu"), Key: aws.String("big/upload.bin"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	}); err != nil {
		t.Fatal(err)
	}
	want := bytes.Join(parts, nil)
	if got, err := originBytes(t, s, "mpu", "big/upload.bin"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("origin after multipart: %d bytes, %v", len(got), err)
	}
	mustGet(t, c, "mpu", "big/upload.bin", want)
	got, _, err := get(ctx, c, "mpu", "big/upload.bin", "bytes=5242000-5243000")
	if err != nil || !bytes.Equal(got, want[5242000:5243001]) {
		t.Fatalf("range across the part boundary: %v", err)
	}

	// An aborted upload leaves nothing behind.
	cr2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("aborted"),
		UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("aborted"), UploadId: cr2.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, _, err = get(ctx, c, "mpu", "aborted", "")
	wantStatus(t, "GET aborted upload", err, 404, "NoSuchKey")
}

func TestStreamingPutUnknownLength(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "stream", testenv.NodeOptions{})
	data := randomBytes(3*mib+5, 9)
	// A non-seekable body with UNSIGNED-PAYLOAD, as streaming uploaders
	// send it over plain HTTP (the SDK cannot hash a body it cannot rewind).
	_, err := n.Client(t).PutObject(ctxT(t), &s3.PutObjectInput{
		Bucket: aws.String("stream"), Key: aws.String("piped.bin"),
		Body: io.MultiReader(bytes.NewReader(data[:mib]), bytes.NewReader(data[mib:])), ContentLength: aws.Int64(int64(len(data))),
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := originBytes(t, s, "stream", "piped.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("origin: %d bytes, %v", len(got), err)
	}
}
