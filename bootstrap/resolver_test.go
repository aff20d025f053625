package bootstrap

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/routing"
)

func TestServerResolverAsksThatServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := testenv.StartDNS(t)
	srv.Set("svc.shoal.test", netip.MustParseAddr("127.0.0.7"), netip.MustParseAddr("::7"))
	r, err := ServerResolver(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.7", "::7"}
	for _, truncate := range []bool{false, true} {
		srv.SetTruncateUDP(truncate) // true: only the TCP fallback gets the records
		ips, err := r.LookupIPAddr(ctx, "svc.shoal.test")
		if err != nil {
			t.Fatalf("truncate %v: %v", truncate, err)
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.IP.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("truncate %v: addresses %v, want %v", truncate, got, want)
		}
	}
	if n := srv.Queries("svc.shoal.test"); n < 4 {
		t.Fatalf("server saw %d queries for the name, want at least 4 (A and AAAA, twice)", n)
	}
	// A name the server does not know is not found (NXDOMAIN), which the
	// DNS source treats as "no peers", not as a failure.
	_, err = r.LookupIPAddr(ctx, "other.shoal.test")
	if !isNotFound(err) {
		t.Fatalf("unknown name: %v, want not found", err)
	}
}

func TestServerResolverRejectsBadAddress(t *testing.T) {
	for _, s := range []string{"", "10.0.0.1", ":53", "10.0.0.1:0", "10.0.0.1:dns", "10.0.0.1:70000", "[::1]"} {
		if _, err := ServerResolver(s); !errors.Is(err, ErrBadAddress) {
			t.Errorf("ServerResolver(%q) = %v, want ErrBadAddress", s, err)
		}
	}
	for _, s := range []string{"127.0.0.1:53", "[::1]:5353", "dns.internal:53"} {
		if _, err := ServerResolver(s); err != nil {
			t.Errorf("ServerResolver(%q) = %v", s, err)
		}
	}
}

// The Kubernetes headless-service case with a real DNS server: a
// bootstrapper connected to one peer finds a second one when its address
// joins the DNS answer (the peer does not dial it: only re-resolution can
// find it), forgets a peer ID whose address left the answer, and learns the
// new identity of a new process that later appears at that address.
func TestBootstrapperFollowsChangingDNSAnswer(t *testing.T) {
	const name = "shoal-headless.test"
	ipA, ipB := "127.0.0.2", "127.0.0.3"
	port := testenv.FreePort(t, ipA, ipB)
	listen := func(ip string) string { return "/ip4/" + ip + "/tcp/" + strconv.Itoa(port) }
	srv := testenv.StartDNS(t)
	set := func(ips ...string) {
		var as []netip.Addr
		for _, ip := range ips {
			as = append(as, netip.MustParseAddr(ip))
		}
		srv.Set(name, as...)
	}

	a := newHost(t, nil, listen(ipA))
	set(ipA)
	node := newHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	nodeKey := node.Peerstore().PrivKey(node.ID())
	r, err := ServerResolver(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	src, err := DNS(name, port, r, func(ctx context.Context, addr ma.Multiaddr) (peer.ID, error) {
		return routing.IdentifyPeer(ctx, addr, nodeKey, swarmKey)
	})
	if err != nil {
		t.Fatal(err)
	}
	runBootstrapper(t, node, src)
	connected := func(p peer.ID) bool { return node.Network().Connectedness(p) == network.Connected }
	eventually(t, 10*time.Second, "connected to A, the only address in DNS", func() bool { return connected(a.ID()) })

	b := newHost(t, nil, listen(ipB))
	set(ipA, ipB)
	eventually(t, 10*time.Second, "connected to B after its address joined the answer", func() bool { return connected(b.ID()) })

	// A's pod goes away: out of DNS, process gone.
	set(ipB)
	a.Close()
	eventually(t, 10*time.Second, "A's connection gone", func() bool { return !connected(a.ID()) })
	// A new process with another identity takes A's address, but is not in
	// DNS yet: it must not be dialled. Wait for two more resolutions (each
	// round asks for A and AAAA) to be sure the node looked again.
	a2Key, _, _ := crypto.GenerateEd25519Key(nil)
	a2 := newHost(t, a2Key, listen(ipA))
	seen := srv.Queries(name)
	eventually(t, 10*time.Second, "two more resolutions", func() bool { return srv.Queries(name) >= seen+4 })
	if connected(a2.ID()) {
		t.Fatal("node connected to a process whose address is not in DNS")
	}
	set(ipA, ipB)
	eventually(t, 10*time.Second, "connected to the new process at A's address", func() bool { return connected(a2.ID()) })
	if !connected(b.ID()) {
		t.Fatal("lost B")
	}
}

// A failed lookup keeps the learned peer IDs (no re-identification after a
// DNS hiccup); an answer without the address (here: the name is gone)
// forgets them.
func TestDNSSourceForgetsOnlyWhatLeftTheAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	member := newHost(t, nil, "/ip4/127.0.0.1/tcp/0")
	port, err := member.Addrs()[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	identifyCalls := 0
	res := &fakeResolver{ips: []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}}}
	src, err := DNS("shoal.svc", p, res, func(ctx context.Context, a ma.Multiaddr) (peer.ID, error) {
		identifyCalls++
		return routing.IdentifyPeer(ctx, a, priv, swarmKey)
	})
	if err != nil {
		t.Fatal(err)
	}
	peersOf := func() []peer.AddrInfo {
		t.Helper()
		ais, err := src.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ais
	}
	if ais := peersOf(); len(ais) != 1 || ais[0].ID != member.ID() {
		t.Fatalf("peers = %v, want the member", ais)
	}

	res.err = &net.DNSError{Err: "server misbehaving", Name: "shoal.svc", IsTemporary: true}
	if _, err := src.Peers(ctx); err == nil {
		t.Fatal("a failed lookup was not reported")
	}
	res.err = nil
	if ais := peersOf(); len(ais) != 1 || ais[0].ID != member.ID() || identifyCalls != 1 {
		t.Fatalf("after a failed lookup: peers %v, identify calls %d; want the member, still 1 call", ais, identifyCalls)
	}

	res.err = &net.DNSError{Err: "no such host", Name: "shoal.svc", IsNotFound: true}
	if ais := peersOf(); len(ais) != 0 {
		t.Fatalf("name gone: peers %v, want none (and no error)", ais)
	}
	res.err = nil
	if ais := peersOf(); len(ais) != 1 || identifyCalls != 2 {
		t.Fatalf("address back: peers %v, identify calls %d; want the member identified anew (2 calls)", ais, identifyCalls)
	}
}
