package integration

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

func TestTTLRevalidation(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	s, n := startS3Node(t, "ttl", testenv.NodeOptions{MetadataTTL: ttl})
	v1, v2 := []byte("version one"), []byte("version two, longer")
	s.PutObject(t, "ttl", "obj", v1)
	c := n.Client(t)

	first := time.Now()
	mustGet(t, c, "ttl", "obj", v1)
	s.PutObject(t, "ttl", "obj", v2)
	got, _, err := get(ctxT(t), c, "ttl", "obj", "")
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(first) < ttl && !bytes.Equal(got, v1) {
		t.Fatalf("within the TTL: got %q, want the cached %q", got, v1)
	}
	time.Sleep(time.Until(first.Add(ttl + 500*time.Millisecond)))
	mustGet(t, c, "ttl", "obj", v2)
	h, err := c.HeadObject(ctxT(t), &s3.HeadObjectInput{Bucket: aws.String("ttl"), Key: aws.String("obj")})
	if err != nil || aws.ToInt64(h.ContentLength) != int64(len(v2)) {
		t.Fatalf("HEAD after TTL: %v %v", h, err)
	}
}

func TestImmutablePrefixNeverRevalidated(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "imm", testenv.NodeOptions{MetadataTTL: time.Second, Immutable: []string{"imm/releases/"}})
	s.PutObject(t, "imm", "releases/v1.tar", []byte("release 1"))
	c := n.Client(t)
	mustGet(t, c, "imm", "releases/v1.tar", []byte("release 1"))
	time.Sleep(1500 * time.Millisecond)
	s.ResetCounts()
	mustGet(t, c, "imm", "releases/v1.tar", []byte("release 1"))
	if got := s.Counts(); got.HeadObject+got.GetObject != 0 {
		t.Fatalf("origin saw %+v for an immutable cached object", got)
	}
}

func TestRestartServesWithoutOrigin(t *testing.T) {
	t.Parallel()
	data := randomBytes(3*mib+12345, 2)
	s, n := startS3Node(t, "restart", testenv.NodeOptions{ChunkSize: "1MiB", MetadataTTL: time.Hour})
	s.PutObject(t, "restart", "obj.bin", data)
	mustGet(t, n.Client(t), "restart", "obj.bin", data)

	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	n.StartAgain(t)
	c := n.Client(t)
	mustGet(t, c, "restart", "obj.bin", data)
	got, _, err := get(ctxT(t), c, "restart", "obj.bin", "bytes=1048000-2100000")
	if err != nil || !bytes.Equal(got, data[1048000:2100001]) {
		t.Fatalf("range after restart: %v", err)
	}
	if cn := s.Counts(); cn.GetObject != 0 {
		t.Fatalf("origin saw %d GetObject after restart, want 0 (%+v)", cn.GetObject, cn)
	}
}

// chunkFiles returns files under dir whose size is exactly size, skipping
// Badger's own files.
func chunkFiles(t *testing.T, dir string, size int64) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, ".vlog"), strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".mem"),
			name == "DISCARD", name == "KEYREGISTRY", name == "MANIFEST", name == "LOCK":
			return nil
		}
		fi, err := d.Info()
		if err == nil && fi.Size() == size {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCorruptChunkOnDisk(t *testing.T) {
	t.Parallel()
	data := randomBytes(3*mib, 3) // three full 1 MiB chunks
	s, n := startS3Node(t, "corrupt", testenv.NodeOptions{ChunkSize: "1MiB", MetadataTTL: time.Hour})
	s.PutObject(t, "corrupt", "obj.bin", data)
	mustGet(t, n.Client(t), "corrupt", "obj.bin", data)
	if err := n.Stop(); err != nil { // drains the SSD write queue
		t.Fatal(err)
	}
	files := chunkFiles(t, n.Opts.DataDir, mib)
	if len(files) != 3 {
		t.Fatalf("found %d chunk files of 1 MiB under the data dir, want 3: %v", len(files), files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.ResetCounts()
	n.StartAgain(t)
	mustGet(t, n.Client(t), "corrupt", "obj.bin", data)
	if cn := s.Counts(); cn.GetObject == 0 {
		t.Fatalf("corrupt chunks served without refetching from the origin (%+v)", cn)
	}
	mustGet(t, n.Client(t), "corrupt", "obj.bin", data)
}

func TestDeadOrigin(t *testing.T) {
	t.Parallel()
	cached, uncached := randomBytes(2*mib+7, 4), []byte("never read before the outage")
	s, n := startS3Node(t, "dead", testenv.NodeOptions{ChunkSize: "1MiB", MetadataTTL: time.Second})
	s.PutObject(t, "dead", "cached.bin", cached)
	s.PutObject(t, "dead", "uncached.txt", uncached)
	c := n.Client(t)
	mustGet(t, c, "dead", "cached.bin", cached)

	s.Stop()
	time.Sleep(1500 * time.Millisecond) // past the metadata TTL: the node must try to revalidate
	mustGet(t, c, "dead", "cached.bin", cached)
	got, _, err := get(ctxT(t), c, "dead", "cached.bin", "bytes=1048570-1048590")
	if err != nil || !bytes.Equal(got, cached[1048570:1048591]) {
		t.Fatalf("range of a cached object with the origin down: %v", err)
	}
	_, _, err = get(ctxT(t), c, "dead", "uncached.txt", "")
	if st := httpStatus(err); st < 500 || st > 599 {
		t.Fatalf("uncached object with the origin down: status %d (%v), want 5xx", st, err)
	}
	if !n.Running() {
		t.Fatal("node died with the origin")
	}

	s.Start()
	mustGet(t, c, "dead", "uncached.txt", uncached)
}

func TestKillDuringLargeRead(t *testing.T) {
	t.Parallel()
	data := randomBytes(24*mib+333, 5)
	s, n := startS3Node(t, "kill", testenv.NodeOptions{ChunkSize: "1MiB", MetadataTTL: time.Hour})
	s.PutObject(t, "kill", "large.bin", data)
	c := n.Client(t)

	out, err := c.GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String("kill"), Key: aws.String("large.bin")})
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 5*mib)
	if _, err := io.ReadFull(out.Body, part); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(part, data[:len(part)]) {
		t.Fatal("first 5 MiB differ")
	}
	n.Kill()
	rest, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err == nil && len(part)+len(rest) == len(data) {
		t.Log("the read completed before the kill took effect")
	} else if err == nil {
		t.Fatalf("read after SIGKILL ended without an error after %d bytes: silent truncation", len(part)+len(rest))
	}

	n.StartAgain(t)
	mustGet(t, n.Client(t), "kill", "large.bin", data)
	got, _, err := get(ctxT(t), n.Client(t), "kill", "large.bin", "bytes=-3000000")
	if err != nil || !bytes.Equal(got, data[len(data)-3000000:]) {
		t.Fatalf("suffix range after restart: %v", err)
	}
}
