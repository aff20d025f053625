package transfer

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetBlockOneProvider(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	hd := newMemHandler()
	hd.put(c, data)
	srv := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})

	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(srv.h)})
	if err != nil {
		t.Fatalf("GetBlock: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("GetBlock returned other bytes")
	}
	if sent := srv.bytesSent(); sent != blockSize {
		t.Fatalf("server sent %v bytes, want %d", sent, blockSize)
	}
	if tp := cl.Peer(srv.h.ID()).Throughput; tp <= 0 {
		t.Fatalf("no throughput measured for the provider: %v", tp)
	}
}

func TestGetBlockSmallAndEmptyBlocks(t *testing.T) {
	hd := newMemHandler()
	var ids []cid.Cid
	var blocks [][]byte
	for _, n := range []int{0, 1, 1000, DefaultSubRangeSize, DefaultSubRangeSize + 1} {
		c, data := randomBlock(t, n)
		hd.put(c, data)
		ids = append(ids, c)
		blocks = append(blocks, data)
	}
	a := startServer(t, hd, ServerConfig{})
	b := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	for i, c := range ids {
		got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(a.h), info(b.h)})
		if err != nil {
			t.Fatalf("block of %d bytes: %v", len(blocks[i]), err)
		}
		if !bytes.Equal(got, blocks[i]) {
			t.Fatalf("block of %d bytes: wrong bytes", len(blocks[i]))
		}
	}
}

func TestGetBlockThreeProviders(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	var srvs []*testServer
	var provs []peer.AddrInfo
	for range 3 {
		hd := newMemHandler()
		hd.put(c, data)
		s := startServer(t, hd, ServerConfig{})
		srvs = append(srvs, s)
		provs = append(provs, info(s.h))
	}
	cl, _ := newTestClient(t, ClientConfig{MaxParallel: 3, SubRangeSize: 1 << 20})

	got, err := cl.GetBlock(testCtx(t), c, provs)
	if err != nil {
		t.Fatalf("GetBlock: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("GetBlock returned other bytes")
	}
	var total float64
	for i, s := range srvs {
		sent := s.bytesSent()
		if sent == 0 {
			t.Errorf("provider %d sent nothing: the chunk was not spread", i)
		}
		total += sent
	}
	if total != blockSize {
		t.Fatalf("providers sent %v bytes in all, want exactly %d (no byte twice)", total, blockSize)
	}
}

func TestGetBlockCorruptProviderIsCaught(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	liarH := newMemHandler()
	liarH.put(c, data)
	liarH.corrupt = true
	honestH := newMemHandler()
	honestH.put(c, data)
	liar := startServer(t, liarH, ServerConfig{})
	honest := startServer(t, honestH, ServerConfig{})
	cl, reg := newTestClient(t, ClientConfig{MaxParallel: 2})

	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(liar.h), info(honest.h)})
	if err != nil {
		t.Fatalf("GetBlock: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("GetBlock returned unverified bytes")
	}
	if liar.bytesSent() == 0 {
		t.Fatal("the liar was never asked: test proves nothing")
	}
	if cl.Peer(liar.h.ID()).PenalizedUntil.IsZero() {
		t.Error("liar not penalized")
	}
	if !cl.Peer(honest.h.ID()).PenalizedUntil.IsZero() {
		t.Error("honest provider penalized")
	}
	if !gathered(t, reg, "shoal_transfer_corrupt_total") {
		t.Error("corrupt metric not exported by the injected registerer")
	}
	if v := counterValue(cl.metrics.corrupt); v != 1 {
		t.Errorf("corrupt count %v, want 1", v)
	}

	// The liar stays in the penalty box: the next fetch avoids it.
	before := liar.bytesSent()
	if _, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(liar.h), info(honest.h)}); err != nil {
		t.Fatalf("second GetBlock: %v", err)
	}
	if liar.bytesSent() != before {
		t.Error("penalized liar was asked again")
	}
}

func TestGetBlockOnlyLiarFails(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	hd := newMemHandler()
	hd.put(c, data)
	hd.corrupt = true
	liar := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	_, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(liar.h)})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrUnavailable and ErrCorrupt", err)
	}
	if cl.Peer(liar.h.ID()).PenalizedUntil.IsZero() {
		t.Error("liar not penalized")
	}
}

func TestGetBlockStalledProviderResumes(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	const stopAfter = 1536 << 10
	staller := startRawServer(t, data, stopAfter)
	hd := newMemHandler()
	hd.put(c, data)
	honest := startServer(t, hd, ServerConfig{})
	// One provider at a time, whole chunk per request: the staller (first in
	// order, both unmeasured) gets everything and stops after stopAfter.
	cl, _ := newTestClient(t, ClientConfig{MaxParallel: 1, SubRangeSize: blockSize, StallTimeout: time.Second})

	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(staller.h), info(honest.h)})
	if err != nil {
		t.Fatalf("GetBlock: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	if sent := honest.bytesSent(); sent != blockSize-stopAfter {
		t.Fatalf("honest provider sent %v bytes, want %d: not resumed at the offset", sent, blockSize-stopAfter)
	}
	if v := counterValue(cl.metrics.stalls); v != 1 {
		t.Errorf("stalls %v, want 1", v)
	}
	if cl.Peer(staller.h.ID()).PenalizedUntil.IsZero() {
		t.Error("staller not penalized")
	}
}

