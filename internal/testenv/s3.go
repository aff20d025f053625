// Package testenv starts real processes for Shoal's tests. This file owns the
// S3 part: a real versitygw server (an S3-compatible gateway over a POSIX
// directory) on a loopback port, fronted by a counting reverse proxy so tests
// can assert how many requests reached the origin.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	modulePath = "github.com/shoal-cache/shoal"

	// readyTimeout bounds how long we wait for versitygw to answer after
	// start; it starts in well under a second on an idle machine, the margin
	// is for a loaded 2-core CI runner.
	readyTimeout = 30 * time.Second

	// logTail is how much of the server log is kept for the test log on
	// failure: enough for the last few hundred request lines.
	logTail = 64 << 10

	// startAttempts: the backend port is picked by binding :0 and closing
	// it, so another process may grab it before versitygw binds; retry with
	// a new port a few times.
	startAttempts = 3
)

// Counts are the requests the proxy in front of versitygw has seen.
type Counts struct {
	GetObject  int64 // all object GETs, ranged or not
	RangedGet  int64 // object GETs that carried a Range header (also in GetObject)
	HeadObject int64
	List       int64 // ListObjects(V2) and ListBuckets
	Put        int64 // PutObject, UploadPart, CreateBucket (any PUT)
	Other      int64 // everything else (HEAD bucket, POST multipart, DELETE, ...)
	BytesOut   int64 // response body bytes sent to clients
}

// Total is the number of requests of all kinds.
func (c Counts) Total() int64 {
	return c.GetObject + c.HeadObject + c.List + c.Put + c.Other
}

// S3 is a running versitygw behind a counting proxy. Endpoint is the proxy's
// URL; point clients there.
type S3 struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	Region    string
	AccessKey string
	SecretKey string
	Dir       string // posix root: each top-level folder is a bucket
	// DirectEndpoint is versitygw's own "http://127.0.0.1:PORT", bypassing
	// the counting proxy (for baselines the proxy must not slow down). Its
	// requests are not counted, and the port may change after Stop/Start.
	DirectEndpoint string

	t       testing.TB
	bin     string
	metaDir string

	getObject, rangedGet, headObject, list, put, other, bytesOut atomic.Int64
	// getDelay (nanoseconds) holds every object GET back before it is
	// answered: an origin far away, so that a job takes long enough to be
	// interrupted.
	getDelay atomic.Int64
	// getRate (bytes per second, 0: none) caps each object GET's response:
	// one connection's throughput from a remote object store.
	getRate atomic.Int64

	mu          sync.Mutex // guards the fields below
	proxyAddr   string     // fixed for the lifetime of S3
	backendAddr string     // may change if a restart needs a new port
	srv         *http.Server
	cmd         *exec.Cmd
	done        chan struct{} // closed when cmd has exited
	log         *tailBuffer
	running     bool
	// hung: while set, the proxy takes requests and never answers them
	// (an origin that accepts TCP and hangs); closed by Unhang.
	hung chan struct{}
}

// Hang makes the origin accept requests and answer none of them (each waits
// until its client gives up or Unhang is called).
func (s *S3) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hung == nil {
		s.hung = make(chan struct{})
	}
}

// SetGetDelay makes every object GET wait d before the proxy answers it
// (0: none).
func (s *S3) SetGetDelay(d time.Duration) { s.getDelay.Store(int64(d)) }

// SetGetRate caps every ranged object GET's response at bps bytes per
// second (0: no cap), as an object store caps one connection.
func (s *S3) SetGetRate(bps int64) { s.getRate.Store(bps) }

// Unhang ends Hang: waiting requests go through.
func (s *S3) Unhang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hung != nil {
		close(s.hung)
		s.hung = nil
	}
}

