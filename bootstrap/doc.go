// Package bootstrap owns where a node's peers come from and keeping the node
// connected to them: a static list of multiaddrs, a DNS name re-resolved
// periodically (the Kubernetes headless-service case), and mDNS on a LAN.
// A Bootstrapper connects to the peers of all sources, re-resolves them
// periodically, and when the node has lost every peer keeps retrying with
// exponential backoff.
//
// # DNS
//
// libp2p cannot dial an address without knowing the peer ID behind it. The
// DNS source therefore uses, for a name N:
//
//  1. TXT records of "_dnsaddr.N" of the form "dnsaddr=/ip4/.../tcp/P/p2p/ID"
//     (the libp2p dnsaddr convention), taken as they are; and
//  2. A/AAAA records of N, turned into /ip4|ip6/IP/tcp/PORT and resolved to a
//     peer ID by an IdentifyFunc (routing.IdentifyPeer: an authenticated TLS
//     handshake that accepts any peer ID and proves the swarm key, so only
//     cluster members are learned). Learned IDs are cached per address and
//     forgotten when the address disappears from DNS (a failed lookup
//     forgets nothing).
//
// Lookups go to the system resolver, or to one given DNS server with
// ServerResolver (a cluster DNS that is not in the host's configuration).
package bootstrap
