package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/shoal-cache/shoal/fusefs"
	"github.com/shoal-cache/shoal/internal/testenv"
)

// M1 settings: 4 KiB random reads per run, and the key count of the
// listing figure (BENCHMARKS.md and issue 12).
const (
	m1RandomReads = 2000
	m1ListKeys    = 10000
	m1ReadBuf     = 1 << 20 // what cp and Python use on this mount (st_blksize)
)

// runM1 measures M1: the node's FUSE mount against its own gateway on the
// same node, with the object in the node's memory tier. The kernel's page
// cache of the file is dropped before every mount run (fadvise DONTNEED),
// so each run goes through FUSE to the node. Also: 4 KiB random reads per
// second with p99; the time to list a prefix of 10,000 keys; and, as the
// reference point of mountpoint-s3's approach, a mount in this process
// that reads straight from the origin server (fusefs.Remote at versitygw).
func runM1(t *testing.T, cfg Settings, rp *report) {
	testenv.RequireFUSE(t)
	ctx := t.Context()
	size := cfg.Size
	s := testenv.StartS3(t)
	s.CreateBucket(t, benchBucket)
	pre := presigner(s)
	hc := NewClient(8, s1ReadTimeout)
	defer hc.CloseIdleConnections()

	const key = "m1/object"
	h := sha256.New()
	up := NewClient(1, 10*time.Minute)
	defer up.CloseIdleConnections()
	if err := putPresigned(ctx, up, pre, benchBucket, key, io.TeeReader(io.LimitReader(content(key), size), h), size); err != nil {
		t.Fatalf("seed M1 object: %v", err)
	}
	sum := [32]byte(h.Sum(nil))
	seedKeys(t, s, "m1/many/", m1ListKeys)

	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	t.Cleanup(func() { testenv.Unmount(mnt) })
	opts := nodeOptions(cfg, s, mib(size+size/2))
	opts.ExtraArgs = append(opts.ExtraArgs, "--mount", mnt, "--mount-bucket", benchBucket)
	node := testenv.StartNode(t, opts)
	testenv.WaitMounted(t, mnt, 15*time.Second)
	nodeURL := node.Endpoint + "/" + benchBucket + "/" + key
	warm := warmNode(t, s, "M1 memory tier", func() error { return verifyRead(ctx, hc, nodeURL, size, sum) })
	path := filepath.Join(mnt, key)
	if got, err := fileSum(path); err != nil || got != sum {
		t.Fatalf("M1: the mount's bytes differ from the object (%v)", err)
	}

	// Sequential: mount vs gateway, alternating who goes first.
	var viaMount, viaGW []float64
	var mErrs, gErrs int64
	gets := s.Counts().GetObject
	for run := range cfg.RunsS1 {
		readMount := func() {
			r, err := readFile(path, size)
			if err != nil {
				mErrs++
				t.Logf("M1 mount read: %v", err)
				return
			}
			viaMount = append(viaMount, r.MBps())
		}
		readGW := func() {
			r, err := ReadObject(ctx, hc, nodeURL, size, 1)
			if err != nil {
				gErrs++
				t.Logf("M1 gateway read: %v", err)
				return
			}
			viaGW = append(viaGW, r.MBps())
		}
		if run%2 == 0 {
			readMount()
			readGW()
		} else {
			readGW()
			readMount()
		}
		t.Logf("M1 sequential run %d: mount %s MB/s, gateway %s MB/s", run+1, last(viaMount), last(viaGW))
	}
	base := NewFigure("gateway 1 stream (same node)", viaGW, gErrs)
	res := NewResult("M1", "MB/s", NewFigure("mount sequential read", viaMount, mErrs), &base, &Target{MinRatio: 0.8})
	res.Notes = []string{
		fmt.Sprintf("%d-byte object in the node's memory tier (warm: %v); %d KiB read(2) calls; the file's page cache dropped (fadvise DONTNEED) before every mount run", size, warm, m1ReadBuf>>10),
		fmt.Sprintf("origin GETs during the measured reads: %d", s.Counts().GetObject-gets),
	}
	rp.add(res)

	m1Random(t, cfg, rp, hc, path, nodeURL, size)
	m1List(t, cfg, rp, node, filepath.Join(mnt, "m1/many"))
	m1Reference(t, cfg, rp, s, path, size, sum)
}

