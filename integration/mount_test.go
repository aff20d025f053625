package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// End-to-end tests of the FUSE mount (issue 12): a real node over a real
// S3 server (versitygw), mounted by the node (--mount) or by a separate
// `shoal mount` process, read with ordinary tools.

// mountPoint is a fresh empty directory; a mount left on it by a failed
// test is detached when the test ends.
func mountPoint(t *testing.T) string {
	t.Helper()
	testenv.RequireFUSE(t)
	d := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Unmount(d) })
	return d
}

// startMountedNode starts a node over s with --mount on a fresh directory
// and waits for the mount.
func startMountedNode(t *testing.T, s *testenv.S3, opts testenv.NodeOptions, mountArgs ...string) (*testenv.Node, string) {
	t.Helper()
	dir := mountPoint(t)
	opts.Origin, opts.S3 = "s3", s
	opts.ExtraArgs = append(append(opts.ExtraArgs, "--mount", dir), mountArgs...)
	n := testenv.StartNode(t, opts)
	testenv.WaitMounted(t, dir, 15*time.Second)
	return n, dir
}

// run runs a command and returns its stdout; it fails the test on error.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctxT(t), name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes()
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// Byte-exact reads of multi-chunk objects with cat, cmp, cp and dd; a
// second read served by the caches (no origin byte); random preads across
// chunk boundaries fetch only the chunks they cover; mmap; Python's
// open().read(); attributes from the object's metadata.
func TestMountReadsThroughTheNode(t *testing.T) {
	t.Parallel()
	const chunk = mib
	s := testenv.StartS3(t)
	s.CreateBucket(t, "data")
	big := randomBytes(9*chunk+12345, 1201) // 10 chunks, the last one short
	s.PutObject(t, "data", "models/big.bin", big)
	rnd := randomBytes(16*chunk, 1202)
	s.PutObject(t, "data", "models/random.bin", rnd)
	s.PutObject(t, "data", "models/tokenizer/vocab.txt", []byte("hello\nworld\n"))
	n, dir := startMountedNode(t, s, testenv.NodeOptions{ChunkSize: "1MiB", MemCache: "256MiB", DiskCache: "256MiB"})

	want := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(want, big, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data/models/big.bin")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(big)) || st.Mode() != 0o444 || st.IsDir() {
		t.Errorf("stat big.bin: size %d mode %v, want %d and -r--r--r--", st.Size(), st.Mode(), len(big))
	}
	if d := time.Since(st.ModTime()); d < 0 || d > time.Hour {
		t.Errorf("big.bin mtime %v: want the object's Last-Modified (just now)", st.ModTime())
	}

	s.ResetCounts()
	if got := run(t, "cat", path); !bytes.Equal(got, big) {
		t.Fatalf("cat: %d bytes, want %d; %s", len(got), len(big), firstDiff(got, big))
	}
	cold := s.Counts()
	t.Logf("cold cat of %d bytes: origin GETs %d, bytes %d", len(big), cold.GetObject, cold.BytesOut)
	if cold.BytesOut < int64(len(big)) {
		t.Errorf("cold cat: the origin sent %d bytes for a %d-byte object", cold.BytesOut, len(big))
	}

	// The second read: cmp through the page cache, then dd with O_DIRECT,
	// which bypasses the kernel's cache and is served by the node's.
	s.ResetCounts()
	run(t, "cmp", path, want)
	if got := run(t, "dd", "if="+path, "iflag=direct", "bs=1M", "status=none"); !bytes.Equal(got, big) {
		t.Fatalf("dd iflag=direct: %d bytes, want %d; %s", len(got), len(big), firstDiff(got, big))
	}
	cp := filepath.Join(t.TempDir(), "copy.bin")
	run(t, "cp", path, cp)
	run(t, "cmp", cp, want)
	if warm := s.Counts(); warm.GetObject != 0 || warm.BytesOut != 0 {
		t.Errorf("second reads of a cached object: origin GETs %d, bytes %d; want none", warm.GetObject, warm.BytesOut)
	}

	// Random preads across chunk boundaries: only the covered chunks
	// leave the origin.
	rpath := filepath.Join(dir, "data/models/random.bin")
	if _, err := os.Stat(rpath); err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	f, err := os.Open(rpath)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[int64]bool{}
	for _, boundary := range []int64{3, 7, 12} {
		off := boundary*chunk - 100
		buf := make([]byte, 200)
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("pread at %d: %v", off, err)
		}
		if !bytes.Equal(buf, rnd[off:off+200]) {
			t.Fatalf("pread at %d: wrong bytes", off)
		}
		covered[boundary-1], covered[boundary] = true, true
	}
	f.Close()
	rc := s.Counts()
	t.Logf("3 preads of 200 bytes across chunk boundaries: origin GETs %d (ranged %d), bytes %d", rc.GetObject, rc.RangedGet, rc.BytesOut)
	if want := int64(len(covered)) * chunk; rc.BytesOut != want || rc.GetObject != int64(len(covered)) {
		t.Errorf("random preads: origin sent %d bytes in %d GETs, want the %d covered chunks (%d bytes)",
			rc.BytesOut, rc.GetObject, len(covered), want)
	}

	// mmap, as safetensors and numpy.memmap read.
	mf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mm, err := syscall.Mmap(int(mf.Fd()), 0, len(big), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	if !bytes.Equal(mm[5*chunk-10:5*chunk+10], big[5*chunk-10:5*chunk+10]) || !bytes.Equal(mm, big) {
		t.Error("mmap: the mapped bytes differ from the object")
	}
	syscall.Munmap(mm)
	mf.Close()

	if py, err := exec.LookPath("python3"); err == nil {
		script := `import hashlib,sys
d = open(sys.argv[1], 'rb').read()
print(len(d), hashlib.sha256(d).hexdigest())
print(open(sys.argv[2]).read(), end='')`
		out := run(t, py, "-c", script, path, filepath.Join(dir, "data/models/tokenizer/vocab.txt"))
		wantOut := fmt.Sprintf("%d %x\nhello\nworld\n", len(big), sha256sum(big))
		if string(out) != wantOut {
			t.Errorf("python3 open().read(): %q, want %q", out, wantOut)
		}
	} else {
		t.Log("python3 not installed: Python's open().read() not tried")
	}

	// tar reads the tree.
	tarOut := run(t, "tar", "-cf", "-", "-C", filepath.Join(dir, "data"), "models/tokenizer")
	if !bytes.Contains(tarOut, []byte("hello\nworld\n")) {
		t.Error("tar of models/tokenizer lacks vocab.txt's bytes")
	}
	_ = n
}