// StartS3 starts a real versitygw on a free loopback port behind a counting
// reverse proxy. Everything is stopped and removed when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := versitygwBinary(t)
	root := t.TempDir()
	s := &S3{
		Region:    "us-east-1",
		AccessKey: "shoal-test-access",
		SecretKey: "shoal-test-secret-key",
		Dir:       filepath.Join(root, "data"),
		metaDir:   filepath.Join(root, "meta"),
		t:         t,
		bin:       bin,
		log:       &tailBuffer{max: logTail},
	}
	for _, d := range []string{s.Dir, s.metaDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen for S3 proxy: %v", err)
	}
	s.proxyAddr = ln.Addr().String()
	s.Endpoint = "http://" + s.proxyAddr
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("testenv: versitygw log (last %d bytes):\n%s", logTail, s.log.String())
		}
	})
	if err := s.startServer(); err != nil {
		ln.Close()
		t.Fatalf("testenv: %v\nversitygw log:\n%s", err, s.log.String())
	}
	s.serveProxy(ln)
	return s
}

// Stop kills versitygw and closes the proxy listener, so clients get
// "connection refused". Safe to call more than once.
func (s *S3) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	s.running = false
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
		_ = s.srv.Close()
		s.srv = nil
	}
	s.killLocked()
}

// Start restarts a stopped server on the same proxy port and data directory.
func (s *S3) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running {
		return
	}
	if err := s.startServer(); err != nil {
		s.t.Fatalf("testenv: restart versitygw: %v\nlog:\n%s", err, s.log.String())
	}
	var ln net.Listener
	var err error
	// The old listener was closed by Stop; Go sets SO_REUSEADDR so the port
	// is normally free at once. Retry briefly in case it is not.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.proxyAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("testenv: re-listen S3 proxy on %s: %v", s.proxyAddr, err)
	}
	s.serveProxy(ln)
}

// PID is the process ID of the running versitygw (0 when stopped): what
// the benchmarks measure the origin's CPU cost on.
func (s *S3) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Counts returns the requests seen at the proxy since start or the last
// ResetCounts.
func (s *S3) Counts() Counts {
	return Counts{
		GetObject:  s.getObject.Load(),
		RangedGet:  s.rangedGet.Load(),
		HeadObject: s.headObject.Load(),
		List:       s.list.Load(),
		Put:        s.put.Load(),
		Other:      s.other.Load(),
		BytesOut:   s.bytesOut.Load(),
	}
}

// ResetCounts sets all counters to zero.
func (s *S3) ResetCounts() {
	for _, c := range []*atomic.Int64{&s.getObject, &s.rangedGet, &s.headObject, &s.list, &s.put, &s.other, &s.bytesOut} {
		c.Store(0)
	}
}

// Client returns an aws-sdk-go-v2 client for the server (path style, static
// credentials, no retries so test seeding fails fast and loudly).
func (s *S3) Client(t testing.TB) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
}

// CreateBucket creates a bucket or fails the test.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(t).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %q: %v", name, err)
	}
}

// PutObject writes an object or fails the test.
func (s *S3) PutObject(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := s.Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		t.Fatalf("testenv: put %s/%s: %v", bucket, key, err)
	}
}

