package bench

// This file owns the load generator: a tuned HTTP client, whole-object reads
// over one or several ranged streams, and a closed-loop request-rate load of
// many concurrent connections.

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Sentinel errors of the load generator.
var (
	// ErrStatus: the server answered with an unexpected HTTP status.
	ErrStatus = errors.New("bench: unexpected status")
	// ErrSize: the body was not the expected number of bytes.
	ErrSize = errors.New("bench: wrong body size")
	// ErrConfig: a load or read was asked for with impossible parameters.
	ErrConfig = errors.New("bench: bad load configuration")
)

const (
	// readBufSize is the buffer each stream reads a body into: large enough
	// that a multi-GB/s stream costs few read syscalls, small enough that 64
	// connections hold only a few MiB.
	readBufSize = 256 << 10
	// smallBufSize is the per-connection buffer of the request-rate load:
	// its objects are a few KiB.
	smallBufSize = 16 << 10
)

// NewClient returns an HTTP client for conns concurrent connections to one
// host: keep-alive pools at least conns deep (so no connection is closed
// and re-dialled between requests), no transparent compression, HTTP/1.1,
// no proxy from the environment, and the given per-request timeout.
func NewClient(conns int, timeout time.Duration) *http.Client {
	if conns < 1 {
		conns = 1
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil, // loopback only: never an environment proxy
			DialContext: (&net.Dialer{
				Timeout:   5 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			MaxIdleConns:          2 * conns,
			MaxIdleConnsPerHost:   2 * conns,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			ForceAttemptHTTP2:     false,
			ResponseHeaderTimeout: timeout,
			ReadBufferSize:        64 << 10,
			WriteBufferSize:       4 << 10,
		},
	}
}

// Get sends one GET of url (with a Range header when rng is not empty),
// reads the whole body through buf and returns its length. It fails with
// ErrStatus unless the status is 200 (206 for a range) and with ErrSize
// unless the body is exactly want bytes (want < 0: any length). When h is
// not nil the body is also written to it.
func Get(ctx context.Context, hc *http.Client, url, rng string, want int64, buf []byte, h hash.Hash) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("bench: GET: %w", err)
	}
	wantStatus := http.StatusOK
	if rng != "" {
		req.Header.Set("Range", rng)
		wantStatus = http.StatusPartialContent
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: GET: %w", err)
	}
	defer resp.Body.Close()
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 && h != nil {
			h.Write(buf[:m])
		}
		n += int64(m)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("bench: GET body after %d bytes: %w", n, rerr)
		}
	}
	if resp.StatusCode != wantStatus {
		return n, fmt.Errorf("%w: %s (want %d)", ErrStatus, resp.Status, wantStatus)
	}
	if want >= 0 && n != want {
		return n, fmt.Errorf("%w: %d bytes, want %d", ErrSize, n, want)
	}
	return n, nil
}

// ReadResult is one timed read of a whole object.
type ReadResult struct {
	Bytes   int64
	Elapsed time.Duration
}

// MBps is the read's throughput in MB/s (10^6 bytes per second).
func (r ReadResult) MBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6
}

// Ranges splits an object of size bytes into streams contiguous HTTP byte
// ranges ("bytes=a-b") of nearly equal length that cover it exactly once.
func Ranges(size int64, streams int) ([]string, []int64, error) {
	if size <= 0 || streams < 1 || int64(streams) > size {
		return nil, nil, fmt.Errorf("%w: %d streams over %d bytes", ErrConfig, streams, size)
	}
	part := (size + int64(streams) - 1) / int64(streams)
	var rngs []string
	var lens []int64
	for off := int64(0); off < size; off += part {
		end := min(off+part, size)
		rngs = append(rngs, fmt.Sprintf("bytes=%d-%d", off, end-1))
		lens = append(lens, end-off)
	}
	return rngs, lens, nil
}