func TestGetBlockProviderKilledMidTransfer(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	const stopAfter = 1 << 20
	victim := startRawServer(t, data, stopAfter)
	hd := newMemHandler()
	hd.put(c, data)
	honest := startServer(t, hd, ServerConfig{})
	// A long stall timeout: the switch must come from the dead connection.
	cl, _ := newTestClient(t, ClientConfig{MaxParallel: 1, SubRangeSize: blockSize, StallTimeout: time.Minute})

	go func() {
		select {
		case <-victim.sent:
			_ = victim.h.Close()
		case <-victim.quit:
		}
	}()
	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(victim.h), info(honest.h)})
	if err != nil {
		t.Fatalf("GetBlock: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	sent := honest.bytesSent()
	if sent >= blockSize || sent < blockSize-stopAfter-(1<<20) {
		t.Fatalf("honest provider sent %v bytes: want the rest after the victim's bytes", sent)
	}
	if v := counterValue(cl.metrics.stalls); v != 0 {
		t.Errorf("stalls %v, want 0 (the connection died)", v)
	}
}

func TestGetBlockNotFoundThenNext(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	empty := startServer(t, newMemHandler(), ServerConfig{})
	hd := newMemHandler()
	hd.put(c, data)
	full := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{MaxParallel: 1})

	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(empty.h), info(full.h)})
	if err != nil {
		t.Fatalf("GetBlock: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	if empty.requests("get", "not_found") != 1 {
		t.Errorf("empty provider was not asked first")
	}
	if !cl.Peer(empty.h.ID()).PenalizedUntil.IsZero() {
		t.Error("a provider without the block is not at fault, but was penalized")
	}
}

func TestGetBlockAllFail(t *testing.T) {
	c, _ := randomBlock(t, 1000)
	a := startServer(t, newMemHandler(), ServerConfig{})
	b := startServer(t, newMemHandler(), ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})

	_, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(a.h), info(b.h)})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrUnavailable and ErrNotFound", err)
	}
	if _, err := cl.GetBlock(testCtx(t), c, nil); !errors.Is(err, ErrNoProviders) {
		t.Fatalf("no providers: got %v, want ErrNoProviders", err)
	}

	// A provider that is gone (closed host) is an error too, not a hang.
	gone := newHost(t)
	addr := info(gone)
	_ = gone.Close()
	if _, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{addr}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed provider: got %v, want ErrUnavailable", err)
	}
}

func TestGetBlockBadCID(t *testing.T) {
	cl, _ := newTestClient(t, ClientConfig{})
	if _, err := cl.GetBlock(testCtx(t), cid.Undef, []peer.AddrInfo{{ID: "x"}}); !errors.Is(err, content.ErrUnsupported) {
		t.Fatalf("undefined cid: got %v", err)
	}
}

func TestServerBusyAndConcurrencyBound(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	gated := newMemHandler()
	gated.put(c, data)
	gated.entered = make(chan struct{}, 1)
	gated.release = make(chan struct{})
	busy := startServer(t, gated, ServerConfig{MaxConcurrent: 1})
	hd := newMemHandler()
	hd.put(c, data)
	honest := startServer(t, hd, ServerConfig{})

	// First client takes the server's only slot and waits in the handler.
	first, _ := newTestClient(t, ClientConfig{})
	type res struct {
		data []byte
		err  error
	}
	firstDone := make(chan res, 1)
	go func() {
		d, err := first.GetBlock(testCtx(t), c, []peer.AddrInfo{info(busy.h)})
		firstDone <- res{d, err}
	}()
	<-gated.entered

	cl, _ := newTestClient(t, ClientConfig{MaxParallel: 1})
	_, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(busy.h)})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second request at the bound: got %v, want ErrBusy", err)
	}
	if !cl.Peer(busy.h.ID()).PenalizedUntil.IsZero() {
		t.Error("busy provider penalized")
	}
	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(busy.h), info(honest.h)})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("busy then honest: %v", err)
	}
	if n := gated.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1: the bound did not hold", n)
	}
	if busy.requests("get", "busy") != 2 {
		t.Errorf("busy answers: %v, want 2", busy.requests("get", "busy"))
	}

	close(gated.release)
	r := <-firstDone
	if r.err != nil || !bytes.Equal(r.data, data) {
		t.Fatalf("first request after release: %v", r.err)
	}
}

