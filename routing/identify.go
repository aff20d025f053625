package routing

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	mss "github.com/multiformats/go-multistream"
)

// identifyTimeout bounds a whole IdentifyPeer probe.
const identifyTimeout = 10 * time.Second

// IdentifyPeer learns the peer ID behind a TCP multiaddr without /p2p/ (for
// example an address resolved from a Kubernetes headless service's A
// records). libp2p cannot dial without a peer ID, so this opens a raw TCP
// connection, negotiates Shoal's authenticated TLS (AuthTLSID) accepting any
// peer ID, and returns the ID the remote proved, then closes the connection.
// Only cluster members pass: the swarm-key proof runs as in a normal
// connection. It works with membership "auth" only (pnet wraps the raw
// connection; use /dnsaddr records there).
func IdentifyPeer(ctx context.Context, addr ma.Multiaddr, priv crypto.PrivKey, swarmKey []byte) (peer.ID, error) {
	if priv == nil || len(swarmKey) != SwarmKeySize {
		return "", fmt.Errorf("routing: identify: %w: identity and swarm key required", ErrInvalidConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, identifyTimeout)
	defer cancel()
	network, hostport, err := manet.DialArgs(addr)
	if err != nil {
		return "", fmt.Errorf("routing: identify %s: %w", addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, hostport)
	if err != nil {
		return "", fmt.Errorf("routing: identify %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := mss.SelectProtoOrFail(AuthTLSID, conn); err != nil {
		return "", fmt.Errorf("routing: identify %s: security negotiation: %w", addr, err)
	}
	t, err := authTLSConstructor(swarmKey)(AuthTLSID, priv, nil)
	if err != nil {
		return "", err
	}
	sc, err := t.SecureOutbound(ctx, conn, "")
	if err != nil {
		return "", fmt.Errorf("routing: identify %s: %w", addr, err)
	}
	defer sc.Close()
	return sc.RemotePeer(), nil
}
