package transfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/content"
)

// stepStream is a chunk that arrives in steps the test releases, as at a
// home node reading from a slow origin. It records the offsets the server
// asks for.
type stepStream struct {
	c    cid.Cid // what CID reports once complete
	data []byte
	// known makes CID defined from the start (a chunk the home knew).
	known bool

	mu     sync.Mutex // guards filled, err, wake
	filled int
	err    error
	wake   chan struct{} // closed on every change

	nexts  chan int64 // offsets passed to Next
	closed chan struct{}
}

func newStepStream(c cid.Cid, data []byte) *stepStream {
	return &stepStream{c: c, data: data, wake: make(chan struct{}),
		nexts: make(chan int64, 1<<16), closed: make(chan struct{})}
}

// release makes the first n bytes available.
func (s *stepStream) release(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filled = n
	close(s.wake)
	s.wake = make(chan struct{})
}

// fail ends the chunk with err.
func (s *stepStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *stepStream) Size() int64        { return int64(len(s.data)) }
func (s *stepStream) Hash() content.Hash { return content.SHA256 }
func (s *stepStream) Close()             { close(s.closed) }

func (s *stepStream) CID() cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known || s.filled == len(s.data) {
		return s.c
	}
	return cid.Undef
}

func (s *stepStream) Next(ctx context.Context, off int64) ([]byte, error) {
	s.nexts <- off
	for {
		s.mu.Lock()
		filled, err, wake := s.filled, s.err, s.wake
		s.mu.Unlock()
		switch {
		case off < int64(filled):
			return s.data[off:filled], nil
		case err != nil:
			return nil, err
		case filled == len(s.data):
			return nil, io.EOF
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// streamHandler serves one stepStream under every fetch key.
type streamHandler struct {
	*memHandler
	st *stepStream
}

func (h streamHandler) FetchStream(ctx context.Context, key []byte) (ChunkStream, error) {
	if string(key) != "k" {
		return nil, ErrNotFound
	}
	return h.st, nil
}

// chunkHandler serves one ChunkStream under every fetch key.
type chunkHandler struct {
	*memHandler
	cs ChunkStream
}

func (h chunkHandler) FetchStream(ctx context.Context, key []byte) (ChunkStream, error) {
	return h.cs, nil
}

// waitNext waits until the server asks st for bytes at off.
func waitNext(t *testing.T, st *stepStream, off int64) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-st.nexts:
			if got == off {
				return
			}
		case <-timeout:
			t.Fatalf("server never asked for bytes at %d", off)
		}
	}
}

type fetchResult struct {
	b   content.Block
	err error
}

func startFetch(t *testing.T, cl *Client, ts *testServer) chan fetchResult {
	cl.h.Peerstore().AddAddrs(ts.h.ID(), ts.h.Addrs(), time.Hour)
	done := make(chan fetchResult, 1)
	ctx := testCtx(t)
	go func() {
		b, err := cl.FetchVerified(ctx, ts.h.ID(), []byte("k"))
		done <- fetchResult{b, err}
	}()
	return done
}

