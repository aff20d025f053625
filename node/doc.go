// Package node owns the read path of one Shoal node: it resolves a
// bucket/key to a version (cached metadata, revalidated against the origin
// after a TTL), cuts each version into fixed-size content-addressed chunks,
// serves byte ranges by streaming only the chunks that cover them (local
// block store first, then the origin through a ChunkSource chain that peer
// sources can join later), and records chunk indexes and manifests in the
// catalog so a restarted node serves cached objects without the origin.
// It also passes writes through to the origin (invalidating its caches), and
// pins or prefetches prefixes.
//
// # Cluster
//
// With WithCluster the node is a member of a P2P cluster (routing, transfer
// and a member list are injected; package node only uses them):
//
//   - Content routing: every chunk and manifest is announced as soon as it
//     lands in the store, withdrawn when the store reports it evicted
//     (Evicted), and everything stored is re-announced when Run starts. A
//     completed version's manifest is published as a routing.ManifestRecord,
//     so a node that never saw an object learns its chunk CIDs from the DHT
//     without the origin.
//   - Read path: local store -> (CID unknown) the version's manifest record
//     -> the CID's providers, several at once (transfer.Client.GetBlock) ->
//     the chunk's home nodes -> the origin. Every byte from a peer is
//     verified before it is stored or served.
//   - Home nodes: each object key (for metadata) has a home chosen by
//     rendezvous hashing over this node and its members; each chunk
//     (version ID + index) has one from a balanced rendezvous order: every
//     node is the first home of exactly one chunk in each window of n
//     consecutive chunks (see chunkHomes). A miss asks the home (transfer
//     Fetch / Meta), which resolves it through its own read path and
//     singleflight, so the cluster reads each chunk from the origin about
//     once and HEADs each key about once per metadata TTL. A request
//     received as home is never forwarded again; after homeCandidates
//     candidates (or on reaching its own place in the order) a node reads
//     the origin itself.
//   - Pacing a cold swarm read: a home that serves a chunk of a version
//     read in order fetches its next own chunks ahead (homeReadAhead), and
//     a node runs few origin fetches of one version at once, lowest chunk
//     index first (orderGate), so the origin link stays busy and delivers
//     roughly in object order. A fetch that can go to a home waits for the
//     version's manifest lookup only briefly (manifestWait).
//   - Cut-through: a home streams a chunk to its askers while the chunk
//     still arrives from the origin (PeerHandler.FetchStream reads the
//     in-progress origin read registered in arrivals); askers verify the
//     whole chunk against the CID the home names at the end. A stalled
//     origin response is resumed from the first missing byte, and a
//     request with no answer is sent twice (originread.go).
//
// Trust: the cluster is private (swarm key). Bytes from a provider are
// checked against a CID the node already knows; a home node's answer for a
// chunk whose CID is not yet known is checked against the CID the home
// names (it catches corruption, not a member that lies consistently).
//
// *Node satisfies gateway.Backend and translates origin, block store and
// catalog errors to the gateway's sentinels at that boundary.
//
// Invariants:
//   - One origin fetch per chunk per node: concurrent readers of a chunk
//     share one fetch, which is cancelled only when every reader has left
//     (and, with a cluster, about one per chunk cluster-wide).
//   - Every origin range read is pinned to the version's ETag (If-Match), so
//     a reader gets the bytes of the version it asked for or an error, never
//     a mix of two versions.
//   - Chunk bytes are verified against their CID whenever a CID is known;
//     a missing or corrupt chunk is refetched from the origin transparently.
package node
