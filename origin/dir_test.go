package origin_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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
	if head, err := d.HeadObject(ctx, "bkt", "a/fox.txt"); err != nil || !head.ETagIsMD5 || head.ETag != info.ETag {
		t.Fatalf("HEAD after put: %+v, %v: want the MD5 ETag, flagged as such", head, err)
	}
	// Changing the file behind Dir's back invalidates the stored MD5.
	if err := os.WriteFile(filepath.Join(root, "bkt", "a", "fox.txt"), []byte("changed, longer content"), 0o644); err != nil {
		t.Fatal(err)
	}
	head, err := d.HeadObject(ctx, "bkt", "a/fox.txt")
	if err != nil || head.ETag == info.ETag || head.Metadata != nil || head.ETagIsMD5 {
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

// rewriteInPlace overwrites n bytes at off of the file at p without
// truncating it, then sets its mtime back: size and mtime stay what they
// were, as after a careless copy tool or an in-place editor.
func rewriteInPlace(t *testing.T, p string, off int64, data []byte) {
	t.Helper()
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("test setup: size/mtime changed: %d %v -> %d %v", before.Size(), before.ModTime(), after.Size(), after.ModTime())
	}
}

// TestDirDetectsInPlaceRewriteKeepingSizeAndMtime: a file rewritten in
// place with its size and mtime restored is a new version: a new ETag, and
// a read pinned to the old ETag fails instead of returning new bytes. The
// rewritten bytes lie in the middle of the file, outside what the
// fingerprint reads, so the detection rests on ctime.
func TestDirDetectsInPlaceRewriteKeepingSizeAndMtime(t *testing.T) {
	ctx := context.Background()
	for _, throughDir := range []bool{false, true} {
		name := map[bool]string{false: "external file", true: "written through Dir"}[throughDir]
		t.Run(name, func(t *testing.T) {
			d, root := newDir(t, "bkt")
			p := filepath.Join(root, "bkt", "data.bin")
			data := origintest.RandomBytes(1 << 20)
			if throughDir {
				if _, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "data.bin", Body: bytes.NewReader(data), Size: int64(len(data)),
					ContentType: "application/x-test"}); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			v1, err := d.HeadObject(ctx, "bkt", "data.bin")
			if err != nil {
				t.Fatal(err)
			}
			if again, err := d.HeadObject(ctx, "bkt", "data.bin"); err != nil || again.ETag != v1.ETag {
				t.Fatalf("ETag of an unchanged file moved: %s then %s (%v)", v1.ETag, again.ETag, err)
			}

			changed := bytes.Repeat([]byte{0xAB}, 4096)
			rewriteInPlace(t, p, 500_000, changed)

			v2, err := d.HeadObject(ctx, "bkt", "data.bin")
			if err != nil {
				t.Fatal(err)
			}
			if v2.ETag == v1.ETag {
				t.Fatalf("in-place rewrite keeping size and mtime not detected: ETag stays %s", v1.ETag)
			}
			if v2.Size != v1.Size || !v2.LastModified.Equal(v1.LastModified) {
				t.Fatalf("size/mtime differ: %+v vs %+v", v1, v2)
			}
			if throughDir && (v2.ContentType == "application/x-test") {
				t.Fatalf("metadata of the old version kept for the new one: %+v", v2)
			}
			if _, err := readAll(d, "bkt", "data.bin", v1.ETag, 0, -1); !errors.Is(err, origin.ErrPreconditionFailed) {
				t.Fatalf("GetRange pinned to the old ETag: %v, want ErrPreconditionFailed", err)
			}
			got, err := readAll(d, "bkt", "data.bin", v2.ETag, 0, -1)
			want := slices.Clone(data)
			copy(want[500_000:], changed)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("GetRange with the new ETag: %d bytes, equal %v, %v", len(got), bytes.Equal(got, want), err)
			}
		})
	}
}

