package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/shoal-cache/shoal/internal/testenv"
)

const mib = 1 << 20

// testTimeout bounds each request a test makes; a hung node fails the test
// instead of the whole run.
const testTimeout = 60 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// startS3Node starts versitygw with one bucket and a node in front of it.
func startS3Node(t *testing.T, bucket string, opts testenv.NodeOptions) (*testenv.S3, *testenv.Node) {
	t.Helper()
	s := testenv.StartS3(t)
	s.CreateBucket(t, bucket)
	opts.Origin = "s3"
	opts.S3 = s
	return s, testenv.StartNode(t, opts)
}

// get reads an object (optionally a range) through the client.
func get(ctx context.Context, c *s3.Client, bucket, key, rng string) ([]byte, *s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, out, err
}

// mustGet reads a whole object and fails the test unless it equals want.
func mustGet(t *testing.T, c *s3.Client, bucket, key string, want []byte) {
	t.Helper()
	got, _, err := get(ctxT(t), c, bucket, key, "")
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GET %s/%s: %d bytes, want %d; %s", bucket, key, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	if len(got) != len(want) {
		return "one is a prefix of the other"
	}
	return "equal"
}

// httpStatus returns the HTTP status of an SDK error (0 if none).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// errorCode returns the S3 error code of an SDK error ("" if none).
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wantStatus fails unless err is an S3 error with the given status (and
// code, when code is not empty).
func wantStatus(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %d %s", what, status, code)
	}
	if got := httpStatus(err); got != status {
		t.Fatalf("%s: status %d (%v), want %d", what, got, err, status)
	}
	if code != "" && errorCode(err) != code {
		t.Fatalf("%s: code %q (%v), want %q", what, errorCode(err), err, code)
	}
}
