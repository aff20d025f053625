package transfer

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/shoal-cache/shoal/internal/content"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// libp2p's process-wide helpers, started once and never stopped.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/transport/tcpreuse.(*ConnMgr).listen"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
	)
}

const blockSize = 4 << 20

// newHost returns a libp2p host listening on loopback TCP with TLS.
func newHost(tb testing.TB) host.Host {
	tb.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		tb.Fatalf("libp2p.New: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func info(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

func randomBlock(tb testing.TB, n int) (cid.Cid, []byte) {
	tb.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		tb.Fatal(err)
	}
	return content.Sum(content.SHA256, data), data
}

// memHandler serves blocks, fetch-through keys and metadata from memory.
type memHandler struct {
	mu     sync.Mutex
	blocks map[cid.Cid][]byte
	keys   map[string]cid.Cid // fetch key -> block
	meta   map[string][]byte
	calls  atomic.Int64
	// corrupt, when set, makes GetBlock return a copy with one byte in every
	// 64 KiB flipped: a liar.
	corrupt bool
	// gate, when set, makes each GetBlock signal entered and wait for
	// release (or its context).
	entered chan struct{}
	release chan struct{}
}

func newMemHandler() *memHandler {
	return &memHandler{blocks: map[cid.Cid][]byte{}, keys: map[string]cid.Cid{}, meta: map[string][]byte{}}
}

func (m *memHandler) put(c cid.Cid, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks[c] = data
}

func (m *memHandler) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	m.calls.Add(1)
	if m.entered != nil {
		m.entered <- struct{}{}
		select {
		case <-m.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m.mu.Lock()
	data, ok := m.blocks[c]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	if m.corrupt {
		bad := append([]byte(nil), data...)
		for i := 0; i < len(bad); i += 64 << 10 {
			bad[i] ^= 0xff
		}
		return bad, nil
	}
	return data, nil
}

func (m *memHandler) Fetch(ctx context.Context, key []byte) (cid.Cid, []byte, error) {
	m.mu.Lock()
	c, ok := m.keys[string(key)]
	m.mu.Unlock()
	if !ok {
		return cid.Undef, nil, ErrNotFound
	}
	data, err := m.GetBlock(ctx, c)
	return c, data, err
}

func (m *memHandler) Meta(ctx context.Context, key []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// testServer is a running Server with its own metrics registry.
type testServer struct {
	h   host.Host
	srv *Server
	reg *prometheus.Registry
}

func (ts *testServer) bytesSent() float64 { return counterValue(ts.srv.metrics.bytesSent) }

func (ts *testServer) requests(typ, result string) float64 {
	return counterValue(ts.srv.metrics.requests.WithLabelValues(typ, result))
}

func startServer(tb testing.TB, handler Handler, cfg ServerConfig) *testServer {
	tb.Helper()
	h := newHost(tb)
	reg := prometheus.NewRegistry()
	srv, err := NewServer(h, handler, cfg, WithRegisterer(reg))
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server Run: %v", err)
		}
	})
	<-srv.Ready()
	return &testServer{h: h, srv: srv, reg: reg}
}

func newTestClient(tb testing.TB, cfg ClientConfig) (*Client, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	c, err := NewClient(newHost(tb), cfg, WithRegisterer(reg))
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	return c, reg
}

// rawServer answers GetBlock requests on h by hand, to play a provider that
// misbehaves on the wire: it sends the header and the first stopAfter bytes
// of the requested range, signals sent, then goes silent until the test
// ends (or its stream dies). It records the offsets it was asked for.
type rawServer struct {
	h         host.Host
	data      []byte
	stopAfter int
	sent      chan struct{}
	quit      chan struct{}

	mu      sync.Mutex
	offsets []uint64
}

func startRawServer(tb testing.TB, data []byte, stopAfter int) *rawServer {
	tb.Helper()
	rs := &rawServer{h: newHost(tb), data: data, stopAfter: stopAfter,
		sent: make(chan struct{}, 16), quit: make(chan struct{})}
	var wg sync.WaitGroup
	rs.h.SetStreamHandler(ProtocolID, func(s network.Stream) {
		wg.Add(1)
		defer wg.Done()
		defer s.Reset()
		req, err := ReadRequest(s)
		if err != nil {
			return
		}
		rs.mu.Lock()
		rs.offsets = append(rs.offsets, req.Offset)
		rs.mu.Unlock()
		size := uint64(len(rs.data))
		off := min(req.Offset, size)
		n := size - off
		if req.Length != 0 {
			n = min(n, req.Length)
		}
		b, _ := AppendResponse(nil, Response{Status: StatusOK, Size: size, Offset: off, Length: n})
		if _, err := s.Write(b); err != nil {
			return
		}
		part := min(uint64(rs.stopAfter), n)
		if _, err := s.Write(rs.data[off : off+part]); err != nil {
			return
		}
		rs.sent <- struct{}{}
		<-rs.quit
	})
	tb.Cleanup(func() {
		close(rs.quit)
		rs.h.RemoveStreamHandler(ProtocolID)
		_ = rs.h.Close()
		wg.Wait()
	})
	return rs
}

// counterValue reads a counter or gauge.
func counterValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// gathered reports whether reg exports a metric family called name.
func gathered(tb testing.TB, reg *prometheus.Registry, name string) bool {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}
