package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/testenv"
)

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mount mounts b on a fresh directory and unmounts it when the test ends.
func mount(t *testing.T, cfg Config, b Backend) string {
	t.Helper()
	testenv.RequireFUSE(t)
	dir := t.TempDir()
	cfg.Dir = dir
	m, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("mount not ready within 10s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if testenv.IsFUSEMount(dir) {
			t.Errorf("%s still mounted after Run returned", dir)
			testenv.Unmount(dir)
		}
	})
	return dir
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

func TestTreeReadsAndRefusals(t *testing.T) {
	b := newFake()
	big := randBytes(3<<20+12345, 1)
	b.put("data", "models/a.bin", big)
	b.put("data", "models/sub/b.txt", []byte("hello"))
	b.put("data", "top.txt", []byte("top"))
	b.put("other", "x", []byte("x"))
	dir := mount(t, Config{}, b)

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if !e.IsDir() {
			t.Errorf("bucket %s is not a directory", e.Name())
		}
	}
	if !slices.Equal(names, []string{"data", "other"}) {
		t.Errorf("root lists %v, want the buckets", names)
	}
	got, err := os.ReadFile(filepath.Join(dir, "data/models/a.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read a.bin: %d bytes, %v (want %d bytes)", len(got), err, len(big))
	}
	st, err := os.Stat(filepath.Join(dir, "data/models/a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(big)) || st.Mode() != 0o444 || !st.ModTime().Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("stat a.bin: size %d mode %v mtime %v", st.Size(), st.Mode(), st.ModTime())
	}
	if st, err := os.Stat(filepath.Join(dir, "data/models/sub")); err != nil || !st.IsDir() {
		t.Errorf("stat models/sub: %v, %v: want a directory", st, err)
	}
	if s, err := os.ReadFile(filepath.Join(dir, "data/models/sub/b.txt")); err != nil || string(s) != "hello" {
		t.Errorf("read b.txt: %q, %v", s, err)
	}

	_, err = os.Stat(filepath.Join(dir, "data/models/missing"))
	wantErrno(t, "stat missing key", err, syscall.ENOENT)
	_, err = os.Stat(filepath.Join(dir, "nobucket"))
	wantErrno(t, "stat missing bucket", err, syscall.ENOENT)

	p := filepath.Join(dir, "data/top.txt")
	_, err = os.OpenFile(p, os.O_WRONLY, 0)
	wantErrno(t, "open for writing", err, syscall.EROFS)
	_, err = os.OpenFile(p, os.O_RDWR, 0)
	wantErrno(t, "open read-write", err, syscall.EROFS)
	err = os.WriteFile(filepath.Join(dir, "data/new.txt"), []byte("x"), 0o644)
	wantErrno(t, "create", err, syscall.EROFS)
	wantErrno(t, "mkdir", os.Mkdir(filepath.Join(dir, "data/newdir"), 0o755), syscall.EROFS)
	wantErrno(t, "rename", os.Rename(p, filepath.Join(dir, "data/moved.txt")), syscall.EROFS)
	wantErrno(t, "unlink", os.Remove(p), syscall.EROFS)
	wantErrno(t, "truncate", os.Truncate(p, 0), syscall.EROFS)
	wantErrno(t, "chmod", os.Chmod(p, 0o644), syscall.EROFS)
	wantErrno(t, "symlink", os.Symlink("top.txt", filepath.Join(dir, "data/link")), syscall.EROFS)
	if s, err := os.ReadFile(p); err != nil || string(s) != "top" {
		t.Errorf("after the refusals, top.txt reads %q, %v", s, err)
	}
}

// Readdir streams page by page: a directory larger than several pages
// lists every entry once, in order, directories included.
func TestReaddirPages(t *testing.T) {
	b := newFake()
	var want []string
	for i := range 45 {
		k := fmt.Sprintf("f%03d", i)
		b.put("b", "big/"+k, []byte(k))
		want = append(want, k)
	}
	for i := range 4 {
		k := fmt.Sprintf("d%d", i)
		b.put("b", "big/"+k+"/inner", []byte("i"))
		want = append(want, k)
	}
	slices.Sort(want)
	dir := mount(t, Config{Bucket: "b", ListPage: 7}, b)
	ents, err := os.ReadDir(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
		if strings.HasPrefix(e.Name(), "d") != e.IsDir() {
			t.Errorf("%s: IsDir %v", e.Name(), e.IsDir())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("readdir: %v\nwant %v", got, want)
	}
	b.mu.Lock()
	lists := b.lists
	b.mu.Unlock()
	if lists < len(want)/7 {
		t.Errorf("%d listing calls for %d entries in pages of 7", lists, len(want))
	}
	var walked int
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			walked++
		}
		return nil
	})
	if err != nil || walked != 45+4 {
		t.Errorf("walk: %d files, %v; want %d", walked, err, 45+4)
	}
}