// ReadObject reads an object of size bytes from url and times it: with one
// stream a plain GET, with n streams n concurrent GETs of about size/n bytes
// each. Any failed or short stream fails the read.
func ReadObject(ctx context.Context, hc *http.Client, url string, size int64, streams int) (ReadResult, error) {
	if streams == 1 {
		buf := make([]byte, readBufSize)
		start := time.Now()
		n, err := Get(ctx, hc, url, "", size, buf, nil)
		return ReadResult{Bytes: n, Elapsed: time.Since(start)}, err
	}
	rngs, lens, err := Ranges(size, streams)
	if err != nil {
		return ReadResult{}, err
	}
	bufs := make([][]byte, len(rngs))
	for i := range bufs {
		bufs[i] = make([]byte, readBufSize)
	}
	var mu sync.Mutex // guards total
	var total int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for i := range rngs {
		g.Go(func() error {
			n, err := Get(gctx, hc, url, rngs[i], lens[i], bufs[i], nil)
			mu.Lock()
			total += n
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("stream %d (%s): %w", i, rngs[i], err)
			}
			return nil
		})
	}
	err = g.Wait()
	return ReadResult{Bytes: total, Elapsed: time.Since(start)}, err
}

// LoadConfig describes a closed-loop request-rate load: Conns workers, each
// sending GETs of URLs (round robin, each worker starting at a different
// place) back to back, for Warmup and then Duration.
type LoadConfig struct {
	URLs []string
	// Size is every object's length; a body of another length is an error.
	Size  int64
	Conns int
	// Warmup: requests started before it ends are neither counted nor
	// timed (connections are dialled and caches settle).
	Warmup time.Duration
	// Duration is the measured window: requests started in it are counted
	// and timed, and workers stop starting requests when it ends.
	Duration time.Duration
}

// Validate reports an impossible configuration.
func (c LoadConfig) Validate() error {
	switch {
	case len(c.URLs) == 0:
		return fmt.Errorf("%w: no URLs", ErrConfig)
	case c.Size < 0:
		return fmt.Errorf("%w: negative size", ErrConfig)
	case c.Conns < 1:
		return fmt.Errorf("%w: %d connections", ErrConfig, c.Conns)
	case c.Warmup < 0 || c.Duration <= 0:
		return fmt.Errorf("%w: warm-up %v, duration %v", ErrConfig, c.Warmup, c.Duration)
	}
	return nil
}

// LoadResult is what one load run measured in its window.
type LoadResult struct {
	// OK counts requests started in the window that succeeded.
	OK int64
	// Errors counts requests started in the window that failed; FirstError
	// is one of them.
	Errors     int64
	FirstError string
	// Elapsed runs from the window's start to the last counted completion.
	Elapsed time.Duration
	// Latency percentiles of the successful requests.
	P50, P99, Max time.Duration
}

// RPS is successful requests per second.
func (r LoadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Load runs the load described by cfg and returns what it measured. Only a
// bad configuration or ctx ending is an error; failed requests are counted.
func Load(ctx context.Context, hc *http.Client, cfg LoadConfig) (LoadResult, error) {
	if err := cfg.Validate(); err != nil {
		return LoadResult{}, err
	}
	type worker struct {
		ok, errs int64
		firstErr error
		last     time.Time
		lat      []time.Duration
	}
	workers := make([]worker, cfg.Conns)
	begin := time.Now()
	measure := begin.Add(cfg.Warmup)
	end := measure.Add(cfg.Duration)
	stride := max(1, len(cfg.URLs)/cfg.Conns)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			me := &workers[w]
			buf := make([]byte, smallBufSize)
			i := w * stride
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				_, err := Get(ctx, hc, cfg.URLs[i%len(cfg.URLs)], "", cfg.Size, buf, nil)
				i++
				t1 := time.Now()
				if t0.Before(measure) {
					continue
				}
				me.last = t1
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if me.errs == 0 {
						me.firstErr = err
					}
					me.errs++
					continue
				}
				me.ok++
				me.lat = append(me.lat, t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LoadResult{}, fmt.Errorf("bench: load: %w", err)
	}
	var r LoadResult
	var lat []time.Duration
	last := measure
	for i := range workers {
		w := &workers[i]
		r.OK += w.ok
		r.Errors += w.errs
		if w.firstErr != nil && r.FirstError == "" {
			r.FirstError = w.firstErr.Error()
		}
		if w.last.After(last) {
			last = w.last
		}
		lat = append(lat, w.lat...)
	}
	r.Elapsed = last.Sub(measure)
	slices.Sort(lat)
	r.P50 = Percentile(lat, 50)
	r.P99 = Percentile(lat, 99)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	return r, nil
}
