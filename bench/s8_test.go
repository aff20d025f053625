package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shoal-cache/shoal/blockstore"
	shoalcontent "github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/internal/testenv"
)

// S8 settings and targets (BENCHMARKS.md, issue 11).
const (
	// s8IdleTarget and s8StreamTarget are the RSS ceilings, in MB.
	s8IdleTarget   = 200
	s8StreamTarget = 256
	// s8Settle is how long the idle node runs after ready before its RSS
	// is read: start-up work (index load, reconcile, DHT bootstrap, the
	// first provide pass) is under way or done by then.
	s8Settle = 15 * time.Second
	// s8IdleRuns: each run restarts the node over the same data dir.
	s8IdleRuns = 3
	// s8Interval is how often the streaming node's memory is sampled.
	s8Interval = 100 * time.Millisecond
	// s8ChunkBytes is the payload of each synthetic block: small, so 1M of
	// them fit any test disk (a 4 KiB filesystem block each, ~4 GB); the
	// node's in-memory index costs the same per block whatever its size.
	s8ChunkBytes = 64
	// s8StreamMemCache is the streaming node's memory tier: the default
	// (1 GiB) would by design hold up to 1 GiB of chunks, which is cache,
	// not the streaming path's working set that S8 bounds.
	s8StreamMemCache = "64MiB"
	// s8HeapAfter is when the streaming node's heap profile is taken: well
	// into a 10 GiB read (about 30 s here), past the first chunks.
	s8HeapAfter = 10 * time.Second
	// storeSubdir is where `shoal node` keeps its block store inside
	// --data-dir (cmd/shoal/wire.go).
	storeSubdir = "store"
)

// runS8 measures S8: the RSS of an idle node whose SSD tier indexes
// cfg.S8Chunks blocks, and the peak RSS of a node streaming a
// cfg.S8Size-byte object, cold, from a versitygw origin through its gateway.
func runS8(t *testing.T, cfg Settings, rp *report) {
	s := testenv.StartS3(t)
	s.CreateBucket(t, benchBucket)
	t.Run("idle", func(t *testing.T) { s8Idle(t, cfg, rp, s) })
	t.Run("stream", func(t *testing.T) { s8Stream(t, cfg, rp, s) })
}

// seedBlocks writes n distinct small blocks into the block store of a node
// data dir through blockstore.Disk, exactly as a node's SSD tier stores
// chunks: a payload file each under a Badger index record.
func seedBlocks(t *testing.T, dataDir string, n int, hash shoalcontent.Hash) {
	start := time.Now()
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: filepath.Join(dataDir, storeSubdir), ScrubRate: -1})
	if err != nil {
		t.Fatalf("S8: open block store: %v", err)
	}
	ctx := t.Context()
	buf := make([]byte, s8ChunkBytes)
	for i := range n {
		copy(buf, fmt.Sprintf("s8 synthetic chunk %020d %032d", i, i))
		if err := d.Put(ctx, shoalcontent.Sum(hash, buf), buf); err != nil {
			d.Close()
			t.Fatalf("S8: seed block %d: %v", i, err)
		}
		if (i+1)%100_000 == 0 {
			t.Logf("S8: seeded %d blocks (%v)", i+1, time.Since(start).Round(time.Second))
		}
	}
	if got := d.Stats(); got.Blocks != int64(n) {
		t.Logf("S8: the store holds %d blocks, want %d", got.Blocks, n)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("S8: close block store: %v", err)
	}
	t.Logf("S8: seeded %d blocks of %d bytes in %v", n, s8ChunkBytes, time.Since(start).Round(time.Second))
}

