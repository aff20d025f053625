package transfer

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// A home whose handler runs far longer than the client's stall timeout, but
// keeps sending keep-alives, is waited for: the answer arrives and the home
// is not penalized.
func TestFetchKeepAliveOutlastsStallTimeout(t *testing.T) {
	const stall = 200 * time.Millisecond
	c, data := randomBlock(t, 1<<20)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["slow"] = c
	hd.entered = make(chan struct{}, 1)
	hd.release = make(chan struct{})
	home := startServer(t, hd, ServerConfig{KeepAliveInterval: stall / 10})
	cl, _ := newTestClient(t, ClientConfig{StallTimeout: stall})
	cl.h.Peerstore().AddAddrs(home.h.ID(), home.h.Addrs(), time.Hour)

	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		_, got, err := cl.Fetch(testCtx(t), home.h.ID(), []byte("slow"))
		done <- result{got, err}
	}()
	<-hd.entered
	// Hold the handler until the server has sent keep-alives for five stall
	// timeouts' worth of intervals: without them the client would have
	// given up long before.
	for counterValue(home.srv.metrics.keepAlives) < 50 {
		select {
		case r := <-done:
			t.Fatalf("Fetch returned while the handler still ran: %v", r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(hd.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("Fetch: %v", r.err)
	}
	if !bytes.Equal(r.data, data) {
		t.Fatal("Fetch returned other bytes")
	}
	if cl.Penalized(home.h.ID()) {
		t.Error("a busy but live home was penalized")
	}
}

// FetchTimeout caps the whole wait even while keep-alives flow.
func TestFetchTimeoutCapsKeepAlives(t *testing.T) {
	c, data := randomBlock(t, 1<<10)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["forever"] = c
	hd.entered = make(chan struct{}, 1)
	hd.release = make(chan struct{}) // never released: the handler ends with its context
	home := startServer(t, hd, ServerConfig{KeepAliveInterval: 10 * time.Millisecond})
	cl, _ := newTestClient(t, ClientConfig{StallTimeout: 200 * time.Millisecond, FetchTimeout: 500 * time.Millisecond})
	cl.h.Peerstore().AddAddrs(home.h.ID(), home.h.Addrs(), time.Hour)

	_, _, err := cl.Fetch(testCtx(t), home.h.ID(), []byte("forever"))
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("got %v, want ErrStalled once FetchTimeout passed", err)
	}
	if counterValue(home.srv.metrics.keepAlives) == 0 {
		t.Error("no keep-alive was sent before the cap")
	}
}

// silentServer reads each request, sends keepAlives working frames, then
// never answers nor closes the stream (a hung or partitioned peer) until
// the test ends. It signals got for every request read.
type silentServer struct {
	h   host.Host
	got chan struct{}
}

func startSilentServer(tb testing.TB, keepAlives int) *silentServer {
	tb.Helper()
	ss := &silentServer{h: newHost(tb), got: make(chan struct{}, 16)}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	ss.h.SetStreamHandler(ProtocolID, func(s network.Stream) {
		wg.Add(1)
		defer wg.Done()
		defer s.Reset()
		if _, err := ReadRequest(s); err != nil {
			return
		}
		ss.got <- struct{}{}
		ka, _ := AppendResponse(nil, Response{Status: StatusWorking})
		for range keepAlives {
			if _, err := s.Write(ka); err != nil {
				return
			}
		}
		<-quit
	})
	tb.Cleanup(func() {
		close(quit)
		ss.h.RemoveStreamHandler(ProtocolID)
		_ = ss.h.Close()
		wg.Wait()
	})
	return ss
}

// A home that goes silent (before any frame, or after a few keep-alives)
// is dropped after the stall timeout, far below FetchTimeout, with
// ErrStalled, and lands in the penalty box.
func TestSilentHomeStalls(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keepAlives int
		call       func(ctx context.Context, cl *Client, h host.Host) error
	}{
		{"fetch/silent", 0, func(ctx context.Context, cl *Client, h host.Host) error {
			_, _, err := cl.Fetch(ctx, h.ID(), []byte("k"))
			return err
		}},
		{"fetch/after keep-alives", 3, func(ctx context.Context, cl *Client, h host.Host) error {
			_, _, err := cl.Fetch(ctx, h.ID(), []byte("k"))
			return err
		}},
		{"meta/silent", 0, func(ctx context.Context, cl *Client, h host.Host) error {
			_, err := cl.Meta(ctx, h.ID(), []byte("k"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := startSilentServer(t, tc.keepAlives)
			// FetchTimeout is far beyond the test's own deadline: only the
			// stall timeout can end the call with ErrStalled.
			cl, _ := newTestClient(t, ClientConfig{StallTimeout: 200 * time.Millisecond, FetchTimeout: time.Hour})
			cl.h.Peerstore().AddAddrs(ss.h.ID(), ss.h.Addrs(), time.Hour)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tc.call(ctx, cl, ss.h)
			if !errors.Is(err, ErrStalled) {
				t.Fatalf("got %v, want ErrStalled", err)
			}
			<-ss.got
			if !cl.Penalized(ss.h.ID()) {
				t.Error("silent home not penalized")
			}
		})
	}
}

// Answers are not faults: a home that says not found is not penalized.
func TestFetchNotFoundIsNoPenalty(t *testing.T) {
	home := startServer(t, newMemHandler(), ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	cl.h.Peerstore().AddAddrs(home.h.ID(), home.h.Addrs(), time.Hour)
	if _, _, err := cl.Fetch(testCtx(t), home.h.ID(), []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if _, err := cl.Meta(testCtx(t), home.h.ID(), []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if cl.Penalized(home.h.ID()) {
		t.Error("a home that answered not found was penalized")
	}
}
