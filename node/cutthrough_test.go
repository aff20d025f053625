package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/transfer"
)

// steppedOrigin is a member's link to the shared origin on which a range
// body sends its first hold bytes, then waits for release and either goes
// on or fails with fail: an origin slower than the cluster's links, or one
// that breaks mid-chunk.
type steppedOrigin struct {
	*fakeOrigin
	release chan struct{}

	mu   sync.Mutex // guards hold and fail
	hold int64      // 0: bodies pass straight through
	fail error
}

func (o *steppedOrigin) set(hold int64, fail error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hold, o.fail = hold, fail
}

func (o *steppedOrigin) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	rc, err := o.fakeOrigin.GetRange(ctx, bucket, key, etag, off, n)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.hold == 0 {
		return rc, nil
	}
	return &steppedBody{ReadCloser: rc, ctx: ctx, left: o.hold, release: o.release, fail: o.fail}, nil
}

type steppedBody struct {
	io.ReadCloser
	ctx     context.Context
	left    int64
	waited  bool
	release chan struct{}
	fail    error
}

func (b *steppedBody) Read(p []byte) (int, error) {
	if b.left > 0 {
		n, err := b.ReadCloser.Read(p[:min(int64(len(p)), b.left)])
		b.left -= int64(n)
		return n, err
	}
	if !b.waited {
		b.waited = true
		select {
		case <-b.release:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	if b.fail != nil {
		return 0, b.fail
	}
	return b.ReadCloser.Read(p)
}

// offsetRecorder wraps a member's peer handler and reports the offsets its
// transfer server asks streamed chunks for: the server asks for bytes
// after off only once it has written the bytes before it.
type offsetRecorder struct {
	transfer.Handler
	offs chan int64
}

func (r offsetRecorder) FetchStream(ctx context.Context, key []byte) (transfer.ChunkStream, error) {
	cs, err := r.Handler.(transfer.StreamHandler).FetchStream(ctx, key)
	if err != nil {
		return nil, err
	}
	return recordedStream{cs, r.offs}, nil
}

type recordedStream struct {
	transfer.ChunkStream
	offs chan int64
}

func (s recordedStream) Next(ctx context.Context, off int64) ([]byte, error) {
	select {
	case s.offs <- off:
	default:
	}
	return s.ChunkStream.Next(ctx, off)
}

// cutThroughSwarm is two members, each reading the origin through its own
// steppedOrigin and recording the offsets its server streams, with a
// one-chunk object; reader is the member that is not the chunk's home.
type cutThroughSwarm struct {
	*swarm
	data           []byte
	home, reader   *member
	homeOrigin     *steppedOrigin
	readerOrigin   *steppedOrigin
	homeOffsets    chan int64
	releaseOrigins chan struct{}
}

func newCutThroughSwarm(t *testing.T) *cutThroughSwarm {
	t.Helper()
	release := make(chan struct{})
	origins := make([]*steppedOrigin, 2)
	offs := []chan int64{make(chan int64, 1024), make(chan int64, 1024)}
	s := newSwarmOrigins(t, 2, Config{},
		func(i int, h transfer.Handler) transfer.Handler { return offsetRecorder{h, offs[i]} },
		func(i int, org *fakeOrigin) Origin {
			origins[i] = &steppedOrigin{fakeOrigin: org, release: release}
			return origins[i]
		})
	data := randBytes(cs, 11)
	s.org.set("b", "k", data)
	m0 := s.members[0]
	v := m0.n.version("b", "k", etagOf(data), int64(len(data)))
	homeIdx := 0
	if chunkHomes(v, 0, m0.h.ID(), m0.mem.Members(), nil, 1)[0] != m0.h.ID() {
		homeIdx = 1
	}
	return &cutThroughSwarm{swarm: s, data: data,
		home: s.members[homeIdx], reader: s.members[1-homeIdx],
		homeOrigin: origins[homeIdx], readerOrigin: origins[1-homeIdx],
		homeOffsets: offs[homeIdx], releaseOrigins: release}
}

// read reads the object on the reader in the background.
func (c *cutThroughSwarm) read(t *testing.T) chan error {
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	go func() {
		defer cancel()
		got, err := get(ctx, c.reader.n, "b", "k", 0, -1)
		if err == nil && !bytes.Equal(got, c.data) {
			err = fmt.Errorf("wrong bytes (%d, want %d)", len(got), len(c.data))
		}
		done <- err
	}()
	return done
}

// awaitStreamed waits until the home's server has streamed at least n
// bytes of the chunk.
func (c *cutThroughSwarm) awaitStreamed(t *testing.T, n int64, done chan error) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case off := <-c.homeOffsets:
			if off >= n {
				return
			}
		case err := <-done:
			t.Fatalf("read ended before the home streamed %d bytes: %v", n, err)
		case <-timeout:
			t.Fatalf("home never streamed %d bytes", n)
		}
	}
}