func TestFetchThrough(t *testing.T) {
	c, data := randomBlock(t, blockSize)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["bucket/key@v1#0"] = c
	home := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	cl.h.Peerstore().AddAddrs(home.h.ID(), home.h.Addrs(), time.Hour)

	gotC, got, err := cl.Fetch(testCtx(t), home.h.ID(), []byte("bucket/key@v1#0"))
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !gotC.Equals(c) || !bytes.Equal(got, data) {
		t.Fatal("Fetch returned another chunk")
	}
	if _, _, err := cl.Fetch(testCtx(t), home.h.ID(), []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: got %v, want ErrNotFound", err)
	}
	if _, _, err := cl.Fetch(testCtx(t), home.h.ID(), make([]byte, MaxKeySize+1)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized key: got %v, want ErrProtocol", err)
	}
	if _, _, err := cl.Fetch(testCtx(t), home.h.ID(), nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("empty key: got %v, want ErrProtocol", err)
	}
}

func TestFetchThroughCorrupt(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	hd := newMemHandler()
	hd.put(c, data)
	hd.keys["k"] = c
	hd.corrupt = true
	home := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	cl.h.Peerstore().AddAddrs(home.h.ID(), home.h.Addrs(), time.Hour)

	if _, _, err := cl.Fetch(testCtx(t), home.h.ID(), []byte("k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if cl.Peer(home.h.ID()).PenalizedUntil.IsZero() {
		t.Error("lying home node not penalized")
	}
}

func TestMeta(t *testing.T) {
	hd := newMemHandler()
	hd.meta["bucket/key"] = []byte(`{"etag":"abc","size":123}`)
	hd.meta["big"] = make([]byte, MaxMetaSize+1)
	home := startServer(t, hd, ServerConfig{})
	cl, _ := newTestClient(t, ClientConfig{})
	cl.h.Peerstore().AddAddrs(home.h.ID(), home.h.Addrs(), time.Hour)

	got, err := cl.Meta(testCtx(t), home.h.ID(), []byte("bucket/key"))
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	if string(got) != `{"etag":"abc","size":123}` {
		t.Fatalf("Meta = %q", got)
	}
	if _, err := cl.Meta(testCtx(t), home.h.ID(), []byte("missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: got %v, want ErrNotFound", err)
	}
	if _, err := cl.Meta(testCtx(t), home.h.ID(), []byte("big")); !errors.Is(err, ErrRemote) {
		t.Fatalf("oversized answer: got %v, want ErrRemote", err)
	}
}

func TestLimitsStillDeliver(t *testing.T) {
	c, data := randomBlock(t, 2<<20)
	hd := newMemHandler()
	hd.put(c, data)
	srv := startServer(t, hd, ServerConfig{UploadBytesPerSec: 64 << 20})
	cl, _ := newTestClient(t, ClientConfig{DownloadBytesPerSec: 64 << 20})
	got, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(srv.h)})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlock with limits: %v", err)
	}
}

func TestGetBlockContextCanceled(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	gated := newMemHandler()
	gated.put(c, data)
	gated.entered = make(chan struct{}, 1)
	gated.release = make(chan struct{})
	srv := startServer(t, gated, ServerConfig{})
	t.Cleanup(func() { close(gated.release) })
	cl, _ := newTestClient(t, ClientConfig{StallTimeout: time.Minute})

	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { <-gated.entered; cancel() }()
	_, err := cl.GetBlock(ctx, c, []peer.AddrInfo{info(srv.h)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if !cl.Peer(srv.h.ID()).PenalizedUntil.IsZero() {
		t.Error("provider penalized for our own cancellation")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (ServerConfig{}).Validate(); err != nil {
		t.Fatalf("zero server config: %v", err)
	}
	if err := (ClientConfig{}).Validate(); err != nil {
		t.Fatalf("zero client config: %v", err)
	}
	if err := (ServerConfig{MaxConcurrent: -1, IdleTimeout: -time.Second}).Validate(); err == nil {
		t.Fatal("negative server config accepted")
	}
	if err := (ClientConfig{StallTimeout: -1}).Validate(); err == nil {
		t.Fatal("negative stall timeout accepted")
	}
	if _, err := NewClient(nil, ClientConfig{}); err == nil {
		t.Fatal("nil host accepted")
	}
}

func TestServerShutdownWithRequestInFlight(t *testing.T) {
	c, data := randomBlock(t, 1<<20)
	gated := newMemHandler()
	gated.put(c, data)
	gated.entered = make(chan struct{}, 1)
	gated.release = make(chan struct{}) // never released: only shutdown ends the handler
	h := newHost(t)
	srv, err := NewServer(h, gated, ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	<-srv.Ready()

	cl, _ := newTestClient(t, ClientConfig{StallTimeout: time.Minute})
	getDone := make(chan error, 1)
	go func() {
		_, err := cl.GetBlock(testCtx(t), c, []peer.AddrInfo{info(h)})
		getDone <- err
	}()
	<-gated.entered
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-getDone; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetBlock from a server shutting down: got %v, want ErrUnavailable", err)
	}
	if err := srv.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Run: got %v, want ErrClosed", err)
	}
}
