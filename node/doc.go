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
// *Node satisfies gateway.Backend and translates origin, block store and
// catalog errors to the gateway's sentinels at that boundary.
//
// Invariants:
//   - One origin fetch per chunk per node: concurrent readers of a chunk
//     share one fetch, which is cancelled only when every reader has left.
//   - Every origin range read is pinned to the version's ETag (If-Match), so
//     a reader gets the bytes of the version it asked for or an error, never
//     a mix of two versions.
//   - Chunk bytes are verified against their CID whenever a CID is known;
//     a missing or corrupt chunk is refetched from the origin transparently.
package node
