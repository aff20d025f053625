package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrBadAddress: a configured peer address cannot be used.
var ErrBadAddress = errors.New("bootstrap: bad peer address")

// Source yields candidate peers. Implementations are safe for concurrent use.
type Source interface {
	Peers(ctx context.Context) ([]peer.AddrInfo, error)
}

// StaticSource is a fixed list of peers.
type StaticSource struct {
	peers []peer.AddrInfo
}

// Static parses multiaddrs that end in /p2p/<peer ID>. Several addresses of
// one peer are merged.
func Static(addrs []string) (*StaticSource, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrBadAddress, s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (each address needs a /p2p/<peer ID> part)", ErrBadAddress, err)
	}
	return &StaticSource{peers: infos}, nil
}

// Peers returns the configured peers.
func (s *StaticSource) Peers(context.Context) ([]peer.AddrInfo, error) {
	return append([]peer.AddrInfo(nil), s.peers...), nil
}

// Resolver is the part of *net.Resolver the DNS source uses.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// IdentifyFunc returns the peer ID listening at a /p2p/-less TCP multiaddr
// (see routing.IdentifyPeer).
type IdentifyFunc func(ctx context.Context, addr ma.Multiaddr) (peer.ID, error)

// DNSSource resolves a name into peers on every Peers call.
type DNSSource struct {
	name     string
	port     int
	resolver Resolver
	identify IdentifyFunc

	mu    sync.Mutex
	known map[string]peer.ID // address -> learned peer ID; guarded by mu
}

// DNS returns a source resolving name: "_dnsaddr.<name>" TXT records and
// A/AAAA records dialled at port (see the package doc). A nil resolver
// means net.DefaultResolver; a nil identify disables the A/AAAA path.
func DNS(name string, port int, resolver Resolver, identify IdentifyFunc) (*DNSSource, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty DNS name", ErrBadAddress)
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrBadAddress, port)
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return &DNSSource{name: name, port: port, resolver: resolver, identify: identify, known: map[string]peer.ID{}}, nil
}

// Peers resolves the name now. It fails only if neither record kind yields
// anything and a lookup failed.
func (s *DNSSource) Peers(ctx context.Context) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	var errs []error

	txts, err := s.resolver.LookupTXT(ctx, "_dnsaddr."+s.name)
	if err != nil && !isNotFound(err) {
		errs = append(errs, err)
	}
	for _, txt := range txts {
		v, ok := strings.CutPrefix(txt, "dnsaddr=")
		if !ok {
			continue
		}
		ai, err := peer.AddrInfoFromString(v)
		if err != nil {
			continue // one bad record must not hide the others
		}
		out = append(out, *ai)
	}

	if s.identify != nil {
		ips, err := s.resolver.LookupIPAddr(ctx, s.name)
		failed := err != nil && !isNotFound(err)
		if failed {
			errs = append(errs, err)
		}
		seen := map[string]bool{}
		for _, ip := range ips {
			a, err := ipTCPAddr(ip.IP, s.port)
			if err != nil {
				continue
			}
			k := a.String()
			seen[k] = true
			id, err := s.peerID(ctx, k, a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a}})
		}
		// Forget the IDs of addresses that left the answer (their pods are
		// gone; a new pod may get the address with another identity). A
		// failed lookup says nothing about who left: keep what was learned
		// rather than re-identify every peer after a DNS hiccup.
		if !failed {
			s.mu.Lock()
			for k := range s.known {
				if !seen[k] {
					delete(s.known, k)
				}
			}
			s.mu.Unlock()
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("bootstrap: resolve %s: %w", s.name, errors.Join(errs...))
	}
	return out, nil
}

// Forget drops a learned peer ID (for example after a failed connection:
// a pod restarted with a new identity at the same IP).
func (s *DNSSource) Forget(id peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.known {
		if v == id {
			delete(s.known, k)
		}
	}
}

func (s *DNSSource) peerID(ctx context.Context, k string, a ma.Multiaddr) (peer.ID, error) {
	s.mu.Lock()
	id, ok := s.known[k]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := s.identify(ctx, a)
	if err != nil {
		return "", fmt.Errorf("bootstrap: identify %s: %w", a, err)
	}
	s.mu.Lock()
	s.known[k] = id
	s.mu.Unlock()
	return id, nil
}

func ipTCPAddr(ip net.IP, port int) (ma.Multiaddr, error) {
	proto := "ip4"
	if ip.To4() == nil {
		proto = "ip6"
	} else {
		ip = ip.To4()
	}
	return ma.NewMultiaddr("/" + proto + "/" + ip.String() + "/tcp/" + strconv.Itoa(port))
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
