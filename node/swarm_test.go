package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	lpswarm "github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// In-process clusters of real libp2p hosts on loopback: each member has its
// own host (shared swarm key), private DHT, transfer server and client,
// member list, block store and catalog; all share one counting origin.

var testSwarmKey = bytes.Repeat([]byte{7}, routing.SwarmKeySize)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type member struct {
	n      *Node
	h      host.Host
	r      *routing.Router
	mem    *routing.Members
	store  *blockstore.Tiered
	cat    *catalog.Catalog
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// stop shuts the member down: node, server, DHT, host (idempotent).
func (m *member) stop() {
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
		m.n.Close()
		m.r.Close()
		m.h.Close()
		m.store.Close()
		m.cat.Close()
	})
}

type swarm struct {
	org     *fakeOrigin
	cfg     Config
	wrap    wrapHandler
	members []*member
	// originOf, if set, gives member i its own view of org (e.g. a slow
	// or failing link).
	originOf func(i int, org *fakeOrigin) Origin
	// newHost, if set, makes member i's libp2p host (default: TCP on
	// loopback with the swarm key).
	newHost func(t *testing.T, i int) host.Host
	// tableAtLeast, if set, is the routing table size a member needs to
	// be ready when the swarm is larger than that: beyond a few dozen
	// nodes Kademlia's k-buckets (k = 20) cannot hold every peer.
	tableAtLeast int
}

// wrapHandler lets a test replace member i's peer handler (e.g. a liar).
type wrapHandler func(i int, h transfer.Handler) transfer.Handler

func newSwarm(t *testing.T, size int, cfg Config, wrap wrapHandler) *swarm {
	t.Helper()
	return newSwarmOrigins(t, size, cfg, wrap, nil)
}

// newSwarmOrigins is newSwarm whose member i reads the shared origin
// through originOf(i, org) (nil: directly).
func newSwarmOrigins(t *testing.T, size int, cfg Config, wrap wrapHandler, originOf func(i int, org *fakeOrigin) Origin) *swarm {
	t.Helper()
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = cs
	}
	if cfg.Fetch.Origin.Stall == 0 {
		cfg.Fetch.Origin.Stall = noHedge.Origin.Stall
	}
	// The random spot check is off unless a test asks for it: these tests
	// count origin reads exactly.
	if cfg.SpotCheckRate == 0 {
		cfg.SpotCheckRate = -1
	}
	s := &swarm{org: newFakeOrigin(), cfg: cfg, wrap: wrap, originOf: originOf}
	for range size {
		s.members = append(s.members, s.start(t, len(s.members)))
	}
	s.connect(t, s.members)
	return s
}

// join starts one more member, connected to all the others.
func (s *swarm) join(t *testing.T) *member {
	t.Helper()
	m := s.start(t, len(s.members))
	s.members = append(s.members, m)
	s.connect(t, []*member{m})
	return m
}

// connect connects each of ms to every member, waits until every member
// lists all others and fills its routing table, and bootstraps the DHTs.
// connectPeers connects a to b. Two members dialing each other at once can
// leave one dial failed and its address in the dial backoff; that is not
// a failure when the other dial connected them, and otherwise the dial is
// tried again with the backoff cleared.
func connectPeers(t *testing.T, a, b host.Host) {
	t.Helper()
	ai := peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}
	var err error
	for range 3 {
		if err = a.Connect(t.Context(), ai); err == nil || a.Network().Connectedness(b.ID()) == network.Connected {
			return
		}
		if sw, ok := a.Network().(*lpswarm.Swarm); ok {
			sw.Backoff().Clear(b.ID())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(err)
}

func (s *swarm) connect(t *testing.T, ms []*member) {
	t.Helper()
	ctx := t.Context()
	for _, a := range ms {
		for _, b := range s.members {
			if a == b {
				continue
			}
			connectPeers(t, a.h, b.h)
		}
	}
	size := len(s.members)
	table := size - 1
	if s.tableAtLeast > 0 {
		table = min(table, s.tableAtLeast)
	}
	eventually(t, 30*time.Second, "every member sees the others", func() bool {
		for _, m := range s.members {
			if len(m.mem.Members()) != size-1 || m.r.RoutingTableSize() < table {
				return false
			}
		}
		return true
	})
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range s.members {
		wg.Go(func() { m.r.Bootstrap(bctx) })
	}
	wg.Wait()
}

func (s *swarm) start(t *testing.T, i int) *member {
	t.Helper()
	ctx := t.Context()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	var h host.Host
	if s.newHost != nil {
		h = s.newHost(t, i)
	} else if h, err = routing.NewHost(ctx, routing.HostConfig{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		PrivKey:     priv, SwarmKey: testSwarmKey, ConnLow: 50, ConnHigh: 100,
	}, routing.WithHostLogger(discard())); err != nil {
		t.Fatal(err)
	}
	r, err := routing.NewDHT(ctx, h, routing.Config{}, routing.WithLogger(discard()))
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	// One Traffic for the client and the server, as in cmd/shoal.
	traffic := transfer.NewTraffic()
	client, err := transfer.NewClient(h, transfer.ClientConfig{}, transfer.WithRegisterer(prometheus.NewRegistry()), transfer.WithTraffic(traffic))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open("", catalog.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	// A real tiered store, whose removals the node takes (as in cmd/shoal).
	mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: 4 * cs})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: t.TempDir(), BudgetBytes: 256 * cs})
	if err != nil {
		t.Fatal(err)
	}
	store, err := blockstore.NewTiered(mem, disk, blockstore.TieredConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m := &member{h: h, r: r, mem: routing.NewMembers(h, transfer.ProtocolID), store: store, cat: cat}
	var org Origin = s.org
	if s.originOf != nil {
		org = s.originOf(i, s.org)
	}
	m.n, err = New(s.cfg, m.store, org, cat, WithRegisterer(prometheus.NewRegistry()),
		WithCluster(Cluster{Router: r, Transfer: client, Members: m.mem}))
	if err != nil {
		t.Fatal(err)
	}
	var handler transfer.Handler = m.n.PeerHandler()
	if s.wrap != nil {
		handler = s.wrap(i, handler)
	}
	srv, err := transfer.NewServer(h, handler, transfer.ServerConfig{}, transfer.WithRegisterer(prometheus.NewRegistry()), transfer.WithTraffic(traffic))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { srv.Run(rctx) })
	m.wg.Go(func() { m.n.Run(rctx) })
	<-srv.Ready()
	t.Cleanup(m.stop)
	return m
}