// startServer starts versitygw on a fresh port (the previous one if any is
// tried first) and waits until it answers HTTP.
func (s *S3) startServer() error {
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		s.mu.Lock()
		addr := s.backendAddr
		s.mu.Unlock()
		if addr == "" || attempt > 0 {
			var err error
			if addr, err = freeAddr(); err != nil {
				return err
			}
		}
		if lastErr = s.startOnce(addr); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

func (s *S3) startOnce(addr string) error {
	cmd := exec.Command(s.bin,
		"--port", addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"posix", "--sidecar", s.metaDir, s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(s.log, "--- testenv: starting versitygw on %s\n", addr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.backendAddr, s.running = cmd, done, addr, true
	s.DirectEndpoint = "http://" + addr
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-done:
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			return fmt.Errorf("versitygw exited before becoming ready on %s", addr)
		default:
		}
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			s.killLocked()
			s.running = false
			s.mu.Unlock()
			return fmt.Errorf("versitygw not ready on %s after %v: %w", addr, readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killLocked kills the versitygw process group and waits for it to exit.
func (s *S3) killLocked() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("testenv: versitygw pid %d did not exit after SIGKILL", s.cmd.Process.Pid)
	}
	s.cmd = nil
}

func (s *S3) serveProxy(ln net.Listener) {
	s.mu.Lock()
	backend := s.backendAddr
	s.mu.Unlock()
	target := &url.URL{Scheme: "http", Host: backend}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the Host the client signed (SigV4 covers it).
			r.Out.Host = r.In.Host
		},
		ErrorLog: nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.classify(r)
			s.mu.Lock()
			hung := s.hung
			s.mu.Unlock()
			if hung != nil {
				select {
				case <-hung:
				case <-r.Context().Done():
					return
				}
			}
			if d := time.Duration(s.getDelay.Load()); d > 0 && r.Method == http.MethodGet && r.Header.Get("Range") != "" {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			cw := &countingWriter{ResponseWriter: w, n: &s.bytesOut}
			if bps := s.getRate.Load(); bps > 0 && r.Method == http.MethodGet && r.Header.Get("Range") != "" {
				cw.bps, cw.start = bps, time.Now()
			}
			rp.ServeHTTP(cw, r)
		}),
		ReadHeaderTimeout: 30 * time.Second,
	}
	s.mu.Lock()
	s.srv = srv
	s.running = true
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// classify counts one request by S3 operation kind, from method, path and
// query as path-style clients send them.
func (s *S3) classify(r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	isObject := strings.Contains(path, "/") && !strings.HasSuffix(path, "/") || strings.Count(path, "/") > 1
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		switch {
		case path == "":
			s.list.Add(1) // ListBuckets
		case !isObject && (q.Has("list-type") || len(q) == 0 || q.Has("prefix") || q.Has("delimiter")):
			s.list.Add(1)
		case isObject && !q.Has("uploadId") && !q.Has("tagging") && !q.Has("acl") && !q.Has("attributes"):
			s.getObject.Add(1)
			if r.Header.Get("Range") != "" {
				s.rangedGet.Add(1)
			}
		default:
			s.other.Add(1)
		}
	case http.MethodHead:
		if isObject {
			s.headObject.Add(1)
		} else {
			s.other.Add(1)
		}
	case http.MethodPut:
		s.put.Add(1)
	default:
		s.other.Add(1)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
	// bps > 0 paces the body: after each write the writer sleeps until
	// sent/bps has passed since start.
	bps   int64
	start time.Time
	sent  int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	if w.bps > 0 {
		w.sent += int64(n)
		due := w.start.Add(time.Duration(float64(w.sent) / float64(w.bps) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return n, err
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex // guards buf
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// --- locating / building the versitygw binary ---

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// versitygwBinary returns the path of a versitygw executable: $SHOAL_VERSITYGW,
// else <module root>/bin/versitygw, else it is built there once from the tools
// module (guarded by a file lock so parallel test binaries don't race).
func versitygwBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findOrBuildVersitygw() })
	if binErr != nil {
		t.Fatalf("testenv: no versitygw binary (set SHOAL_VERSITYGW, or build it: "+
			"cd tools && go build -o ../bin/versitygw github.com/versity/versitygw/cmd/versitygw): %v", binErr)
	}
	return binPath
}

func findOrBuildVersitygw() (string, error) {
	if p := os.Getenv("SHOAL_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SHOAL_VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, "bin", ".versitygw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isExecutable(bin) { // another test binary built it while we waited
		return bin, nil
	}
	tmp := bin + ".tmp"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/versity/versitygw/cmd/versitygw")
	cmd.Dir = filepath.Join(root, "tools")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build versitygw in %s: %w\n%s", cmd.Dir, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// ModuleRoot walks up from the working directory to the go.mod that declares
// the Shoal module.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: module root (go.mod of " + modulePath + ") not found above the working directory")
		}
		dir = parent
	}
}

func declaresModule(gomod []byte, path string) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == path {
			return true
		}
	}
	return false
}

var _ io.Writer = (*tailBuffer)(nil)