// The first half of a chunk reaches the asker before the second half has
// arrived at the home: the server asks for bytes after the first half only
// once it wrote the first half, and it had sent them all by then.
func TestFetchStreamCutThrough(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	st := newStepStream(c, data)
	home := startServer(t, streamHandler{newMemHandler(), st}, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	done := startFetch(t, cl, home)

	half := len(data) / 2
	st.release(half)
	waitNext(t, st, int64(half))
	if sent := home.bytesSent(); sent != float64(half) {
		t.Fatalf("server sent %v bytes before the second half arrived, want %d", sent, half)
	}
	select {
	case r := <-done:
		t.Fatalf("fetch finished with half a chunk: %v", r.err)
	default:
	}
	st.release(len(data))
	r := <-done
	if r.err != nil {
		t.Fatalf("FetchVerified: %v", r.err)
	}
	if !r.b.CID().Equals(c) || !bytes.Equal(r.b.Data(), data) {
		t.Fatal("FetchVerified returned another chunk")
	}
	if got := home.requests("fetch_stream", "ok"); got != 1 {
		t.Errorf("server counted %v ok stream requests, want 1", got)
	}
	<-st.closed
}

// A home whose origin is slower than the asker's stall timeout keeps the
// stream alive with keep-alive frames between data frames.
func TestFetchStreamKeepAliveMidBody(t *testing.T) {
	const stall = 200 * time.Millisecond
	c, data := randomBlock(t, 256<<10)
	st := newStepStream(c, data)
	home := startServer(t, streamHandler{newMemHandler(), st}, ServerConfig{KeepAliveInterval: stall / 10})
	cl, _ := newTestClient(t, ClientConfig{StallTimeout: stall})
	done := startFetch(t, cl, home)

	st.release(1000)
	waitNext(t, st, 1000)
	// Hold the rest until the server has sent keep-alives for five stall
	// timeouts' worth of intervals.
	for counterValue(home.srv.metrics.keepAlives) < 50 {
		select {
		case r := <-done:
			t.Fatalf("fetch returned while the chunk still arrived: %v", r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	st.release(len(data))
	r := <-done
	if r.err != nil || !bytes.Equal(r.b.Data(), data) {
		t.Fatalf("FetchVerified: %v", r.err)
	}
	if cl.Penalized(home.h.ID()) {
		t.Error("a slow but live home was penalized")
	}
}

// A home that stops sending mid-chunk (no data, no keep-alive) is dropped
// after the stall timeout and penalized.
func TestFetchStreamStallMidBody(t *testing.T) {
	c, data := randomBlock(t, 256<<10)
	st := newStepStream(c, data)
	// Keep-alives far apart: the server goes silent while it waits.
	home := startServer(t, streamHandler{newMemHandler(), st}, ServerConfig{KeepAliveInterval: time.Hour})
	cl, _ := newTestClient(t, ClientConfig{StallTimeout: 200 * time.Millisecond, FetchTimeout: time.Hour})
	done := startFetch(t, cl, home)
	st.release(1000)
	r := <-done
	if !errors.Is(r.err, ErrStalled) {
		t.Fatalf("got %v, want ErrStalled", r.err)
	}
	if !cl.Penalized(home.h.ID()) {
		t.Error("silent home not penalized")
	}
}

// The home's origin failing mid-chunk reaches the asker as ErrRemote, and
// is no fault of the home.
func TestFetchStreamErrorFrame(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	st := newStepStream(c, data)
	home := startServer(t, streamHandler{newMemHandler(), st}, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	done := startFetch(t, cl, home)

	st.release(1000)
	waitNext(t, st, 1000)
	st.fail(errors.New("origin: connection reset"))
	r := <-done
	if !errors.Is(r.err, ErrRemote) {
		t.Fatalf("got %v, want ErrRemote", r.err)
	}
	if cl.Penalized(home.h.ID()) {
		t.Error("home penalized for its origin's failure")
	}
}

// Bytes that do not match the CID of the end frame are corrupt, and the
// home is penalized for them; so is a home whose end frame names another
// CID than its answer header.
func TestFetchStreamWrongCID(t *testing.T) {
	for _, known := range []bool{false, true} {
		c, data := randomBlock(t, 64<<10)
		other := content.Sum(content.SHA256, []byte("other"))
		st := newStepStream(other, data) // names other, sends data
		var cs ChunkStream = st
		if known {
			// The header names c, the end frame other.
			st.c, st.known = c, true
			cs = &switchingCID{st, other}
		}
		home := startServer(t, chunkHandler{newMemHandler(), cs}, ServerConfig{})
		cl, _ := newTestClient(t, ClientConfig{})
		done := startFetch(t, cl, home)
		waitNext(t, st, 0) // the header went out before the first Next
		st.release(len(data))
		r := <-done
		want := ErrCorrupt
		if known {
			want = ErrProtocol
		}
		if !errors.Is(r.err, want) {
			t.Fatalf("known=%v: got %v, want %v", known, r.err, want)
		}
		if !cl.Penalized(home.h.ID()) {
			t.Errorf("known=%v: lying home not penalized", known)
		}
	}
}

// switchingCID names its stream's CID until the bytes are complete, then
// another.
type switchingCID struct {
	*stepStream
	end cid.Cid
}

func (s *switchingCID) CID() cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.filled == len(s.data) {
		return s.end
	}
	return s.c
}

// A handler without FetchStream is streamed from its Fetch answer.
func TestFetchStreamFromPlainHandler(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["k"] = c
	home := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	r := <-startFetch(t, cl, home)
	if r.err != nil || !r.b.CID().Equals(c) || !bytes.Equal(r.b.Data(), data) {
		t.Fatalf("FetchVerified: %v", r.err)
	}
	if got := home.requests("fetch_stream", "ok"); got != 1 {
		t.Errorf("server counted %v ok stream requests, want 1", got)
	}
}

// replayStream is a stream whose first bytes were read already.
type replayStream struct {
	network.Stream
	r io.Reader
}

func (s replayStream) Read(p []byte) (int, error) { return s.r.Read(p) }

// A peer that predates MsgFetchStream resets the stream on it (its decoder
// rejects the type); the client asks again with MsgFetch, and sends that
// peer MsgFetch only from then on.
func TestFetchStreamFallsBackForOldPeers(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["k"] = c
	home := startServer(t, hd, ServerConfig{})
	var mu sync.Mutex
	types := map[MsgType]int{}
	home.h.SetStreamHandler(ProtocolID, func(s network.Stream) {
		var hdr [4]byte
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			_ = s.Reset()
			return
		}
		mu.Lock()
		types[MsgType(hdr[1])]++
		mu.Unlock()
		if MsgType(hdr[1]) > MsgMeta { // what a version-1.0 server knew
			_ = s.Reset()
			return
		}
		home.srv.handleStream(replayStream{s, io.MultiReader(bytes.NewReader(hdr[:]), s)})
	})
	cl, _ := newTestClient(t, ClientConfig{})
	for i := range 2 {
		r := <-startFetch(t, cl, home)
		if r.err != nil || !bytes.Equal(r.b.Data(), data) {
			t.Fatalf("fetch %d: %v", i, r.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if types[MsgFetchStream] != 1 || types[MsgFetch] != 2 {
		t.Fatalf("old peer was asked %v, want one stream request then fetches", types)
	}
	if cl.Penalized(home.h.ID()) {
		t.Error("old peer penalized")
	}
}

// nopDeadline lets receiveFrames read from memory.
type nopDeadline struct{ io.Reader }

func (nopDeadline) SetReadDeadline(time.Time) error { return nil }

func frames(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func frame(t frameType, body []byte) []byte {
	return append(appendFrameHeader(nil, t, len(body)), body...)
}

func receive(tb testing.TB, size int, in []byte) ([]byte, cid.Cid, error) {
	tb.Helper()
	c := &Client{cfg: ClientConfig{}.withDefaults(), metrics: testClientMetrics(tb)}
	b := content.NewBuilder(content.SHA256, size)
	end, err := c.receiveFrames(context.Background(), nopDeadline{bytes.NewReader(in)}, b, time.Now().Add(time.Hour))
	return b.Bytes(), end, err
}

func testClientMetrics(tb testing.TB) *clientMetrics {
	tb.Helper()
	m, err := newClientMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestReceiveFrames(t *testing.T) {
	data := bytes.Repeat([]byte("shoal"), 100)
	c := content.Sum(content.SHA256, data)
	good := frames(frame(frameData, data[:200]), frame(frameKeepAlive, nil), frame(frameData, data[200:]), frame(frameEnd, c.Bytes()))
	got, end, err := receive(t, len(data), good)
	if err != nil || !end.Equals(c) || !bytes.Equal(got, data) {
		t.Fatalf("good frames: %v", err)
	}
	if _, _, err := receive(t, len(data), frames(frame(frameData, data[:10]), frame(frameError, []byte("origin down")))); !errors.Is(err, ErrRemote) {
		t.Fatalf("error frame: %v, want ErrRemote", err)
	}
	for name, in := range map[string][]byte{
		"data past size":     frames(frame(frameData, data), frame(frameData, []byte{1})),
		"empty data":         frame(frameData, nil),
		"oversized data":     appendFrameHeader(nil, frameData, maxFrameData+1),
		"keep-alive body":    frame(frameKeepAlive, []byte{1}),
		"early end":          frames(frame(frameData, data[:10]), frame(frameEnd, c.Bytes())),
		"empty end":          frames(frame(frameData, data), frame(frameEnd, nil)),
		"bad end cid":        frames(frame(frameData, data), frame(frameEnd, []byte{1, 2, 3})),
		"huge end":           frames(frame(frameData, data), appendFrameHeader(nil, frameEnd, 1<<30)),
		"empty error":        frame(frameError, nil),
		"huge error":         appendFrameHeader(nil, frameError, maxErrMsg+1),
		"unknown type":       frame(frameType(9), nil),
		"truncated header":   []byte{byte(frameData), 0, 0},
		"truncated body":     appendFrameHeader(nil, frameData, 100),
		"no end":             frame(frameData, data),
		"max length header":  {byte(frameData), 0xff, 0xff, 0xff, 0xff},
		"max length err hdr": {byte(frameError), 0xff, 0xff, 0xff, 0xff},
	} {
		if _, _, err := receive(t, len(data), in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReceiveFrames(f *testing.F) {
	data := []byte("0123456789")
	c := content.Sum(content.SHA256, data)
	f.Add(uint16(10), frames(frame(frameData, data[:4]), frame(frameKeepAlive, nil), frame(frameData, data[4:]), frame(frameEnd, c.Bytes())))
	f.Add(uint16(10), frames(frame(frameData, data[:4]), frame(frameError, []byte("boom"))))
	f.Add(uint16(0), frame(frameEnd, c.Bytes()))
	f.Add(uint16(3), appendFrameHeader(nil, frameData, 1<<31))
	f.Fuzz(func(t *testing.T, size uint16, in []byte) {
		got, end, err := receive(t, int(size), in)
		if len(got) > int(size) {
			t.Fatalf("received %d bytes for a chunk of %d", len(got), size)
		}
		if err == nil && (len(got) != int(size) || !end.Defined()) {
			t.Fatalf("accepted %d of %d bytes, end %v", len(got), size, end)
		}
	})
}

// Upload and download limits apply to streamed fetches and still deliver.
func TestFetchStreamWithLimits(t *testing.T) {
	c, data := randomBlock(t, 2<<20)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["k"] = c
	home := startServer(t, hd, ServerConfig{UploadBytesPerSec: 64 << 20})
	cl, _ := newTestClient(t, ClientConfig{DownloadBytesPerSec: 64 << 20})
	r := <-startFetch(t, cl, home)
	if r.err != nil || !bytes.Equal(r.b.Data(), data) {
		t.Fatalf("FetchVerified with limits: %v", r.err)
	}
	if got := home.bytesSent(); got != float64(len(data)) {
		t.Errorf("server counted %v bytes sent, want %d", got, len(data))
	}
}