// A prefix with more keys than one listing page: readdir streams every
// page; filepath.WalkDir and Python's os.walk see every key once.
func TestMountWalksAPrefixLargerThanAPage(t *testing.T) {
	t.Parallel()
	const keys = 1234 // S3 pages hold 1,000
	s := testenv.StartS3(t)
	s.CreateBucket(t, "walk")
	c := s.Client(t)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				k := fmt.Sprintf("set/shard-%02d/item-%05d.json", i%3, i)
				if i%5 == 0 {
					k = fmt.Sprintf("set/item-%05d.json", i)
				}
				putObject(t, c, "walk", k, []byte(k))
			}
		})
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()
	_, dir := startMountedNode(t, s, testenv.NodeOptions{}, "--mount-bucket", "walk")

	files := 0
	dirs := 0
	err := filepath.WalkDir(filepath.Join(dir, "set"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs++
			return nil
		}
		files++
		if files%200 == 0 { // and the bytes are the key
			rel, _ := filepath.Rel(dir, p)
			if b, err := os.ReadFile(p); err != nil || string(b) != rel {
				t.Errorf("%s reads %q, %v; want %q", p, b, err, rel)
			}
		}
		return nil
	})
	if err != nil || files != keys || dirs != 4 {
		t.Fatalf("WalkDir: %d files in %d directories, %v; want %d in 4", files, dirs, err, keys)
	}
	top, err := os.ReadDir(filepath.Join(dir, "set"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (keys+4)/5 + 3; len(top) != want {
		t.Errorf("readdir set/: %d entries, want %d", len(top), want)
	}
	if py, err := exec.LookPath("python3"); err == nil {
		out := run(t, py, "-c", `import os,sys
n = sum(len(fs) for _, _, fs in os.walk(sys.argv[1]))
print(n)`, filepath.Join(dir, "set"))
		if got := strings.TrimSpace(string(out)); got != fmt.Sprint(keys) {
			t.Errorf("python3 os.walk: %s files, want %d", got, keys)
		}
	} else {
		t.Log("python3 not installed: os.walk not tried")
	}
}

// Read-only and says so; missing keys are ENOENT; the mount point must be
// empty and not mounted already.
func TestMountRefusals(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3(t)
	s.CreateBucket(t, "rofs")
	s.PutObject(t, "rofs", "dir/file.txt", []byte("keep me"))
	n, dir := startMountedNode(t, s, testenv.NodeOptions{})
	p := filepath.Join(dir, "rofs/dir/file.txt")

	_, err := os.OpenFile(p, os.O_WRONLY, 0)
	wantErrno(t, "open for writing", err, syscall.EROFS)
	_, err = os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	wantErrno(t, "open for appending", err, syscall.EROFS)
	wantErrno(t, "create", os.WriteFile(filepath.Join(dir, "rofs/dir/new.txt"), []byte("x"), 0o644), syscall.EROFS)
	wantErrno(t, "mkdir", os.Mkdir(filepath.Join(dir, "rofs/newdir"), 0o755), syscall.EROFS)
	wantErrno(t, "rename", os.Rename(p, filepath.Join(dir, "rofs/dir/moved.txt")), syscall.EROFS)
	wantErrno(t, "unlink", os.Remove(p), syscall.EROFS)
	wantErrno(t, "rmdir", os.Remove(filepath.Join(dir, "rofs/dir")), syscall.EROFS)
	wantErrno(t, "truncate", os.Truncate(p, 0), syscall.EROFS)
	_, err = os.Stat(filepath.Join(dir, "rofs/dir/missing.txt"))
	wantErrno(t, "stat of a missing key", err, syscall.ENOENT)
	_, err = os.Open(filepath.Join(dir, "no-such-bucket/x"))
	wantErrno(t, "open in a missing bucket", err, syscall.ENOENT)
	if b, err := os.ReadFile(p); err != nil || string(b) != "keep me" {
		t.Errorf("after the refusals: %q, %v", b, err)
	}
	if b, _, err := get(ctxT(t), s.Client(t), "rofs", "dir/file.txt", ""); err != nil || string(b) != "keep me" {
		t.Errorf("the origin's object after the refusals: %q, %v", b, err)
	}

	// A non-empty directory: refused before the node starts anything.
	full := filepath.Join(t.TempDir(), "full")
	os.Mkdir(full, 0o755)
	writeFile(t, filepath.Join(full, "precious.txt"), "x")
	_, stderr, code := testenv.RunShoal(t, nil, "node", "--origin", "file://"+t.TempDir(), "--data-dir", t.TempDir(),
		"--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--mount", full)
	if code != 2 || !strings.Contains(stderr, "is not empty") || !strings.Contains(stderr, "precious.txt") {
		t.Errorf("node --mount on a non-empty directory: exit %d, %q; want 2 and a message naming what it holds", code, stderr)
	}
	// A directory mounted already (the node's own mount).
	_, stderr, code = testenv.RunShoal(t, nil, "mount", dir, "--admin", n.AdminAddr)
	if code != 2 || !strings.Contains(stderr, "already a mount point") {
		t.Errorf("shoal mount on a mounted directory: exit %d, %q; want 2, already a mount point", code, stderr)
	}
}

// The origin goes away: cached objects keep reading; an uncached object
// is EIO with a log line naming the key; a stuck origin gives ls an EIO
// in bounded time.
func TestMountOriginOutage(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3(t)
	s.CreateBucket(t, "out")
	cached := randomBytes(3*mib+7, 1203)
	s.PutObject(t, "out", "cached.bin", cached)
	s.PutObject(t, "out", "seen-not-read.bin", randomBytes(2*mib, 1204))
	s.PutObject(t, "out", "never-seen.bin", []byte("cold"))
	s.PutObject(t, "out", "sub/deep.txt", []byte("deep"))
	n, dir := startMountedNode(t, s, testenv.NodeOptions{ChunkSize: "1MiB", MetadataTTL: 10 * time.Minute,
		ExtraArgs: []string{"--origin-wait", "2s", "--s3-header-timeout", "2s", "--s3-retry-budget", "4s", "--s3-max-retries", "1"}},
		"--mount-bucket", "out")
	cpath := filepath.Join(dir, "cached.bin")
	if got := run(t, "cat", cpath); !bytes.Equal(got, cached) {
		t.Fatal("cat cached.bin: wrong bytes")
	}
	if _, err := os.Stat(filepath.Join(dir, "seen-not-read.bin")); err != nil {
		t.Fatal(err)
	}

	s.Stop()
	t.Cleanup(s.Start)
	// O_DIRECT: the node serves these bytes, not the kernel's page cache.
	if got := run(t, "dd", "if="+cpath, "iflag=direct", "bs=1M", "status=none"); !bytes.Equal(got, cached) {
		t.Fatalf("cached object with the origin down: %d bytes; %s", len(got), firstDiff(got, cached))
	}
	start := time.Now()
	_, err := os.ReadFile(filepath.Join(dir, "seen-not-read.bin"))
	wantErrno(t, "read of an uncached object with the origin down", err, syscall.EIO)
	_, err = os.ReadFile(filepath.Join(dir, "never-seen.bin"))
	wantErrno(t, "open of a never-seen object with the origin down", err, syscall.EIO)
	t.Logf("uncached reads with the origin down failed after %v", time.Since(start).Round(time.Millisecond))
	for _, key := range []string{"seen-not-read.bin", "never-seen.bin"} {
		if !waitLog(n, `msg="mount: `, "key="+key, 5*time.Second) {
			t.Errorf("no mount log line names %s", key)
		}
	}

	// A stuck origin: accepts connections, never answers.
	s.Start()
	s.Hang()
	defer s.Unhang()
	start = time.Now()
	_, err = os.ReadDir(filepath.Join(dir, "sub"))
	took := time.Since(start)
	wantErrno(t, "ls with the origin hung", err, syscall.EIO)
	t.Logf("ls of an unlisted prefix with the origin hung: %v after %v", err, took.Round(time.Millisecond))
	if took > 45*time.Second {
		t.Errorf("ls with the origin hung took %v", took)
	}
	if got := run(t, "dd", "if="+cpath, "iflag=direct", "bs=1M", "status=none"); !bytes.Equal(got, cached) {
		t.Fatal("cached object with the origin hung: wrong bytes")
	}
}

// waitLog waits for a line of n's log that holds both a and b.
func waitLog(n *testenv.Node, a, b string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(n.Log(), "\n") {
			if strings.Contains(line, a) && strings.Contains(line, b) {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// SIGTERM and SIGINT unmount: the node's own mount, and a separate `shoal
// mount` process reading through the node's gateway (even with a file open).
func TestMountLifecycle(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3(t)
	s.CreateBucket(t, "life")
	data := randomBytes(5*mib+3, 1205)
	s.PutObject(t, "life", "obj.bin", data)
	n, dir := startMountedNode(t, s, testenv.NodeOptions{ChunkSize: "1MiB"})
	if got, err := os.ReadFile(filepath.Join(dir, "life/obj.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read through the node's mount: %v", err)
	}

	// The separate process, beside the node.
	dir2 := mountPoint(t)
	cmd := exec.Command(testenv.ShoalBinary(t), "mount", dir2, "--admin", n.AdminAddr, "--bucket", "life")
	var logb bytes.Buffer
	cmd.Stderr = &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("shoal mount log:\n%s", logb.String())
		}
	})
	testenv.WaitMounted(t, dir2, 15*time.Second)
	s.ResetCounts()
	got := run(t, "cat", filepath.Join(dir2, "obj.bin"))
	if !bytes.Equal(got, data) {
		t.Fatalf("cat through shoal mount: %d bytes; %s", len(got), firstDiff(got, data))
	}
	if c := s.Counts(); c.GetObject != 0 {
		t.Errorf("shoal mount of an object the node holds: %d origin GETs, want 0 (it reads through the node)", c.GetObject)
	}
	open, err := os.Open(filepath.Join(dir2, "obj.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	cmd.Process.Signal(syscall.SIGINT) // Ctrl-C; the node below gets SIGTERM
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("shoal mount after SIGINT: %v\n%s", err, logb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("shoal mount still running 20s after SIGINT\n%s", logb.String())
	}
	if testenv.IsFUSEMount(dir2) {
		t.Errorf("%s still mounted after shoal mount exited", dir2)
	}

	if err := n.Stop(); err != nil {
		t.Errorf("node stop: %v", err)
	}
	if testenv.IsFUSEMount(dir) {
		t.Errorf("%s still mounted after the node stopped (SIGTERM)", dir)
	}
	if !strings.Contains(n.Log(), `msg=unmounted`) {
		t.Errorf("the node logged no unmount")
	}
}

// A node in a 3-node cluster reads, through its mount, an object another
// node holds: from peers, not the origin.
func TestMountInClusterReadsFromPeers(t *testing.T) {
	t.Parallel()
	data := randomBytes(6*mib+77, 1206)
	s, nodes := startS3Cluster(t, "clu", 2, clusterOpts())
	s.PutObject(t, "clu", "shared.bin", data)
	mustGet(t, nodes[0].Client(t), "clu", "shared.bin", data)

	opts := clusterOpts()
	opts.SwarmKeyFile = nodes[0].Opts.SwarmKeyFile
	for _, nd := range nodes {
		opts.Bootstrap = append(opts.Bootstrap, nd.P2PAddrs...)
	}
	c, dir := startMountedNode(t, s, opts)
	testenv.WaitMembers(t, append(nodes, c)...)

	s.ResetCounts()
	got := run(t, "cat", filepath.Join(dir, "clu/shared.bin"))
	if !bytes.Equal(got, data) {
		t.Fatalf("cat through the third node's mount: %d bytes; %s", len(got), firstDiff(got, data))
	}
	cn := s.Counts()
	t.Logf("mount read on the third node: origin GETs %d, HEADs %d, lists %d", cn.GetObject, cn.HeadObject, cn.List)
	if cn.GetObject != 0 {
		t.Errorf("the third node's mount sent %d GETs to the origin for an object its peers hold; want 0", cn.GetObject)
	}
}

func sha256sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// putObject uploads through client c (safe from several goroutines).
func putObject(t *testing.T, c *s3.Client, bucket, key string, data []byte) {
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Errorf("put %s/%s: %v", bucket, key, err)
	}
}

// --mount-allow-other: another user reads the mount; without it, the
// kernel keeps everyone but the mounting user out.
func TestMountAllowOther(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a reader as another user")
	}
	s := testenv.StartS3(t)
	s.CreateBucket(t, "other")
	s.PutObject(t, "other", "f.txt", []byte("shared"))
	_, open := startMountedNode(t, s, testenv.NodeOptions{}, "--mount-allow-other")
	_, closed := startMountedNode(t, s, testenv.NodeOptions{})
	for _, d := range []string{open, closed} {
		// The test's temporary directories are 0700: let the other user
		// reach the mount points.
		for p := filepath.Dir(d); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
			os.Chmod(p, 0o755)
		}
	}
	asNobody := func(path string) ([]byte, error) {
		cmd := exec.CommandContext(ctxT(t), "cat", path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd.CombinedOutput()
	}
	if out, err := asNobody(filepath.Join(open, "other/f.txt")); err != nil || string(out) != "shared" {
		t.Errorf("another user with --mount-allow-other: %q, %v", out, err)
	}
	if out, err := asNobody(filepath.Join(closed, "other/f.txt")); err == nil || !strings.Contains(string(out), "ermission denied") {
		t.Errorf("another user without --mount-allow-other: %q, %v; want permission denied", out, err)
	}
}

// shoal mount beside a node whose gateway requires signed requests.
func TestMountSeparateProcessSigned(t *testing.T) {
	t.Parallel()
	s := testenv.StartS3(t)
	s.CreateBucket(t, "signed")
	data := randomBytes(2*mib+5, 1207)
	s.PutObject(t, "signed", "obj.bin", data)
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "s3", S3: s, AccessKey: "mount-key", SecretKey: "mount-secret-0123456789"})
	dir := mountPoint(t)
	cmd := exec.Command(testenv.ShoalBinary(t), "mount", dir, "--admin", n.AdminAddr, "--access-key", "mount-key")
	cmd.Env = append(os.Environ(), "SHOAL_GATEWAY_SECRET_KEY=mount-secret-0123456789")
	var logb bytes.Buffer
	cmd.Stderr = &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("shoal mount log:\n%s", logb.String())
		}
	})
	testenv.WaitMounted(t, dir, 15*time.Second)
	if got := run(t, "cat", filepath.Join(dir, "signed/obj.bin")); !bytes.Equal(got, data) {
		t.Fatalf("cat through a signed shoal mount: %d bytes; %s", len(got), firstDiff(got, data))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("shoal mount after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shoal mount still running 20s after SIGTERM")
	}
}