func s8Idle(t *testing.T, cfg Settings, rp *report, s *testenv.S3) {
	dataDir := t.TempDir()
	hash := shoalcontent.Hash(cmp.Or(cfg.Hash, string(shoalcontent.SHA256)))
	seedBlocks(t, dataDir, cfg.S8Chunks, hash)
	opts := nodeOptions(cfg, s, "")
	opts.DataDir = dataDir
	opts.SwarmKeyFile = testenv.NewSwarmKey(t) // a cluster node: DHT and provider on
	var rss, hwm []float64
	var errs int64
	var node *testenv.Node
	var heap string
	for run := range s8IdleRuns {
		start := time.Now()
		if node == nil {
			node = testenv.StartNode(t, opts)
		} else {
			node.StartAgain(t)
		}
		ready := time.Since(start)
		time.Sleep(s8Settle)
		m, err := ReadProcMem(node.PID())
		if err != nil {
			errs++
			t.Logf("S8 idle run %d: %v", run+1, err)
		} else {
			rss = append(rss, mb(m.RSS))
			hwm = append(hwm, mb(m.HWM))
			t.Logf("S8 idle run %d: ready in %v, VmRSS %.1f MB, VmHWM %.1f MB after %v", run+1,
				ready.Round(time.Millisecond), mb(m.RSS), mb(m.HWM), s8Settle)
		}
		if run == s8IdleRuns-1 { // the node runs with --pprof
			heap = filepath.Join(filepath.Dir(cfg.Out), "s8-idle.heap.pprof")
			if err := savePprof(t.Context(), "http://"+node.AdminAddr+"/debug/pprof/heap", heap); err != nil {
				heap = fmt.Sprintf("not saved: %v", err)
			}
		}
		if err := node.Stop(); err != nil {
			t.Errorf("S8: stop idle node: %v", err)
		}
	}
	res := NewResult("S8", "MB", NewFigure(fmt.Sprintf("idle node, %d chunks indexed: VmRSS", cfg.S8Chunks), rss, errs),
		nil, &Target{MaxValue: s8IdleTarget})
	res.Notes = []string{
		fmt.Sprintf("%d blocks of %d bytes written through blockstore.Disk (payload file + Badger record each) into the data dir before the node starts; "+
			"the node loads and reconciles them at start", cfg.S8Chunks, s8ChunkBytes),
		fmt.Sprintf("VmRSS from /proc/PID/status %v after ready; P2P on (swarm key, no peers), default --mem-cache, one restart per run", s8Settle),
		"MB = 10^6 bytes; VmHWM (peak since start) per run: " + nums(hwm),
		"heap profile of the idle node after the last run's settle: " + heap,
	}
	rp.add(res)
}

