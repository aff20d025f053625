package origin_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/origin/origintest"
)

func newDir(t *testing.T, buckets ...string) (*origin.Dir, string) {
	t.Helper()
	root := t.TempDir()
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d, err := origin.NewDir(origin.DirConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, root
}

func TestDirRejectsUnsafeKeys(t *testing.T) {
	d, root := newDir(t, "bkt")
	// A secret next to the root, and a symlink inside the bucket pointing at it.
	outside := filepath.Join(filepath.Dir(root), filepath.Base(root)+"-secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(outside) })
	if err := os.Symlink(outside, filepath.Join(root, "bkt", "link")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"", "../x", "a/../../x", "/abs", "a//b", "a/./b", "dir/", "nul\x00byte", ".shoal-meta/x", "\xff\xfe", strings.Repeat("k", 1025)} {
		if _, err := d.HeadObject(ctx, "bkt", key); !errors.Is(err, origin.ErrInvalidArgument) {
			t.Errorf("HeadObject(%q): %v, want ErrInvalidArgument", key, err)
		}
		if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: key, Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, origin.ErrInvalidArgument) {
			t.Errorf("PutObject(%q): %v, want ErrInvalidArgument", key, err)
		}
	}
	for _, bucket := range []string{"", "..", ".", "a/b", ".hidden"} {
		if _, err := d.GetRange(ctx, bucket, "k", "", 0, -1); !errors.Is(err, origin.ErrInvalidArgument) {
			t.Errorf("GetRange(bucket %q): %v, want ErrInvalidArgument", bucket, err)
		}
	}
	// The symlink leads outside the root: reading through it must fail.
	rc, err := d.GetRange(ctx, "bkt", "link", "", 0, -1)
	if err == nil {
		got, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("read through an escaping symlink: %q", got)
	}
	if _, err := os.ReadFile(outside); err != nil {
		t.Fatalf("outside file disturbed: %v", err)
	}
}

func TestDirPutETagIsMD5AndSidecarIsHidden(t *testing.T) {
	d, root := newDir(t, "bkt")
	ctx := context.Background()
	data := []byte("the quick brown fox")
	info, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "a/fox.txt", Body: bytes.NewReader(data), Size: -1, Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if want := `"` + hex.EncodeToString(sum[:]) + `"`; info.ETag != want {
		t.Fatalf("ETag %s, want MD5 %s", info.ETag, want)
	}
	if info.ContentType != "text/plain; charset=utf-8" {
		t.Fatalf("content type by extension = %q", info.ContentType)
	}
	// The file is a plain file at the obvious place.
	if got, err := os.ReadFile(filepath.Join(root, "bkt", "a", "fox.txt")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("on disk: %q, %v", got, err)
	}
	res, err := d.ListObjects(ctx, origin.ListParams{Bucket: "bkt"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].Key != "a/fox.txt" || res.Entries[0].ETag != info.ETag || len(res.CommonPrefixes) != 0 {
		t.Fatalf("listing shows internal files or lost the ETag: %+v", res)
	}
	bs, _ := d.ListBuckets(ctx)
	if len(bs) != 1 || bs[0].Name != "bkt" {
		t.Fatalf("buckets %+v", bs)
	}
	// Changing the file behind Dir's back invalidates the stored MD5.
	if err := os.WriteFile(filepath.Join(root, "bkt", "a", "fox.txt"), []byte("changed, longer content"), 0o644); err != nil {
		t.Fatal(err)
	}
	head, err := d.HeadObject(ctx, "bkt", "a/fox.txt")
	if err != nil || head.ETag == info.ETag || head.Metadata != nil {
		t.Fatalf("after external change: %+v, %v", head, err)
	}
	// Deleting the last key under a/ removes the empty directory.
	if err := d.DeleteObject(ctx, "bkt", "a/fox.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bkt", "a")); !os.IsNotExist(err) {
		t.Fatalf("empty parent left behind: %v", err)
	}
}

func TestDirPutErrors(t *testing.T) {
	d, _ := newDir(t, "bkt")
	ctx := context.Background()
	if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "short", Body: strings.NewReader("abc"), Size: 10}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("short body: %v", err)
	}
	if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "long", Body: strings.NewReader("abcdef"), Size: 2}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("long body: %v", err)
	}
	if _, err := d.HeadObject(ctx, "bkt", "short"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("failed put left an object: %v", err)
	}
	if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "f", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "f/under-a-file", Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("key below a file: %v", err)
	}
	if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "d/x", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "d", Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("key that is a directory: %v", err)
	}
	if _, err := d.HeadObject(ctx, "bkt", "d"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("HeadObject on a directory: %v, want ErrNotFound", err)
	}
	for _, tok := range []string{"!!!", "bm90LWEtdG9rZW4"} {
		if _, err := d.ListObjects(ctx, origin.ListParams{Bucket: "bkt", ContinuationToken: tok}); !errors.Is(err, origin.ErrInvalidArgument) {
			t.Fatalf("bad token %q: %v", tok, err)
		}
	}
	if _, err := d.ListObjects(ctx, origin.ListParams{Bucket: "bkt", MaxKeys: -1}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("negative MaxKeys: %v", err)
	}
	if _, err := origin.NewDir(origin.DirConfig{}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("empty root: %v", err)
	}
	if _, err := origin.NewDir(origin.DirConfig{Root: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("missing root: %v", err)
	}
}

