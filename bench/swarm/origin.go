package swarm

// This file owns the origin: a real versitygw in the origin host's
// namespace on that namespace's loopback, fronted by a counting reverse
// proxy that listens on the host's shaped lab address. Nodes and direct
// readers go through the proxy (and so through the shaped link); the
// harness uploads over the namespace's loopback, unshaped and uncounted.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	// originPort is the proxy's port on the origin host's lab address.
	originPort = "9000"
	// versitygwAddr is where versitygw listens inside the origin namespace.
	versitygwAddr = "127.0.0.1:9001"
	// originReadyTimeout: versitygw starts in well under a second; the
	// rest is margin for a loaded 2-core machine.
	originReadyTimeout = 30 * time.Second
	// Origin credentials (the origin exists only inside the lab).
	originAccessKey = "shoal-swarm-access"
	originSecretKey = "shoal-swarm-secret-key"
	originRegion    = "us-east-1"
)

// OriginCounts are the requests the proxy saw since the last Reset.
type OriginCounts struct {
	GetObject  int64 `json:"get_object"`
	RangedGet  int64 `json:"ranged_get"`
	HeadObject int64 `json:"head_object"`
	Other      int64 `json:"other"`
	BytesOut   int64 `json:"bytes_out"`
	// DistinctRanges is the number of different Range headers among the
	// object GETs ("" counts as one: a whole-object GET); MaxPerRange the
	// most GETs any one of them got.
	DistinctRanges int `json:"distinct_ranges"`
	MaxPerRange    int `json:"max_per_range"`
	// LastByte is when the proxy last wrote response bytes (unix ns; 0:
	// none since the last Reset).
	LastByte int64 `json:"last_byte_unix_ns,omitempty"`
}

// Origin is a running versitygw behind a counting proxy.
type Origin struct {
	Host      *Host
	Endpoint  string // proxy URL on the lab network, e.g. http://10.77.1.1:9000
	AccessKey string
	SecretKey string
	Region    string

	log  *slog.Logger
	cmd  *exec.Cmd
	done chan struct{}
	srv  *http.Server

	getObject, rangedGet, headObject, other, bytesOut atomic.Int64
	lastByte                                          atomic.Int64 // unix ns of the last body write

	mu     sync.Mutex     // guards ranges
	ranges map[string]int // Range header -> GETs
}

// StartOrigin starts versitygw (binary bin) over dir in host h's namespace
// and the counting proxy in front of it.
func StartOrigin(ctx context.Context, h *Host, bin, dir string, log *slog.Logger) (_ *Origin, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Origin{Host: h, Endpoint: "http://" + net.JoinHostPort(h.Addr.String(), originPort),
		AccessKey: originAccessKey, SecretKey: originSecretKey, Region: originRegion,
		log: log.With("component", "origin"), ranges: map[string]int{}}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("origin: %w", err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	defer logf.Close()
	cmd := h.Command(context.Background(), bin, "--port", versitygwAddr,
		"--access", o.AccessKey, "--secret", o.SecretKey, "--region", o.Region,
		"posix", "--sidecar", meta, data)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+o.AccessKey, "ROOT_SECRET_KEY="+o.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("origin: start versitygw: %w", err)
	}
	o.cmd, o.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(o.done) }()
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	if err := o.waitReady(ctx); err != nil {
		return nil, err
	}
	ln, err := h.Listen("tcp", net.JoinHostPort(h.Addr.String(), originPort))
	if err != nil {
		return nil, fmt.Errorf("origin: proxy listen: %w", err)
	}
	o.serve(ln)
	return o, nil
}

func (o *Origin) transport() *http.Transport {
	return &http.Transport{DialContext: o.Host.DialContext, MaxIdleConnsPerHost: 64, DisableCompression: true}
}