// A home whose origin read is still in progress passes on the bytes that
// have arrived: the reader receives the first half of the chunk while the
// second half is held at the origin, and then the whole chunk, verified,
// with one origin read in the cluster.
func TestSwarmCutThroughSlowOrigin(t *testing.T) {
	c := newCutThroughSwarm(t)
	half := int64(len(c.data) / 2)
	c.homeOrigin.set(half, nil)
	done := c.read(t)
	c.awaitStreamed(t, half, done)
	close(c.releaseOrigins)
	if err := <-done; err != nil {
		t.Fatalf("read: %v", err)
	}
	if g := c.org.rangeCalls("b", "k", 0); g != 1 {
		t.Errorf("origin served the chunk %d times, want once (by the home)", g)
	}
	if st := c.status(t, c.memberIndex(c.reader)); st.ChunkHome != 1 || st.ChunkOrigin != 0 {
		t.Errorf("reader got %d chunks from the home and %d from the origin, want 1 and 0", st.ChunkHome, st.ChunkOrigin)
	}
	// The home stored what it streamed.
	mustGet(t, c.home.n, "k", c.data)
	if g := c.org.rangeCalls("b", "k", 0); g != 1 {
		t.Errorf("home read the origin again (%d reads)", g)
	}
}

// A home whose origin read fails mid-chunk, after part of the chunk was
// streamed, tells the reader so; the reader does not blame the home and
// reads the chunk itself, getting the right bytes.
func TestSwarmHomeOriginFailsMidChunk(t *testing.T) {
	c := newCutThroughSwarm(t)
	half := int64(len(c.data) / 2)
	c.homeOrigin.set(half, fmt.Errorf("injected reset: %w", origin.ErrUnavailable))
	done := c.read(t)
	c.awaitStreamed(t, half, done)
	close(c.releaseOrigins)
	if err := <-done; err != nil {
		t.Fatalf("read: %v", err)
	}
	if c.reader.n.cl.Transfer.Penalized(c.home.h.ID()) {
		t.Error("reader penalized the home for its origin's failure")
	}
	st := c.status(t, c.memberIndex(c.reader))
	if st.ChunkOrigin != 1 || st.ChunkHome != 0 {
		t.Errorf("reader got %d chunks from the origin and %d from the home, want 1 and 0", st.ChunkOrigin, st.ChunkHome)
	}
	if g := c.org.rangeCalls("b", "k", 0); g != 2 {
		t.Errorf("origin served %d reads, want 2 (the home's failed one, the reader's)", g)
	}
}

func (s *swarm) memberIndex(m *member) int {
	for i, x := range s.members {
		if x == m {
			return i
		}
	}
	return -1
}

// Origin bytes that hash to another CID than the one recorded for the chunk
// under the same ETag (an origin not behaving like S3) are never served.
func TestOriginBytesMustMatchRecordedCID(t *testing.T) {
	e := newEnv(t, Config{})
	data := randBytes(2*cs, 5)
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))
	if _, err := e.cat.PutChunk(t.Context(), v, 1, content.Sum(content.SHA256, []byte("recorded"))); err != nil {
		t.Fatal(err)
	}
	_, err := get(t.Context(), e.n, "b", "k", 0, -1)
	if !errors.Is(err, gateway.ErrPreconditionFailed) {
		t.Fatalf("got %v, want ErrPreconditionFailed", err)
	}
}
