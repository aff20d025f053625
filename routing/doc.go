// Package routing owns Shoal's libp2p side of the cluster: the host
// (transports, security, membership, connection and resource limits), the
// private Kademlia DHT used to find which peers hold a chunk, the sweeping
// provider that keeps every stored chunk announced, and the manifest records
// ("shoal-obj" namespace) that map an S3 object version to its manifest.
//
// # Membership
//
// A Shoal cluster is private: every node holds the same 32-byte swarm key.
// Two membership modes exist (HostConfig.Membership):
//
//   - "auth" (default): the libp2p security transports (TLS 1.3 first, then
//     Noise) are wrapped so that, right after the secure handshake and before
//     the stream multiplexer carries any protocol, both sides exchange fresh
//     nonces and an HMAC-SHA256 keyed by the swarm key over both nonces and
//     both peer IDs. A peer without the key is refused at connection setup.
//     Bulk bytes are encrypted once (by TLS), so transfers keep TLS speed.
//     The wrapped transports use their own protocol IDs (AuthTLSID,
//     AuthNoiseID), so plain libp2p peers cannot even negotiate security.
//   - "pnet": libp2p's private network, which wraps every byte of the raw
//     connection in XSalsa20 under the key, below TLS. Simpler and hides the
//     handshake, but every byte is encrypted twice (about half the throughput
//     on a bulk stream, see BenchmarkStream).
//
// # Transports
//
// The host listens on TCP only (HostConfig.ListenAddrs). Other transports
// plug in as libp2p transport options: pass them with WithLibp2pOptions
// (for example an RDMA-capable transport registered with libp2p.Transport);
// the security and membership layers above stay the same.
package routing
