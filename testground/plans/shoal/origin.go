package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/origin"
)

// countingOrigin wraps the origin a node reads and counts what the node
// asked of it: GetRange requests and the body bytes actually read, and
// HEADs. Everything else passes through.
type countingOrigin struct {
	node.Origin
	gets, heads, bytes atomic.Int64
}

// originCounts is a snapshot of a countingOrigin.
type originCounts struct{ Gets, Heads, Bytes int64 }

func (o *countingOrigin) counts() originCounts {
	return originCounts{Gets: o.gets.Load(), Heads: o.heads.Load(), Bytes: o.bytes.Load()}
}

// sub returns c - before.
func (c originCounts) sub(before originCounts) originCounts {
	return originCounts{Gets: c.Gets - before.Gets, Heads: c.Heads - before.Heads, Bytes: c.Bytes - before.Bytes}
}

func (o *countingOrigin) HeadObject(ctx context.Context, bucket, key string) (origin.ObjectInfo, error) {
	o.heads.Add(1)
	return o.Origin.HeadObject(ctx, bucket, key)
}

func (o *countingOrigin) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	o.gets.Add(1)
	rc, err := o.Origin.GetRange(ctx, bucket, key, etag, off, n)
	if err != nil {
		return nil, err
	}
	return &countingBody{ReadCloser: rc, n: &o.bytes}, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// openOrigin opens the origin every instance shares: a directory (local:exec;
// the bucket folder is created if missing) or an S3 endpoint.
func openOrigin(ctx context.Context, p params, runID string) (node.Origin, func() error, error) {
	switch p.Origin {
	case originS3:
		o, err := origin.NewS3(ctx, origin.S3Config{
			Endpoint:  p.S3Endpoint,
			Region:    p.S3Region,
			PathStyle: true,
			AccessKey: p.S3AccessKey,
			SecretKey: p.S3SecretKey,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("origin s3: %w", err)
		}
		return o, func() error { return nil }, nil
	default:
		root := sharedOriginDir(p, runID)
		if err := os.MkdirAll(filepath.Join(root, p.Bucket), 0o755); err != nil {
			return nil, nil, fmt.Errorf("origin dir: %w", err)
		}
		o, err := origin.NewDir(origin.DirConfig{Root: root})
		if err != nil {
			return nil, nil, fmt.Errorf("origin dir %s: %w", root, err)
		}
		return o, o.Close, nil
	}
}

// sharedOriginDir is the origin directory of a run: origin_dir, or a
// directory named after the run in the system temp dir (every local:exec
// instance runs on this machine and sees the same one).
func sharedOriginDir(p params, runID string) string {
	if p.OriginDir != "" {
		return p.OriginDir
	}
	return filepath.Join(os.TempDir(), "shoal-testground-"+runID)
}

// objectReader returns size deterministic pseudo-random bytes for seed: the
// same seed gives the same bytes on every instance.
func objectReader(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "shoal-testground-object")
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// seedObject writes object key of size bytes (bytes from seed) to the
// origin and returns its hex sha256.
func seedObject(ctx context.Context, org node.Origin, bucket, key string, seed uint64, size int64) (string, error) {
	h := sha256.New()
	body := io.TeeReader(objectReader(seed, size), h)
	if _, err := org.PutObject(ctx, origin.PutParams{
		Bucket: bucket, Key: key, Body: body, Size: size, ContentType: "application/octet-stream",
	}); err != nil {
		return "", fmt.Errorf("seeding %s/%s: %w", bucket, key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
