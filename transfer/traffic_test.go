package transfer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// TestTrafficPerProvider spreads one chunk over three providers and checks
// that the client's per-peer figures match what each provider's server
// says it sent to the client: the bytes in both ledgers, and a measured
// throughput for every provider that sent a sub-range.
func TestTrafficPerProvider(t *testing.T) {
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
	if _, err := cl.GetBlock(testCtx(t), c, provs); err != nil {
		t.Fatalf("GetBlock: %v", err)
	}

	var total int64
	for i, s := range srvs {
		pi := cl.Peer(s.h.ID())
		out := s.srv.traffic.Peer(cl.h.ID()).Out
		if pi.BytesIn == 0 || pi.BytesIn != out || float64(out) != s.bytesSent() {
			t.Errorf("provider %d: client counts %d bytes in, server %d out to it, metric %v", i, pi.BytesIn, out, s.bytesSent())
		}
		if pi.BytesOut != 0 {
			t.Errorf("provider %d: client counts %d bytes out without a server", i, pi.BytesOut)
		}
		if pi.Throughput <= 0 || pi.ReceiveRate <= 0 {
			t.Errorf("provider %d sent %d bytes but has no measured throughput (EWMA %v, receive rate %v)", i, pi.BytesIn, pi.Throughput, pi.ReceiveRate)
		}
		total += pi.BytesIn
	}
	if total != blockSize {
		t.Fatalf("client counted %d bytes from its providers, want %d", total, blockSize)
	}
	if tr := cl.traffic.Peer(cl.h.ID()); tr != (PeerTraffic{}) {
		t.Fatalf("client counted traffic with itself: %+v", tr)
	}
}

// shoalPeer is a host with a client and a server sharing one Traffic, as
// cmd/shoal wires them.
type shoalPeer struct {
	h   host.Host
	cl  *Client
	hd  *memHandler
	srv *Server
}

func startShoalPeer(t *testing.T) *shoalPeer {
	t.Helper()
	h := newHost(t)
	tr := NewTraffic()
	hd := newMemHandler()
	srv, err := NewServer(h, hd, ServerConfig{}, WithRegisterer(prometheus.NewRegistry()), WithTraffic(tr))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(h, ClientConfig{}, WithRegisterer(prometheus.NewRegistry()), WithTraffic(tr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
	})
	<-srv.Ready()
	return &shoalPeer{h: h, cl: cl, hd: hd, srv: srv}
}

// TestTrafficBothWays has two nodes each wired like shoal (client and
// server share a Traffic) fetch from each other, by fetch-through (the
// streamed answer) one way and by GetBlock the other, and checks that
// each sees the other's bytes in and its own bytes out.
func TestTrafficBothWays(t *testing.T) {
	a, b := startShoalPeer(t), startShoalPeer(t)
	ca, da := randomBlock(t, 3<<20)
	cb, db := randomBlock(t, 1<<20)
	a.hd.put(ca, da)
	a.hd.keys["bucket/key@v1#0"] = ca
	b.hd.put(cb, db)
	b.cl.h.Peerstore().AddAddrs(a.h.ID(), a.h.Addrs(), time.Hour)

	if _, err := b.cl.FetchVerified(testCtx(t), a.h.ID(), []byte("bucket/key@v1#0")); err != nil {
		t.Fatalf("b fetches from its home a: %v", err)
	}
	if _, err := a.cl.GetBlock(testCtx(t), cb, []peer.AddrInfo{info(b.h)}); err != nil {
		t.Fatalf("a gets a block from b: %v", err)
	}

	for _, tc := range []struct {
		name    string
		self    *shoalPeer
		other   peer.ID
		in, out int64
	}{
		{"a", a, b.h.ID(), int64(len(db)), int64(len(da))},
		{"b", b, a.h.ID(), int64(len(da)), int64(len(db))},
	} {
		pi := tc.self.cl.Peer(tc.other)
		if pi.BytesIn != tc.in || pi.BytesOut != tc.out {
			t.Errorf("node %s: %d bytes in, %d out; want %d in, %d out", tc.name, pi.BytesIn, pi.BytesOut, tc.in, tc.out)
		}
		// The fetch-through is measured too (the EWMA that ranks
		// providers is not: it sees only GetBlock's sub-ranges).
		if pi.ReceiveRate <= 0 {
			t.Errorf("node %s received %d bytes at no measured rate", tc.name, pi.BytesIn)
		}
	}
}

// TestTrafficBounded checks that the ledger keeps at most maxTrackedPeers
// peers, forgetting the one heard from least recently.
func TestTrafficBounded(t *testing.T) {
	tr := NewTraffic()
	id := func(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%d", i)) }
	for i := range maxTrackedPeers {
		tr.received(id(i), 1, time.Millisecond)
	}
	tr.sent(id(0), 5) // peer 0 is now the most recent; peer 1 the oldest
	tr.received(id(maxTrackedPeers), 7, time.Millisecond)
	if n := tr.Len(); n != maxTrackedPeers {
		t.Fatalf("%d peers tracked, want at most %d", n, maxTrackedPeers)
	}
	if got := tr.Peer(id(1)); got != (PeerTraffic{}) {
		t.Fatalf("oldest peer still tracked: %+v", got)
	}
	if got := tr.Peer(id(0)); got.In != 1 || got.Out != 5 || got.InRate != 1000 {
		t.Fatalf("recent peer: %+v, want 1 in (at 1000 B/s) and 5 out", got)
	}
	if got := tr.Peer(id(maxTrackedPeers)); got.In != 7 {
		t.Fatalf("newest peer: %+v, want 7 in", got)
	}
	tr.received(id(2), 0, time.Second) // nothing moved: no entry touched or added
	if got := tr.Peer(id(2)); got.In != 1 || got.InRate != 1000 {
		t.Fatalf("peer 2: %+v, want 1 in at 1000 B/s", got)
	}
}