func s8Stream(t *testing.T, cfg Settings, rp *report, s *testenv.S3) {
	ctx := t.Context()
	size := cfg.S8Size
	pre := presigner(s)
	const key = "s8/object"
	h := sha256.New()
	start := time.Now()
	up := NewClient(1, time.Hour)
	defer up.CloseIdleConnections()
	if err := putLarge(t, s, up, pre, key, io.TeeReader(io.LimitReader(content(key), size), h), size); err != nil {
		t.Fatalf("seed S8 object: %v", err)
	}
	sum := [32]byte(h.Sum(nil))
	t.Logf("S8: seeded %d bytes in %v", size, time.Since(start).Round(time.Millisecond))

	node := testenv.StartNode(t, nodeOptions(cfg, s, s8StreamMemCache))
	hc := NewClient(1, time.Hour)
	defer hc.CloseIdleConnections()
	before, err := ReadProcMem(node.PID())
	if err != nil {
		t.Fatal(err)
	}
	gets := s.Counts().GetObject
	sampler := SampleMem(node.PID(), s8Interval)
	// A heap profile mid-read (the node runs with --pprof), unless the read
	// ends first.
	heap := "not taken: the read ended within " + s8HeapAfter.String()
	readDone := make(chan struct{})
	profDone := make(chan struct{})
	go func() {
		defer close(profDone)
		select {
		case <-readDone:
			return
		case <-time.After(s8HeapAfter):
		}
		path := filepath.Join(filepath.Dir(cfg.Out), "s8-stream.heap.pprof")
		if err := savePprof(ctx, "http://"+node.AdminAddr+"/debug/pprof/heap", path); err != nil {
			heap = fmt.Sprintf("not saved: %v", err)
		} else {
			heap = fmt.Sprintf("%s, taken %v into the read", path, s8HeapAfter)
		}
	}()
	start = time.Now()
	readErr := verifyRead(ctx, hc, node.Endpoint+"/"+benchBucket+"/"+key, size, sum)
	took := time.Since(start)
	close(readDone)
	<-profDone
	peak, samples, serr := sampler.Stop()
	var errs int64
	var runs []float64
	firstErr := ""
	switch {
	case readErr != nil:
		errs++
		firstErr = readErr.Error()
	case serr != nil:
		errs++
		firstErr = serr.Error()
	default:
		runs = []float64{mb(max(peak.RSS, peak.HWM))}
	}
	t.Logf("S8 stream: %d bytes in %v (%.0f MB/s), peak VmRSS %.1f MB, VmHWM %.1f MB, %d samples, err %v",
		size, took.Round(time.Millisecond), float64(size)/1e6/took.Seconds(), mb(peak.RSS), mb(peak.HWM), samples, cmp.Or(readErr, serr))
	res := NewResult("S8", "MB", NewFigure(fmt.Sprintf("gateway streaming a %s object, cold: peak RSS", mib(size)), runs, errs),
		nil, &Target{MaxValue: s8StreamTarget})
	res.FirstError = firstErr
	res.Notes = []string{
		fmt.Sprintf("one read, verified (SHA-256), of a %d-byte object from versitygw through the node's gateway, one stream, %v, %.0f MB/s",
			size, took.Round(time.Millisecond), float64(size)/1e6/took.Seconds()),
		fmt.Sprintf("figure: the node's VmHWM at the end (peak since start; sampled VmRSS peak %.1f MB over %d samples every %v); VmRSS before the read %.1f MB",
			mb(peak.RSS), samples, s8Interval, mb(before.RSS)),
		fmt.Sprintf("node --mem-cache %s (the memory tier is cache, bounded by its budget), default --disk-cache; no P2P; origin GETs during the read: %d",
			s8StreamMemCache, s.Counts().GetObject-gets),
		"heap profile of the node: " + heap,
	}
	rp.add(res)
}

// nums renders runs for a note.
func nums(runs []float64) string {
	if len(runs) == 0 {
		return "none"
	}
	var out string
	for i, v := range runs {
		if i > 0 {
			out += ", "
		}
		out += num(v)
	}
	return out
}

// s8PartSize is the part size of uploads larger than S3's 5 GiB limit on one
// PUT: 1 GiB parts, so a 10 GiB object is 10 parts (S3 allows 10,000).
const (
	s8PartSize = 1 << 30
	maxPut     = 5 << 30
)

// putLarge uploads size bytes from body to bucket/key: one presigned PUT up
// to 5 GiB, a multipart upload of presigned UploadPart requests beyond.
func putLarge(t *testing.T, s *testenv.S3, hc *http.Client, pre *s3.PresignClient, key string, body io.Reader, size int64) error {
	ctx := t.Context()
	if size <= maxPut {
		return putPresigned(ctx, hc, pre, benchBucket, key, body, size)
	}
	c := s.Client(t)
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(benchBucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+s8PartSize {
		part := min(s8PartSize, size-off)
		r, err := pre.PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(benchBucket), Key: aws.String(key),
			UploadId: mu.UploadId, PartNumber: aws.Int32(n)})
		if err != nil {
			return fmt.Errorf("presign part %d: %w", n, err)
		}
		etag, err := putURL(ctx, hc, r.URL, io.LimitReader(body, part), part)
		if err != nil {
			return fmt.Errorf("part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{ETag: aws.String(etag), PartNumber: aws.Int32(n)})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(benchBucket), Key: aws.String(key),
		UploadId: mu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// putURL PUTs size bytes of body to a presigned URL and returns the ETag.
func putURL(ctx context.Context, hc *http.Client, url string, body io.Reader, size int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, io.NopCloser(body))
	if err != nil {
		return "", err
	}
	req.ContentLength = size
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("PUT: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp.Header.Get("ETag"), nil
}
