package originfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/origin"
)

// fakeOrigin serves one object; it counts range requests by offset, and
// can stall responses (deliver stallAt bytes, then nothing until closed),
// mute requests (no answer until cancelled), pace bodies (one piece per
// step of virtual time) or add bytes to a body.
type fakeOrigin struct {
	data []byte

	mu      sync.Mutex
	ranges  map[int64]int
	stalls  int
	stallAt int64
	mute    int
	step    time.Duration // pause before each piece of a body
	extra   int           // bytes appended to every body
}

func newFake(size int) *fakeOrigin {
	r := rand.New(rand.NewPCG(1, uint64(size)))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return &fakeOrigin{data: data, ranges: map[int64]int{}}
}

func (o *fakeOrigin) calls(off int64) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ranges[off]
}

func (o *fakeOrigin) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	o.mu.Lock()
	o.ranges[off]++
	mute := o.mute > 0
	if mute {
		o.mute--
	}
	stall := !mute && o.stalls > 0
	if stall {
		o.stalls--
	}
	step, extra := o.step, o.extra
	o.mu.Unlock()
	if etag != "e" {
		return nil, origin.ErrPreconditionFailed
	}
	if mute {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	body := append(bytes.Clone(o.data[off:off+n]), make([]byte, extra)...)
	if stall {
		return &stallingBody{r: bytes.NewReader(body[:o.stallAt]), closed: make(chan struct{})}, nil
	}
	if step > 0 {
		return &pacedBody{r: bytes.NewReader(body), step: step}, nil
	}
	return io.NopCloser(bytes.NewReader(body)), nil
}

type stallingBody struct {
	r      io.Reader
	closed chan struct{}
	once   sync.Once
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if n, err := b.r.Read(p); n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	<-b.closed
	return 0, errors.New("stalling body: read on closed body")
}

func (b *stallingBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// shortOrigin serves whatever its object has, however much is asked.
type shortOrigin struct{ o *fakeOrigin }

func (s shortOrigin) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(s.o.data[off:])), nil
}

// pacedBody delivers at most 16 KiB per read, after a pause.
type pacedBody struct {
	r    io.Reader
	step time.Duration
}

func (b *pacedBody) Read(p []byte) (int, error) {
	time.Sleep(b.step)
	return b.r.Read(p[:min(len(p), 16<<10)])
}

func (b *pacedBody) Close() error { return nil }

const size = 1 << 20

func request(n int64) Request {
	return Request{Bucket: "b", Key: "k", ETag: "e", Off: 0, Len: n, Hash: content.SHA256}
}

func newFetcher(t *testing.T, o Origin, p Policy) *Fetcher {
	t.Helper()
	f, err := New(o, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// TestFetchWhole: the chunk comes back whole, named by its hash, counted.
func TestFetchWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		f := newFetcher(t, o, Policy{})
		blk, err := f.Fetch(t.Context(), request(size), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(blk.Data(), o.data) || !blk.CID().Equals(content.Sum(content.SHA256, o.data)) {
			t.Fatal("wrong bytes or CID")
		}
		c := f.Counters()
		if c.Chunks.Load() != 1 || c.Bytes.Load() != size || c.Hedges.Load() != 0 || c.Resumes.Load() != 0 {
			t.Fatalf("counters: chunks %d bytes %d hedges %d resumes %d", c.Chunks.Load(), c.Bytes.Load(), c.Hedges.Load(), c.Resumes.Load())
		}
	})
}

// TestFetchStallResumes: a response that stops delivering mid-chunk is
// given up after the stall time and the missing bytes are asked for again
// from the first one missing; nothing is read twice.
func TestFetchStallResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.stalls, o.stallAt = 1, size/3
		f := newFetcher(t, o, Policy{})
		start := time.Now()
		blk, err := f.Fetch(t.Context(), request(size), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(blk.Data(), o.data) {
			t.Fatal("wrong bytes after a resumed read")
		}
		if took := time.Since(start); took != DefaultStall {
			t.Errorf("resumed after %v, want the stall time %v", took, DefaultStall)
		}
		if a, b := o.calls(0), o.calls(size/3); a != 1 || b != 1 {
			t.Fatalf("range requests at 0 and at the first missing byte: %d and %d, want 1 and 1", a, b)
		}
		if r, b := f.Counters().Resumes.Load(), f.Counters().Bytes.Load(); r != 1 || b != size {
			t.Fatalf("resumes %d bytes %d, want 1 and %d", r, b, size)
		}
	})
}

// TestFetchStallGivesUp: an origin whose every response stalls fails the
// fetch after MaxResumes resumes, as unavailable.
func TestFetchStallGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.stalls, o.stallAt = 100, 1000
		f := newFetcher(t, o, Policy{MaxResumes: 2})
		_, err := f.Fetch(t.Context(), request(size), nil)
		if !errors.Is(err, ErrStalled) || !errors.Is(err, origin.ErrUnavailable) {
			t.Fatalf("error %v: want stalled and unavailable", err)
		}
		o.mu.Lock()
		calls := 0
		for _, c := range o.ranges {
			calls += c
		}
		o.mu.Unlock()
		if calls != 3 {
			t.Fatalf("range requests %d, want 3 (one and two resumes)", calls)
		}
	})
}