func (o *Origin) waitReady(ctx context.Context) error {
	c := &http.Client{Transport: o.transport(), Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(originReadyTimeout)
	for {
		select {
		case <-o.done:
			return errors.New("origin: versitygw exited during start-up (see versitygw.log)")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := c.Get("http://" + versitygwAddr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("origin: versitygw not ready after %v: %w", originReadyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (o *Origin) serve(ln net.Listener) {
	target := &url.URL{Scheme: "http", Host: versitygwAddr}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // SigV4 signs the Host the client used
		},
		Transport: o.transport(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.classify(r)
			rp.ServeHTTP(&countingWriter{ResponseWriter: w, n: &o.bytesOut, last: &o.lastByte}, r)
		}),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { _ = o.srv.Serve(ln) }()
}

// classify counts one request by kind, for path-style clients.
func (o *Origin) classify(r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	isObject := strings.Contains(strings.TrimSuffix(path, "/"), "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && isObject && !q.Has("uploadId") && !q.Has("tagging") && !q.Has("acl") && !q.Has("attributes"):
		o.getObject.Add(1)
		rg := r.Header.Get("Range")
		if rg != "" {
			o.rangedGet.Add(1)
		}
		o.mu.Lock()
		o.ranges[rg]++
		o.mu.Unlock()
	case r.Method == http.MethodHead && isObject:
		o.headObject.Add(1)
	default:
		o.other.Add(1)
	}
}

// Counts returns the counts since the last Reset.
func (o *Origin) Counts() OriginCounts {
	c := OriginCounts{GetObject: o.getObject.Load(), RangedGet: o.rangedGet.Load(),
		HeadObject: o.headObject.Load(), Other: o.other.Load(), BytesOut: o.bytesOut.Load(), LastByte: o.lastByte.Load()}
	o.mu.Lock()
	defer o.mu.Unlock()
	c.DistinctRanges = len(o.ranges)
	for _, n := range o.ranges {
		c.MaxPerRange = max(c.MaxPerRange, n)
	}
	return c
}

// Reset zeroes the counts.
func (o *Origin) Reset() {
	for _, c := range []*atomic.Int64{&o.getObject, &o.rangedGet, &o.headObject, &o.other, &o.bytesOut, &o.lastByte} {
		c.Store(0)
	}
	o.mu.Lock()
	o.ranges = map[string]int{}
	o.mu.Unlock()
}

// client is an S3 client for versitygw over the namespace's loopback
// (unshaped, uncounted): for uploads and presigning.
func (o *Origin) client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       o.Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: o.transport()},
	})
}

// Put creates bucket (if needed) and uploads the file at path as key.
func (o *Origin) Put(ctx context.Context, bucket, key, path string) error {
	c := o.client("http://" + versitygwAddr)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil &&
		!strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") && !strings.Contains(err.Error(), "BucketAlreadyExists") {
		return fmt.Errorf("origin: create bucket %s: %w", bucket, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	defer f.Close()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f}); err != nil {
		return fmt.Errorf("origin: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// PresignGet returns a presigned GET URL of bucket/key on the proxy
// endpoint, valid for an hour: a reader needs no keys.
func (o *Origin) PresignGet(ctx context.Context, bucket, key string) (string, error) {
	p := s3.NewPresignClient(o.client(o.Endpoint))
	req, err := p.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}, s3.WithPresignExpires(time.Hour))
	if err != nil {
		return "", fmt.Errorf("origin: presign: %w", err)
	}
	return req.URL, nil
}

// Close stops the proxy and versitygw.
func (o *Origin) Close() error {
	if o.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = o.srv.Shutdown(ctx)
		cancel()
		o.srv.Close()
	}
	if o.cmd != nil && o.cmd.Process != nil {
		killGroup(o.cmd)
		select {
		case <-o.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("origin: versitygw pid %d did not exit", o.cmd.Process.Pid)
		}
	}
	return nil
}

type countingWriter struct {
	http.ResponseWriter
	n    *atomic.Int64
	last *atomic.Int64 // unix ns of the last write of bytes
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ io.Writer = (*countingWriter)(nil)