// m1Random: 4 KiB reads at random 4 KiB-aligned offsets, one at a time,
// through the mount (pread) and through the gateway (ranged GETs).
func m1Random(t *testing.T, cfg Settings, rp *report, hc *http.Client, path, nodeURL string, size int64) {
	ctx := t.Context()
	var mRate, gRate, mP99, gP99 []float64
	var mErrs, gErrs int64
	for run := range cfg.RunsS1 {
		r := rand.New(rand.NewPCG(uint64(run), 42))
		offs := make([]int64, m1RandomReads)
		for i := range offs {
			offs[i] = r.Int64N(size/4096) * 4096
		}
		lat, took, err := mountPreads(path, offs)
		if err != nil {
			mErrs++
			t.Logf("M1 random mount: %v", err)
		} else {
			mRate = append(mRate, float64(len(offs))/took.Seconds())
			mP99 = append(mP99, ms(Percentile(lat, 99)))
		}
		lat, took, err = gatewayRanges(ctx, hc, nodeURL, offs)
		if err != nil {
			gErrs++
			t.Logf("M1 random gateway: %v", err)
		} else {
			gRate = append(gRate, float64(len(offs))/took.Seconds())
			gP99 = append(gP99, ms(Percentile(lat, 99)))
		}
		t.Logf("M1 random 4 KiB run %d: mount %s reads/s (p99 %s ms), gateway %s reads/s (p99 %s ms)",
			run+1, last(mRate), last(mP99), last(gRate), last(gP99))
	}
	note := fmt.Sprintf("%d reads of 4 KiB at random aligned offsets per run, one at a time, the object in the node's memory tier; page cache dropped before each mount run", m1RandomReads)
	base := NewFigure("gateway 4 KiB ranged GETs (same node)", gRate, gErrs)
	res := NewResult("M1", "reads/s", NewFigure("mount 4 KiB random preads", mRate, mErrs), &base, nil)
	res.Notes = []string{note}
	rp.add(res)
	baseP := NewFigure("gateway 4 KiB ranged GET p99", gP99, gErrs)
	resP := NewResult("M1", "ms", NewFigure("mount 4 KiB random pread p99", mP99, mErrs), &baseP, nil)
	resP.Notes = []string{note}
	rp.add(resP)
}

// m1List: ls of a prefix of 10,000 keys through the mount (readdir pages
// the node lists at the origin; its list cache expires between runs)
// against the same pages listed through the gateway.
func m1List(t *testing.T, cfg Settings, rp *report, node *testenv.Node, dir string) {
	ctx := t.Context()
	c := node.Client(t)
	var viaMount, viaGW []float64
	var mErrs, gErrs int64
	for run := range cfg.RunsS1 {
		time.Sleep(2100 * time.Millisecond) // past the node's default --list-ttl (2s)
		start := time.Now()
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) != m1ListKeys {
			mErrs++
			t.Logf("M1 ls: %d entries, %v", len(ents), err)
		} else {
			viaMount = append(viaMount, time.Since(start).Seconds())
		}
		time.Sleep(2100 * time.Millisecond)
		start = time.Now()
		n, err := listAll(ctx, c, benchBucket, "m1/many/")
		if err != nil || n != m1ListKeys {
			gErrs++
			t.Logf("M1 gateway list: %d keys, %v", n, err)
		} else {
			viaGW = append(viaGW, time.Since(start).Seconds())
		}
		t.Logf("M1 ls of %d keys run %d: mount %s s, gateway %s s", m1ListKeys, run+1, last(viaMount), last(viaGW))
	}
	base := NewFigure("ListObjectsV2 pages through the gateway", viaGW, gErrs)
	res := NewResult("M1", "s", NewFigure(fmt.Sprintf("ls (readdir) of %d keys", m1ListKeys), viaMount, mErrs), &base, nil)
	res.Notes = []string{"pages of 1,000 keys listed at the origin by the node (its listing cache expired before each run)"}
	rp.add(res)
}

