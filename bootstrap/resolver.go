package bootstrap

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// ServerResolver returns a resolver that sends every DNS query to server
// (host:port) instead of the servers of the system configuration: over UDP,
// and over TCP when an answer comes back truncated (Go's resolver does the
// fallback; the resolver only decides where to dial). It is for a cluster
// DNS that is not in the host's resolver configuration, for example a
// Kubernetes cluster DNS seen from a node outside the cluster network.
//
// Go's own resolver is used (PreferGo), so the system's search domains,
// ndots, timeout and attempts still apply, and so does the hosts file
// (a name listed there is answered from it, as with the system resolver).
// A host name as server is resolved with the system resolver when dialling.
func ServerResolver(server string) (*net.Resolver, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("%w: DNS server %q: want host:port", ErrBadAddress, server)
	}
	if host == "" {
		return nil, fmt.Errorf("%w: DNS server %q: empty host", ErrBadAddress, server)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("%w: DNS server %q: port must be 1..65535", ErrBadAddress, server)
	}
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		// network is "udp" or "tcp" as the resolver asks; address is the
		// system-configured server, replaced by ours.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		},
	}, nil
}
