// Package catalog owns a node's persistent metadata: cached object
// metadata (one record per bucket/key, with the time it was last confirmed
// at the origin), per-version chunk indexes (version -> chunk index -> CID),
// per-version manifest CIDs, pinned prefixes (with their replica targets),
// and the records of cluster jobs (opaque to the catalog). It lives in its own Badger
// v4 directory, separate from chunk payloads, and is tuned for a small
// memory footprint (small memtables and caches): it only holds small
// records.
//
// A catalog directory that Badger cannot open because of its contents is
// moved aside (<dir>.damaged-<UTC time>) and replaced by a fresh catalog
// holding every record its readable tables still hold (Open logs it at
// ERROR); see internal/badgerrepair.
//
// The catalog is a dumb, durable map: freshness decisions (TTLs, immutable
// prefixes) belong to package node.
//
// Hot object records and chunk CIDs are also kept in a bounded in-memory
// read cache (WithCache), so a cache hit of the read path costs no Badger
// transaction or JSON decode. The catalog invalidates it itself on every
// write, so a read never returns a record older than the last committed
// write.
//
// Key layout (all keys start with a one-byte kind and a slash):
//
//	o/<uvarint len(bucket)><bucket><key>   -> Object (JSON)
//	c/<version id, 16 bytes><uint32 BE i>  -> chunk CID (binary)
//	n/<version id>                         -> number of chunk CIDs known (uvarint)
//	v/<version id>                         -> manifest CID (binary)
//	p/<uvarint len(bucket)><bucket><prefix> -> Pin (JSON)
//	j/<job id>                             -> job record (opaque; package jobs)
//	k/<job id> 0 <item>                    -> one item of a job (opaque)
package catalog