// m1Reference: the same sequential read through a mount that reads
// straight from the origin server (mountpoint-s3's approach: FUSE to S3
// ranged GETs), against Shoal's mount over the warm node.
func m1Reference(t *testing.T, cfg Settings, rp *report, s *testenv.S3, shoalPath string, size int64, sum [32]byte) {
	mnt := filepath.Join(t.TempDir(), "direct")
	os.Mkdir(mnt, 0o755)
	t.Cleanup(func() { testenv.Unmount(mnt) })
	remote, err := fusefs.NewRemote(fusefs.RemoteConfig{Endpoint: s.Endpoint, Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	m, err := fusefs.New(fusefs.Config{Dir: mnt, Bucket: benchBucket}, remote)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	ready := make(chan struct{})
	var runErr error
	wg.Go(func() { runErr = m.Run(ctx, func() { close(ready) }) })
	defer func() {
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Errorf("M1 reference mount: %v", runErr)
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("M1 reference mount not ready")
	}
	direct := filepath.Join(mnt, "m1/object")
	if got, err := fileSum(direct); err != nil || got != sum {
		t.Fatalf("M1 reference mount: wrong bytes (%v)", err)
	}
	var viaShoal, viaDirect []float64
	var sErrs, dErrs int64
	for run := range cfg.RunsS1 {
		if r, err := readFile(direct, size); err != nil {
			dErrs++
			t.Logf("M1 reference read: %v", err)
		} else {
			viaDirect = append(viaDirect, r.MBps())
		}
		if r, err := readFile(shoalPath, size); err != nil {
			sErrs++
		} else {
			viaShoal = append(viaShoal, r.MBps())
		}
		t.Logf("M1 reference run %d: Shoal mount %s MB/s, mount straight from the origin %s MB/s", run+1, last(viaShoal), last(viaDirect))
	}
	base := NewFigure("mount straight from the origin (mountpoint-s3's approach)", viaDirect, dErrs)
	res := NewResult("M1", "MB/s", NewFigure("Shoal mount, warm node", viaShoal, sErrs), &base, &Target{MinRatio: 1})
	res.Notes = []string{"the reference mount is this package's FUSE code over S3 ranged GETs to versitygw (page cache dropped before each run), " +
		"not mountpoint-s3 itself; on loopback the origin is as near as the node, so the gap is the cache, not the network"}
	rp.add(res)
}

// readFile reads path to the end in m1ReadBuf reads, after dropping its
// page cache, and checks the length.
func readFile(path string, size int64) (ReadResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ReadResult{}, err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return ReadResult{}, fmt.Errorf("fadvise: %w", err)
	}
	buf := make([]byte, m1ReadBuf)
	start := time.Now()
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return ReadResult{}, err
		}
	}
	r := ReadResult{Bytes: n, Elapsed: time.Since(start)}
	if n != size {
		return r, fmt.Errorf("read %d bytes, want %d", n, size)
	}
	return r, nil
}

func fileSum(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, m1ReadBuf)); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

func mountPreads(path string, offs []int64) ([]time.Duration, time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, len(offs))
	start := time.Now()
	for _, off := range offs {
		t0 := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			return nil, 0, fmt.Errorf("pread at %d: %w", off, err)
		}
		lat = append(lat, time.Since(t0))
	}
	took := time.Since(start)
	slices.Sort(lat)
	return lat, took, nil
}

func gatewayRanges(ctx context.Context, hc *http.Client, url string, offs []int64) ([]time.Duration, time.Duration, error) {
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, len(offs))
	start := time.Now()
	for _, off := range offs {
		t0 := time.Now()
		if _, err := Get(ctx, hc, url, fmt.Sprintf("bytes=%d-%d", off, off+4095), 4096, buf, nil); err != nil {
			return nil, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	took := time.Since(start)
	slices.Sort(lat)
	return lat, took, nil
}

func listAll(ctx context.Context, c *s3.Client, bucket, prefix string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		n += len(out.Contents) + len(out.CommonPrefixes)
	}
	return n, nil
}

// seedKeys writes n small objects under prefix, 16 at a time.
func seedKeys(t *testing.T, s *testenv.S3, prefix string, n int) {
	c := s.Client(t)
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 16 {
		wg.Go(func() {
			for i := range work {
				k := fmt.Sprintf("%sk-%05d", prefix, i)
				_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(benchBucket), Key: &k, Body: strings.NewReader(k)})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		t.Fatalf("seed %d keys: %v", n, first)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
