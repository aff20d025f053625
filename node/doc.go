// Package node owns the read path of one Shoal node: it resolves a
// bucket/key to a version (cached metadata, revalidated against the origin
// after a TTL), cuts each version into fixed-size content-addressed chunks,
// serves byte ranges by streaming only the chunks that cover them, and
// records chunk indexes and manifests in the catalog so a restarted node
// serves cached objects without the origin. It also passes writes through
// to the origin (invalidating its caches), and pins or prefetches prefixes.
//
// # Files
//
//   - chunk.go: the journey of one chunk, top to bottom — the chunk index,
//     the store, one flight per chunk and role, the sources in order, and
//     landing (store, announce, record). Start reading here.
//   - sources.go: the sources a flight tries: the CID's providers, the
//     chunk's homes (a busy home asked again, askHome), the origin (through
//     package originfetch, which owns origin slots, the order gate,
//     hedging, resuming and cut-through arrivals).
//   - package placement: who is home for a chunk or a key (one snapshot
//     answers every question, penalties included); cluster.go takes the
//     snapshots.
//   - manifests.go: building, publishing and resolving version manifests.
//   - announce.go: announcements and record publication, withdrawals on
//     removal.
//   - serve.go: serving peers (blocks, home fetches with cut-through,
//     metadata); metahome.go: asking a key's home for metadata; homekey.go:
//     the home request keys on the wire.
//   - readahead.go: a home's read-ahead of its next own chunks;
//     pin.go: pin, unpin and prefetch of prefixes.
//   - jobs.go: the executor of warm-up jobs (package jobs runs them): a
//     job's chunks are warmed at their home nodes, in placement order for
//     a replica target; control.go: the control requests between members
//     (chunk warms, jobs, cancel, pins, "which chunks do you hold"),
//     carried as transfer Meta requests; replicas.go: replica targets kept
//     and repaired by every node for its own share; introspect.go: where,
//     cached and peers, answered from live state.
//   - reader.go: GetObject's streaming reader with its read-ahead window;
//     lend.go: ReadShared, a range lent from the store's chunk buffer (the
//     FUSE mount's read, no copy);
//     meta.go: HeadObject, revalidation and listings; write.go: writes.
//   - tasks.go: the bounded pool of background work Run owns; flight.go:
//     the detached singleflight with tickets; convert.go: object metadata
//     across the gateway boundary; config.go: Config and FetchPolicy.
//
// # Cluster
//
// With WithCluster the node is a member of a P2P cluster (routing,
// transfer and a member list are injected through the small interfaces of
// cluster.go; package node only uses them):
//
//   - Content routing: every chunk and manifest is announced as soon as it
//     lands in the store, withdrawn when the store reports it removed (Run
//     takes the store's Removals feed), and everything stored is
//     re-announced when Run starts. A completed version's manifest is
//     published as a routing.ManifestRecord, so a node that never saw an
//     object learns its chunk CIDs from the DHT without the origin.
//   - Home nodes: each object key (for metadata) and each chunk has a home
//     chosen by rendezvous hashing over this node and its members, chunk
//     homes balanced per window (package placement). A miss asks the home, which
//     resolves it through its own read path, so the cluster reads each
//     chunk from the origin about once and HEADs each key about once per
//     metadata TTL. A request received as home is never forwarded again;
//     a node that reaches its own place in the order reads as the home.
//   - Pacing a cold swarm read: a home that serves a chunk of a version
//     read in order fetches its next own chunks ahead, and a node runs its
//     share of a version's origin streams at once, lowest chunk index
//     first, so the origin link stays busy and delivers roughly in object
//     order (docs/FETCH.md has the measurements behind each setting).
//   - Cut-through: a home streams a chunk to its askers while the chunk
//     still arrives from the origin; askers verify the whole chunk against
//     the CID the home names at the end.
//
// Trust: the cluster is private (swarm key). Bytes from a provider are
// checked against a CID the node already knows; a home node's answer for a
// chunk whose CID is not yet known is checked against the CID the home
// names (it catches corruption, not a member that lies consistently; see
// docs/SECURITY.md).
//
// *Node satisfies gateway.Backend and translates origin, block store and
// catalog errors to the gateway's sentinels at that boundary.
//
// # Lifecycle
//
// New builds a node; Run does its background work (on goroutines it owns:
// task workers, announcements, publication, removals) until its context
// ends; Close, after Run has returned, cancels the flights still running
// and waits for them.
//
// Invariants:
//   - One origin fetch per chunk per node: concurrent readers of a chunk,
//     and peers asking for it, share one fetch, which is cancelled only
//     when every one of them has left (and, with a cluster, about one per
//     chunk cluster-wide).
//   - Every origin range read is pinned to the version's ETag (If-Match), so
//     a reader gets the bytes of the version it asked for or an error, never
//     a mix of two versions.
//   - Chunk bytes are verified against their CID whenever a CID is known;
//     a missing or corrupt chunk is refetched transparently.
package node
