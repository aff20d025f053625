package bench

// Helpers shared by the scenarios: seeding the origin through presigned
// PUTs, presigned GET URLs, verified reads, and the node's tier-hit
// counters.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// presignExpiry outlives any harness run (the whole run is bounded by
// go test -timeout, 40 minutes in `make bench`).
const presignExpiry = 6 * time.Hour

// presigner signs URLs for versitygw's own address, bypassing the counting
// proxy, so the origin baseline pays nothing for our instrumentation.
func presigner(s *testenv.S3) *s3.PresignClient {
	c := s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.DirectEndpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return s3.NewPresignClient(c, func(o *s3.PresignOptions) { o.Expires = presignExpiry })
}

// presignGet returns a presigned GET URL of bucket/key.
func presignGet(ctx context.Context, p *s3.PresignClient, bucket, key string) (string, error) {
	r, err := p.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", fmt.Errorf("presign GET %s/%s: %w", bucket, key, err)
	}
	return r.URL, nil
}

// putPresigned uploads size bytes from body to bucket/key with a presigned
// PUT (unsigned payload), so a large object streams without being held in
// memory or hashed by the SDK.
func putPresigned(ctx context.Context, hc *http.Client, p *s3.PresignClient, bucket, key string, body io.Reader, size int64) error {
	r, err := p.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("presign PUT %s/%s: %w", bucket, key, err)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, io.NopCloser(body))
	if err != nil {
		return err
	}
	req.ContentLength = size
	for k, vs := range r.SignedHeader {
		if !strings.EqualFold(k, "host") {
			req.Header[k] = vs
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s/%s: %w", bucket, key, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s/%s: %s: %s", bucket, key, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// content returns a deterministic pseudo-random stream for key.
func content(key string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte(key)))
}

// verifyRead reads url whole and checks its length and SHA-256.
func verifyRead(ctx context.Context, hc *http.Client, url string, size int64, sum [32]byte) error {
	h := sha256.New()
	if _, err := Get(ctx, hc, url, "", size, make([]byte, readBufSize), h); err != nil {
		return err
	}
	if got := [32]byte(h.Sum(nil)); got != sum {
		return fmt.Errorf("content of %s differs from what was uploaded (sha256 %x, want %x)", redact(url), got[:8], sum[:8])
	}
	return nil
}

// redact drops a URL's query (a presigned URL's signature) for messages.
func redact(url string) string {
	u, _, _ := strings.Cut(url, "?")
	return u
}

// tierHits scrapes shoal_blockstore_hits_total by tier from the node's
// admin /metrics; an empty map when the node does not export it.
func tierHits(ctx context.Context, n *testenv.Node) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.AdminAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	hits := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	const prefix = `shoal_blockstore_hits_total{tier="`
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		tier, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			hits[tier] = v
		}
	}
	return hits, sc.Err()
}

// hitDelta renders after-before per tier, e.g. "memory=256 disk=0".
func hitDelta(before, after map[string]float64) string {
	if len(after) == 0 {
		return "not exported"
	}
	var parts []string
	for _, tier := range slices.Sorted(maps.Keys(after)) {
		parts = append(parts, fmt.Sprintf("%s=%.0f", tier, after[tier]-before[tier]))
	}
	return strings.Join(parts, " ")
}

// warmNode runs read (a full, verified read of the scenario's data through
// the node) until one costs the origin no GET, at most maxWarm times, and
// reports whether it got there.
func warmNode(t *testing.T, s *testenv.S3, what string, read func() error) bool {
	t.Helper()
	const maxWarm = 4
	for i := 1; i <= maxWarm; i++ {
		before := s.Counts().GetObject
		if err := read(); err != nil {
			t.Fatalf("warm %s (read %d): %v", what, i, err)
		}
		got := s.Counts().GetObject - before
		t.Logf("warm %s: read %d cost the origin %d GETs", what, i, got)
		if got == 0 {
			return true
		}
	}
	return false
}