// eventually polls cond until it holds or the timeout passes. It bounds a
// wait for convergence; it does not assert how fast that happens.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *swarm) status(t *testing.T, i int) Status {
	t.Helper()
	st, err := s.members[i].n.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustGet(t *testing.T, n *Node, key string, want []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	got, err := get(ctx, n, "b", key, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: wrong bytes (%d, want %d)", key, len(got), len(want))
	}
}

// TestSwarmSecondReaderNoOrigin: node B reads an object node A read before;
// the origin serves nothing new.
func TestSwarmSecondReaderNoOrigin(t *testing.T) {
	s := newSwarm(t, 3, Config{}, nil)
	data := randBytes(6*cs+100, 1)
	s.org.set("b", "obj", data)
	mustGet(t, s.members[0].n, "obj", data)
	gets, heads := s.org.count("GetRange"), s.org.count("HeadObject")
	if gets != 7 || heads != 1 {
		t.Fatalf("first read: %d GETs, %d HEADs; want 7 and 1", gets, heads)
	}
	before := s.status(t, 1)
	mustGet(t, s.members[1].n, "obj", data)
	if g, h := s.org.count("GetRange")-gets, s.org.count("HeadObject")-heads; g != 0 || h != 0 {
		t.Fatalf("second reader caused %d origin GETs and %d HEADs, want 0", g, h)
	}
	st := s.status(t, 1)
	if d := (st.ChunkHome + st.ChunkPeer + st.ChunkHits) - (before.ChunkHome + before.ChunkPeer + before.ChunkHits); d != 7 {
		t.Errorf("second reader got %d chunks from itself, peers and homes, want 7: %+v", d, st)
	}
	if !st.Cluster.Enabled || st.Cluster.Members != 2 {
		t.Errorf("cluster status: %+v", st.Cluster)
	}
}