// A user other than root mounts through fusermount3 (the setuid helper of
// package fuse3), reads, and unmounts on SIGTERM.
func TestMountAsUser(t *testing.T) {
	t.Parallel()
	testenv.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the mount as another user")
	}
	if st, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm()&0o006 != 0o006 {
		t.Skipf("/dev/fuse is not open to other users here (mode %v; distributions ship 0666): a user other than root cannot mount", st.Mode().Perm())
	}
	s := testenv.StartS3(t)
	s.CreateBucket(t, "user")
	data := randomBytes(3*mib+1, 1208)
	s.PutObject(t, "user", "obj.bin", data)
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "s3", S3: s})
	dir := mountPoint(t)
	for p := filepath.Dir(dir); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.ShoalBinary(t), "mount", dir, "--admin", n.AdminAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var logb bytes.Buffer
	cmd.Stderr = &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("shoal mount log:\n%s", logb.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !testenv.IsFUSEMount(dir) {
		select {
		case err := <-exited:
			t.Fatalf("shoal mount as uid 65534 exited: %v\n%s", err, logb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted within 15s\n%s", logb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	read := exec.CommandContext(ctxT(t), "cat", filepath.Join(dir, "user/obj.bin"))
	read.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := read.Output()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cat as the mounting user: %d bytes, %v", len(got), err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("shoal mount after SIGTERM: %v\n%s", err, logb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shoal mount still running 20s after SIGTERM")
	}
	if testenv.IsFUSEMount(dir) {
		t.Errorf("%s still mounted after the user's shoal mount exited", dir)
	}
}
