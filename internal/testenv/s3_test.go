package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartS3RoundTripAndCounts(t *testing.T) {
	s := StartS3(t)
	s.CreateBucket(t, "bkt")
	data := bytes.Repeat([]byte("0123456789"), 1000)
	s.PutObject(t, "bkt", "dir/obj.bin", data)

	// The object lands in the posix root as a plain file.
	onDisk, err := os.ReadFile(filepath.Join(s.Dir, "bkt", "dir", "obj.bin"))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("posix file: err=%v equal=%v", err, bytes.Equal(onDisk, data))
	}

	s.ResetCounts()
	ctx := context.Background()
	c := s.Client(t)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj.bin")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj.bin"), Range: aws.String("bytes=10-19")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "0123456789" {
		t.Fatalf("ranged get = %q", got)
	}
	out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj.bin")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("full get: %d bytes, want %d", len(got), len(data))
	}
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}

	got1 := s.Counts()
	want := Counts{GetObject: 2, RangedGet: 1, HeadObject: 1, List: 2}
	if got1.GetObject != want.GetObject || got1.RangedGet != want.RangedGet || got1.HeadObject != want.HeadObject ||
		got1.List != want.List || got1.Put != 0 || got1.Other != 0 {
		t.Fatalf("counts = %+v, want %+v", got1, want)
	}
	if got1.BytesOut < int64(len(data)+10) {
		t.Fatalf("BytesOut = %d, want >= %d", got1.BytesOut, len(data)+10)
	}
	s.ResetCounts()
	if c := s.Counts(); c.Total() != 0 || c.BytesOut != 0 {
		t.Fatalf("after reset: %+v", c)
	}
}

func TestStopRefusesThenStartServesSameData(t *testing.T) {
	s := StartS3(t)
	s.CreateBucket(t, "bkt")
	s.PutObject(t, "bkt", "k", []byte("hello"))

	s.Stop()
	addr := s.Endpoint[len("http://"):]
	_, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial stopped proxy: err = %v, want connection refused", err)
	}
	s.Stop() // idempotent

	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	if string(b) != "hello" {
		t.Fatalf("after restart got %q", b)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "s3.go")); err != nil {
		t.Fatalf("module root %s does not contain this package: %v", root, err)
	}
}