// TestSwarmColdStampede: five nodes read the same cold object at once; the
// origin serves each chunk about once and sees about one HEAD.
func TestSwarmColdStampede(t *testing.T) {
	s := newSwarm(t, 5, Config{}, nil)
	const chunks = 8
	data := randBytes(chunks*cs-5, 2)
	s.org.set("b", "hot", data)
	var wg sync.WaitGroup
	errs := make(chan error, len(s.members))
	for _, m := range s.members {
		wg.Go(func() {
			got, err := get(t.Context(), m.n, "b", "hot", 0, -1)
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("wrong bytes")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Slack: a member list that lags by a second can make two nodes disagree
	// on a home for a moment.
	if g := s.org.count("GetRange"); g > chunks+2 {
		t.Errorf("origin served %d chunk GETs for %d chunks read by 5 nodes", g, chunks)
	}
	if h := s.org.count("HeadObject"); h > 2 {
		t.Errorf("origin saw %d HEADs for one object read by 5 nodes", h)
	}
	var home int64
	for i := range s.members {
		home += s.status(t, i).ChunkHome
	}
	if home == 0 {
		t.Error("no chunk was served by a home node")
	}
}

// TestSwarmManifestFromDHT: a node that never saw an object learns its
// manifest from the DHT record and pulls the chunks from their providers.
func TestSwarmManifestFromDHT(t *testing.T) {
	s := newSwarm(t, 3, Config{}, nil)
	data := randBytes(5*cs, 3)
	s.org.set("b", "m", data)
	a := s.members[0]
	mustGet(t, a.n, "m", data)
	d := s.join(t)
	_, mc, err := a.n.Manifest(t.Context(), "b", "m")
	if err != nil {
		t.Fatal(err)
	}
	v := a.n.version("b", "m", etagOf(data), int64(len(data)))
	chunks, err := a.cat.Chunks(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "manifest record and providers visible from d", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		recs, err := d.r.GetManifestRecords(ctx, "b", "m", etagOf(data), v.ChunkSize, v.Hash)
		if err != nil || !recs[0].Manifest.Equals(mc) {
			return false
		}
		for _, c := range append(chunks, mc) {
			if ps, err := d.r.FindProviders(ctx, c, 1); err != nil || len(ps) == 0 {
				return false
			}
		}
		return true
	})
	gets := s.org.count("GetRange")
	mustGet(t, d.n, "m", data)
	if g := s.org.count("GetRange") - gets; g != 0 {
		t.Fatalf("%d origin GETs for a cached object", g)
	}
	st := s.status(t, 3)
	if st.Cluster.ManifestsFound != 1 || st.ChunkPeer != 5 || st.ChunkHome != 0 {
		t.Errorf("d: manifests found %d, chunks from providers %d, from homes %d; want 1, 5, 0\n%+v",
			st.Cluster.ManifestsFound, st.ChunkPeer, st.ChunkHome, st)
	}
	if _, dmc, err := d.n.Manifest(t.Context(), "b", "m"); err != nil || !dmc.Equals(mc) {
		t.Errorf("d's manifest: %v %v, want %v", dmc, err, mc)
	}
}

// TestSwarmHomeKilled: the home node of a chunk dies; reads stay correct.
func TestSwarmHomeKilled(t *testing.T) {
	s := newSwarm(t, 4, Config{}, nil)
	const chunks = 6
	data := randBytes(chunks*cs, 4)
	s.org.set("b", "k", data)
	reader := s.members[0]
	v := reader.n.version("b", "k", etagOf(data), int64(len(data)))
	// Kill the home of chunk 0 as the reader sees it (not the reader).
	var victim *member
	for _, p := range chunkHomes(v, 0, reader.h.ID(), reader.mem.Members(), nil, 4) {
		if p != reader.h.ID() {
			for _, m := range s.members {
				if m.h.ID() == p {
					victim = m
				}
			}
			break
		}
	}
	// Half the chunks land first, with the victim alive.
	ctx := t.Context()
	info, err := reader.n.HeadObject(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := reader.n.GetObject(ctx, info, 0, 3*cs)
	if err != nil {
		t.Fatal(err)
	}
	first, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(first, data[:3*cs]) {
		t.Fatalf("first half: %v", err)
	}
	victim.stop()
	mustGet(t, reader.n, "k", data)
	for _, m := range s.members {
		if m != victim && m != reader {
			mustGet(t, m.n, "k", data)
		}
	}
	if g := s.org.count("GetRange"); g > 2*chunks {
		t.Errorf("origin served %d GETs for %d chunks", g, chunks)
	}
}

// liar flips a byte of every block and fetch answer it serves (keeping the
// CID it names) once on is set, and counts the lies.
type liar struct {
	transfer.Handler
	on   *atomic.Bool
	lies *atomic.Int64
}

func (l liar) lie(b []byte) []byte {
	if !l.on.Load() {
		return b
	}
	l.lies.Add(1)
	b = bytes.Clone(b)
	b[len(b)/2] ^= 0x55
	return b
}

func (l liar) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := l.Handler.GetBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	return l.lie(b), nil
}

func (l liar) Fetch(ctx context.Context, key []byte) (cid.Cid, []byte, error) {
	c, b, err := l.Handler.Fetch(ctx, key)
	if err != nil {
		return c, nil, err
	}
	return c, l.lie(b), nil
}

// TestSwarmCorruptPeer: a member corrupts everything it serves, as the
// home node of a chunk and as a provider; every reader still gets the right
// bytes.
func TestSwarmCorruptPeer(t *testing.T) {
	lying := make([]*atomic.Bool, 3)
	lies := make([]*atomic.Int64, 3)
	s := newSwarm(t, 3, Config{}, func(i int, h transfer.Handler) transfer.Handler {
		lying[i], lies[i] = new(atomic.Bool), new(atomic.Int64)
		return liar{h, lying[i], lies[i]}
	})
	data := randBytes(6*cs+7, 5)
	s.org.set("b", "c", data)
	reader := s.members[0]
	v := reader.n.version("b", "c", etagOf(data), int64(len(data)))
	// The liar is the first home of chunk 0 other than the reader, as the
	// reader sees it.
	bad, other := -1, -1
	for _, p := range chunkHomes(v, 0, reader.h.ID(), reader.mem.Members(), nil, 3) {
		for i, m := range s.members {
			if m.h.ID() == p && m != reader && bad < 0 {
				bad = i
			}
		}
	}
	for i, m := range s.members {
		if m != reader && i != bad {
			other = i
		}
	}
	lying[bad].Store(true)
	mustGet(t, reader.n, "c", data) // the liar is asked as home
	mustGet(t, s.members[bad].n, "c", data)
	mustGet(t, s.members[other].n, "c", data) // the liar is a provider of every chunk
	if lies[bad].Load() == 0 {
		t.Error("the liar was never asked")
	}
	if g := s.org.count("GetRange"); g > 3*7 {
		t.Errorf("origin served %d GETs", g)
	}
}
