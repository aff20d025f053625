package origin_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shoal-cache/shoal/internal/integrity"
	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/origin/origintest"
)

func TestDirConformance(t *testing.T) { origintest.Run(t, dirEnv) }

// TestHealthConformance: Health passes every call through unchanged.
func TestHealthConformance(t *testing.T) {
	origintest.Run(t, func(t *testing.T) origintest.Env {
		e := dirEnv(t)
		h, err := origin.NewHealth(e.Origin, origin.HealthConfig{})
		if err != nil {
			t.Fatal(err)
		}
		e.Origin = h
		return e
	})
}

func dirEnv(t *testing.T) origintest.Env {
	root := t.TempDir()
	d, err := origin.NewDir(origin.DirConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return origintest.Env{
		Origin: d,
		CreateBucket: func(t testing.TB, bucket string) {
			if err := os.Mkdir(filepath.Join(root, bucket), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		Seed: func(t testing.TB, bucket, key string, data []byte) {
			p := filepath.Join(root, bucket, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func newS3Origin(t *testing.T, s *testenv.S3, cfg origin.S3Config, opts ...origin.S3Option) *origin.S3 {
	t.Helper()
	cfg.Endpoint, cfg.Region, cfg.PathStyle = s.Endpoint, s.Region, true
	cfg.AccessKey, cfg.SecretKey = s.AccessKey, s.SecretKey
	o, err := origin.NewS3(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestS3Conformance(t *testing.T) {
	origintest.Run(t, func(t *testing.T) origintest.Env {
		s := testenv.StartS3(t)
		return origintest.Env{
			Origin:       newS3Origin(t, s, origin.S3Config{MaxRetries: 1}),
			CreateBucket: func(t testing.TB, bucket string) { s.CreateBucket(t, bucket) },
			Seed:         func(t testing.TB, bucket, key string, data []byte) { s.PutObject(t, bucket, key, data) },
			SeedChecksum: func(t testing.TB, bucket, key string, data []byte, alg integrity.Algorithm) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				_, err := s.Client(t).PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data),
					ContentLength:     aws.Int64(int64(len(data))),
					ChecksumAlgorithm: types.ChecksumAlgorithm(alg),
				})
				if err != nil {
					t.Fatalf("put %s/%s with %s: %v", bucket, key, alg, err)
				}
			},
		}
	})
}
