package bootstrap

import (
	"context"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// DefaultMDNSService is Shoal's mDNS service name; nodes only see peers
// announcing the same name (and connect only if they share the swarm key).
const DefaultMDNSService = "_shoal-cache._udp"

// MDNSSource discovers peers on the local network with mDNS. Run it (the
// Bootstrapper does) to announce and listen; Peers returns what was heard.
type MDNSSource struct {
	host    host.Host
	service string

	mu    sync.Mutex
	peers map[peer.ID]peer.AddrInfo // guarded by mu
}

// MDNS returns an mDNS source for h; an empty service means DefaultMDNSService.
func MDNS(h host.Host, service string) *MDNSSource {
	if service == "" {
		service = DefaultMDNSService
	}
	return &MDNSSource{host: h, service: service, peers: map[peer.ID]peer.AddrInfo{}}
}

// HandlePeerFound implements mdns.Notifee.
func (s *MDNSSource) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == s.host.ID() || ai.ID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers[ai.ID] = ai
}

// Peers returns the peers heard so far.
func (s *MDNSSource) Peers(context.Context) ([]peer.AddrInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(s.peers))
	for _, ai := range s.peers {
		out = append(out, ai)
	}
	return out, nil
}

// Run announces and listens until ctx is done.
func (s *MDNSSource) Run(ctx context.Context) error {
	svc := mdns.NewMdnsService(s.host, s.service, s)
	if err := svc.Start(); err != nil {
		return fmt.Errorf("bootstrap: mdns: %w", err)
	}
	<-ctx.Done()
	return svc.Close()
}