// TestFetchHedgesSilentRequest: a request with no answer within the stall
// time is sent once more; the second answer is used, the first cancelled.
func TestFetchHedgesSilentRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.mute = 1
		f := newFetcher(t, o, Policy{})
		blk, err := f.Fetch(t.Context(), request(size), nil)
		if err != nil || !bytes.Equal(blk.Data(), o.data) {
			t.Fatalf("hedged fetch: %v", err)
		}
		if c := o.calls(0); c != 2 {
			t.Fatalf("range requests %d, want 2", c)
		}
		if h := f.Counters().Hedges.Load(); h != 1 {
			t.Fatalf("hedges %d, want 1", h)
		}
		f.Close()
		synctest.Wait() // the muted request was cancelled: nothing left running
	})
}

// TestFetchNoHedgeWhenPrompt: a slow but moving body is neither hedged nor
// resumed, however long it takes in all.
func TestFetchNoHedgeWhenPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.step = DefaultStall / 2
		f := newFetcher(t, o, Policy{})
		if _, err := f.Fetch(t.Context(), request(size), nil); err != nil {
			t.Fatal(err)
		}
		if c, h, r := o.calls(0), f.Counters().Hedges.Load(), f.Counters().Resumes.Load(); c != 1 || h != 0 || r != 0 {
			t.Fatalf("requests %d hedges %d resumes %d, want 1 0 0", c, h, r)
		}
	})
}

// TestFetchStallOff: with a negative stall time a silent body is waited
// for (no hedge, no resume).
func TestFetchStallOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.step = time.Hour
		f := newFetcher(t, o, Policy{Stall: -1})
		if _, err := f.Fetch(t.Context(), request(64<<10), nil); err != nil {
			t.Fatal(err)
		}
		if c := o.calls(0); c != 1 {
			t.Fatalf("requests %d, want 1", c)
		}
	})
}

// TestFetchWrongLength: a body longer or shorter than asked fails as
// unavailable; nothing wrong is returned.
func TestFetchWrongLength(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.extra = 1
		f := newFetcher(t, o, Policy{})
		if _, err := f.Fetch(t.Context(), request(size), nil); !errors.Is(err, ErrShort) || !errors.Is(err, origin.ErrUnavailable) {
			t.Fatalf("long body: %v", err)
		}
		o.extra = 0
		short := &fakeOrigin{data: o.data[:size/2], ranges: map[int64]int{}}
		f = newFetcher(t, shortOrigin{short}, Policy{})
		if _, err := f.Fetch(t.Context(), request(size), nil); !errors.Is(err, ErrShort) || !errors.Is(err, origin.ErrUnavailable) {
			t.Fatalf("short body: %v", err)
		}
	})
}

// TestFetchFollowers: the arrival is handed out before the bytes arrive,
// and a follower sees every byte, in order, while the fetch goes on.
func TestFetchFollowers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.step = 10 * time.Millisecond
		f := newFetcher(t, o, Policy{})
		got := make(chan []byte, 1)
		var sawPartial bool
		started := func(a *Arrival) {
			go func() {
				var buf []byte
				for {
					b, err := a.Next(context.Background(), int64(len(buf)))
					if err == io.EOF {
						got <- buf
						return
					}
					if err != nil {
						got <- nil
						return
					}
					if len(buf) > 0 && len(buf) < size {
						sawPartial = true
					}
					buf = append(buf, b...)
				}
			}()
		}
		blk, err := f.Fetch(t.Context(), request(size), started)
		if err != nil {
			t.Fatal(err)
		}
		b := <-got
		if !bytes.Equal(b, blk.Data()) || !sawPartial {
			t.Fatalf("follower got %d bytes (partial seen: %v)", len(b), sawPartial)
		}
	})
}

// TestFetchSlots: at most Slots fetches read the origin at once.
func TestFetchSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newFake(size)
		o.step = time.Millisecond
		f := newFetcher(t, o, Policy{Slots: 2})
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				r := request(64 << 10)
				r.Off = int64(i) * 64 << 10
				if _, err := f.Fetch(t.Context(), r, nil); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		if n := len(f.slot); n != 2 {
			t.Errorf("%d slots taken, want 2", n)
		}
		wg.Wait()
	})
}

func ExampleFetcher() {
	f, _ := New(newFake(size), Policy{}, nil)
	defer f.Close()
	blk, err := f.Fetch(context.Background(), request(size), nil)
	fmt.Println(len(blk.Data()), err)
	// Output: 1048576 <nil>
}