// Reads that do not continue each other ask for their own range only;
// a long read in order opens one stream to the end.
func TestReadPattern(t *testing.T) {
	b := newFake()
	data := randBytes(16<<20, 2)
	b.put("b", "f", data)
	dir := mount(t, Config{Bucket: "b"}, b)
	f, err := os.Open(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b.takeRanges()
	for _, off := range []int64{9 << 20, 1 << 20, 14<<20 + 7, 5<<20 - 100} {
		buf := make([]byte, 200)
		if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+200]) {
			t.Fatalf("pread at %d: %v or wrong bytes", off, err)
		}
	}
	rnd := b.takeRanges()
	t.Logf("random preads: backend reads %q", rnd)
	for _, r := range rnd {
		var off, n int64
		fmt.Sscanf(strings.TrimPrefix(r, "f "), "%d+%d", &off, &n)
		if n > DefaultMaxRead {
			t.Errorf("a random pread asked for %s: more than one kernel request", r)
		}
	}

	g, err := os.Open(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var all bytes.Buffer
	if _, err := all.ReadFrom(g); err != nil || !bytes.Equal(all.Bytes(), data) {
		t.Fatalf("sequential read: %v or wrong bytes", err)
	}
	var streams int
	seq := b.takeRanges()
	t.Logf("sequential read: %d backend reads: %q", len(seq), seq)
	for _, r := range seq {
		var off, n int64
		fmt.Sscanf(strings.TrimPrefix(r, "f "), "%d+%d", &off, &n)
		if off+n == int64(len(data)) && n > DefaultMaxRead {
			streams++
		}
	}
	if streams != 1 {
		t.Errorf("a sequential read opened %d streams to the end, want 1", streams)
	}
}

// A failing backend is EIO (not a hang, not ENOENT); a hung one is EIO
// after OpTimeout.
func TestBackendFailures(t *testing.T) {
	b := newFake()
	b.put("b", "ok", []byte("fine"))
	dir := mount(t, Config{Bucket: "b", OpTimeout: 500 * time.Millisecond}, b)
	if s, err := os.ReadFile(filepath.Join(dir, "ok")); err != nil || string(s) != "fine" {
		t.Fatalf("read ok: %q %v", s, err)
	}

	b.mu.Lock()
	b.failAll = fmt.Errorf("origin down: %w", gateway.ErrUnavailable)
	b.mu.Unlock()
	_, err := os.Stat(filepath.Join(dir, "cold"))
	wantErrno(t, "stat with the backend failing", err, syscall.EIO)

	b.mu.Lock()
	b.failAll = nil
	b.hang = make(chan struct{})
	b.mu.Unlock()
	defer close(b.hang)
	start := time.Now()
	_, err = os.ReadDir(filepath.Join(dir, "sub-never-listed"))
	wantErrno(t, "readdir with the backend hung", err, syscall.EIO)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("readdir with the backend hung took %v", took)
	}
}

func TestCheckMountpoint(t *testing.T) {
	tmp := t.TempDir()
	full := filepath.Join(tmp, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "keep.txt"), nil, 0o644)
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		dir, want string
	}{
		{full, "is not empty"},
		{file, "is not a directory"},
		{filepath.Join(tmp, "nope"), "does not exist"},
		{"/proc", "already a mount point"},
	} {
		err := CheckMountpoint(tc.dir)
		if !errors.Is(err, ErrMountpoint) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckMountpoint(%s) = %v, want %q", tc.dir, err, tc.want)
		}
	}
	if err := CheckMountpoint(t.TempDir()); err != nil {
		t.Errorf("empty directory: %v", err)
	}
}