// TestDirMultipartETagMatchesS3 uploads the same parts to Dir and to a real
// S3 server: the multipart ETags must be identical.
func TestDirMultipartETagMatchesS3(t *testing.T) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, "bkt")
	so := newS3Origin(t, s, origin.S3Config{})
	d, _ := newDir(t, "bkt")
	parts := [][]byte{origintest.RandomBytes(5 << 20), origintest.RandomBytes(5 << 20), []byte("tail")}
	ctx := context.Background()
	var etags []string
	for _, o := range []origintest.Origin{d, so} {
		id, err := o.CreateMultipartUpload(ctx, "bkt", "obj", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var cps []origin.CompletedPart
		for i, p := range parts {
			e, err := o.UploadPart(ctx, "bkt", "obj", id, int32(i+1), bytes.NewReader(p), int64(len(p)))
			if err != nil {
				t.Fatal(err)
			}
			cps = append(cps, origin.CompletedPart{PartNumber: int32(i + 1), ETag: e})
		}
		info, err := o.CompleteMultipartUpload(ctx, "bkt", "obj", id, cps)
		if err != nil {
			t.Fatal(err)
		}
		etags = append(etags, info.ETag)
	}
	if etags[0] != etags[1] {
		t.Fatalf("Dir multipart ETag %s, S3 %s", etags[0], etags[1])
	}
	// Parts smaller than 5 MiB (but the last) are refused, as S3 does.
	id, _ := d.CreateMultipartUpload(ctx, "bkt", "small", "", nil)
	e1, _ := d.UploadPart(ctx, "bkt", "small", id, 1, strings.NewReader("a"), 1)
	e2, _ := d.UploadPart(ctx, "bkt", "small", id, 2, strings.NewReader("b"), 1)
	if _, err := d.CompleteMultipartUpload(ctx, "bkt", "small", id, []origin.CompletedPart{{PartNumber: 1, ETag: e1}, {PartNumber: 2, ETag: e2}}); !errors.Is(err, origin.ErrInvalidArgument) {
		t.Fatalf("small parts: %v", err)
	}
}

// FuzzDirKey: any key either is refused with ErrInvalidArgument or names a
// file inside the bucket that reads back what was written.
func FuzzDirKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "../x", "a/../b", "/x", "x/", ".shoal-tmp/x", "a\x00b", "ü/ß"} {
		f.Add(k)
	}
	root := f.TempDir()
	bucketDir := filepath.Join(root, "bkt")
	if err := os.Mkdir(bucketDir, 0o755); err != nil {
		f.Fatal(err)
	}
	d, err := origin.NewDir(origin.DirConfig{Root: root})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, key string) {
		ctx := context.Background()
		_, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: key, Body: strings.NewReader(key), Size: int64(len(key))})
		if err != nil {
			if !errors.Is(err, origin.ErrInvalidArgument) {
				t.Fatalf("PutObject(%q): %v", key, err)
			}
			return
		}
		p := filepath.Join(bucketDir, filepath.FromSlash(key))
		if rel, err := filepath.Rel(bucketDir, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("key %q maps outside the bucket: %s", key, p)
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != key {
			t.Fatalf("key %q on disk: %q, %v", key, got, err)
		}
		if err := d.DeleteObject(ctx, "bkt", key); err != nil {
			t.Fatal(err)
		}
	})
}