// TestDirBodyFailsWhenFileChangesMidRead: a body opened on one version
// fails once the file is rewritten underneath it, rather than handing out
// bytes of the next version and ending cleanly.
func TestDirBodyFailsWhenFileChangesMidRead(t *testing.T) {
	ctx := context.Background()
	for _, etag := range []bool{true, false} {
		t.Run(map[bool]string{true: "with If-Match", false: "without"}[etag], func(t *testing.T) {
			d, root := newDir(t, "bkt")
			p := filepath.Join(root, "bkt", "f")
			data := origintest.RandomBytes(1 << 20)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			info, err := d.HeadObject(ctx, "bkt", "f")
			if err != nil {
				t.Fatal(err)
			}
			pin := ""
			if etag {
				pin = info.ETag
			}
			rc, err := d.GetRange(ctx, "bkt", "f", pin, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			head := make([]byte, 1000)
			if _, err := io.ReadFull(rc, head); err != nil || !bytes.Equal(head, data[:1000]) {
				t.Fatalf("first bytes: %v", err)
			}
			rewriteInPlace(t, p, 600_000, bytes.Repeat([]byte{1}, 1000))
			rest, err := io.ReadAll(rc)
			if !errors.Is(err, origin.ErrPreconditionFailed) {
				t.Fatalf("reading on after the rewrite: %d bytes, err %v, want ErrPreconditionFailed", len(rest), err)
			}
		})
	}
}

// TestDirOldSidecarKeepsETag: a sidecar written before ctime and the
// fingerprint were recorded still gives the object its MD5 ETag and
// metadata, and is brought up to date.
func TestDirOldSidecarKeepsETag(t *testing.T) {
	ctx := context.Background()
	d, root := newDir(t, "bkt")
	data := []byte("written before the upgrade")
	put, err := d.PutObject(ctx, origin.PutParams{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)),
		Metadata: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("k"))
	h := hex.EncodeToString(sum[:])
	sidecar := filepath.Join(root, "bkt", ".shoal-meta", h[:2], h+".json")
	raw, err := os.ReadFile(sidecar)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage // raw: nanosecond times do not fit a float64
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["ctime_ns"]; !ok {
		t.Fatalf("sidecar has no ctime: %s", raw)
	}
	delete(m, "ctime_ns")
	delete(m, "fp")
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(sidecar, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	head, err := d.HeadObject(ctx, "bkt", "k")
	if err != nil || head.ETag != put.ETag || head.Metadata["a"] != "b" {
		t.Fatalf("old sidecar not honoured: %+v, %v (put ETag %s)", head, err, put.ETag)
	}
	if raw, _ := os.ReadFile(sidecar); !bytes.Contains(raw, []byte(`"ctime_ns"`)) {
		t.Fatalf("old sidecar not brought up to date: %s", raw)
	}
	// From then on the full version is checked.
	rewriteInPlace(t, filepath.Join(root, "bkt", "k"), 0, []byte("W"))
	if head, err := d.HeadObject(ctx, "bkt", "k"); err != nil || head.ETag == put.ETag {
		t.Fatalf("rewrite after the upgrade: %+v, %v", head, err)
	}
}

func readAll(o origintest.Origin, bucket, key, etag string, off, n int64) ([]byte, error) {
	rc, err := o.GetRange(context.Background(), bucket, key, etag, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestDirNamedPipeIsNoObject: a FIFO in the tree is not an object, and
// looking at it does not block (opening one would wait for a writer).
func TestDirNamedPipeIsNoObject(t *testing.T) {
	d, root := newDir(t, "bkt")
	if err := syscall.Mkfifo(filepath.Join(root, "bkt", "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	ctx := context.Background()
	if _, err := d.HeadObject(ctx, "bkt", "pipe"); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("HeadObject on a FIFO: %v, want ErrNotFound", err)
	}
	if _, err := d.GetRange(ctx, "bkt", "pipe", "", 0, -1); !errors.Is(err, origin.ErrNotFound) {
		t.Fatalf("GetRange on a FIFO: %v, want ErrNotFound", err)
	}
	if _, err := d.ListObjects(ctx, origin.ListParams{Bucket: "bkt"}); err != nil {
		t.Fatal(err)
	}
}