// The kernel keeps a file's page cache across opens while its version is
// unchanged; a new version is read afresh; an open handle stays on its
// version (an error once that version is gone, never the new bytes).
func TestVersionsAndPageCache(t *testing.T) {
	b := newFake()
	v1 := randBytes(3<<20, 3)
	b.put("b", "f", v1)
	b.put("b", "pinned", randBytes(1<<20, 4))
	dir := mount(t, Config{Bucket: "b", MetadataTTL: time.Millisecond}, b)
	p := filepath.Join(dir, "f")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("first read: %v", err)
	}
	b.takeRanges()
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("second read: %v", err)
	}
	if r := b.takeRanges(); len(r) != 0 {
		t.Errorf("second read of an unchanged version asked the backend for %v; want the kernel's page cache", r)
	}

	v2 := randBytes(3<<20, 5)
	b.put("b", "f", v2)
	time.Sleep(5 * time.Millisecond) // past the attribute timeout
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("read after a new version: %v, or stale bytes", err)
	}

	h, err := os.Open(filepath.Join(dir, "pinned"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b.put("b", "pinned", randBytes(1<<20, 6))
	buf := make([]byte, 4096)
	_, err = h.ReadAt(buf, 0)
	wantErrno(t, "read of a handle whose version is gone", err, syscall.EIO)
}

// getdents with a small buffer: the kernel keeps only part of each
// READDIRPLUS batch and asks for the rest again (go-fuse replays it), with
// lookups in between; every entry arrives once.
func TestReaddirSmallBuffers(t *testing.T) {
	b := newFake()
	const n = 3000
	for i := range n {
		b.put("b", fmt.Sprintf("d/k-%05d", i), []byte("x"))
	}
	dir := mount(t, Config{Bucket: "b"}, b)
	fd, err := syscall.Open(filepath.Join(dir, "d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	names := map[string]int{}
	buf := make([]byte, 600)
	for calls := 1; ; calls++ {
		k, err := syscall.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			break
		}
		var ns []string
		_, _, ns = syscall.ParseDirent(buf[:k], -1, ns)
		for _, x := range ns {
			names[x]++
		}
		if calls%7 == 0 {
			os.Stat(filepath.Join(dir, "d", fmt.Sprintf("k-%05d", n-1-calls)))
		}
	}
	for i := range n {
		if c := names[fmt.Sprintf("k-%05d", i)]; c != 1 {
			t.Fatalf("k-%05d listed %d times; %d names in all", i, c, len(names))
		}
	}
}

// Listing pages that fail in the middle of a readdir reply (the request
// interrupted, which Go retries; the origin down for a moment) lose no
// entry later, whichever pages fail and whatever the reader's buffer. With
// some page sizes a page's last entry is the one that did not fit in a
// reply (a reply holds 25 or 51 entries here), so a fetch fails right
// after go-fuse sent that entry at the start of the next reply.
func TestReaddirAfterFailedPages(t *testing.T) {
	for _, cause := range []struct {
		name string
		err  error
	}{
		{"interrupted", context.Canceled},
		{"unavailable", fmt.Errorf("origin: %w", gateway.ErrUnavailable)},
	} {
		for _, bufSize := range []int{600, 8192} {
			for _, every := range []int{2, 3} {
				for page := 20; page <= 60; page += 3 {
					t.Run(fmt.Sprintf("%s/buf%d/every%d/page%d", cause.name, bufSize, every, page), func(t *testing.T) {
						readdirWithFailures(t, cause.err, every, bufSize, page)
					})
				}
			}
		}
	}
}

func readdirWithFailures(t *testing.T, failure error, every, bufSize, pageSize int) {
	b := newFake()
	const n = 700
	for i := range n {
		b.put("b", fmt.Sprintf("d/k-%05d", i), []byte("x"))
	}
	b.failList, b.failListEvery = failure, every
	dir := mount(t, Config{Bucket: "b", ListPage: pageSize}, b)
	fd, err := syscall.Open(filepath.Join(dir, "d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	names := map[string]int{}
	buf := make([]byte, bufSize)
	errs := 0
	for {
		k, err := syscall.Getdents(fd, buf)
		if err != nil {
			// A reader that tries again (Go does on EINTR); the next
			// listing call succeeds.
			if errs++; errs > 1000 {
				t.Fatalf("getdents: %v (error %d)", err, errs)
			}
			continue
		}
		if k == 0 {
			break
		}
		var ns []string
		_, _, ns = syscall.ParseDirent(buf[:k], -1, ns)
		for _, x := range ns {
			names[x]++
		}
	}
	for i := range n {
		if c := names[fmt.Sprintf("k-%05d", i)]; c != 1 {
			t.Fatalf("k-%05d listed %d times (%d names in all, %d errors)", i, c, len(names), errs)
		}
	}
}
