// Package fusefs owns Shoal's read-only FUSE mount: buckets as directories,
// prefixes (delimiter "/") as directories, objects as regular files (mode
// 0444, size and mtime from the object's metadata), read through the same
// read path as the S3 gateway.
//
// It declares the small Backend it needs (HeadObject, GetObject,
// ListObjectsV2, ListBuckets, in the gateway's types): *node.Node satisfies
// it in `shoal node --mount`, and Remote (a node's S3 gateway over HTTP
// with ranged GETs pinned by If-Match) in the separate `shoal mount`
// process. Nothing here touches chunks, peers or the origin directly.
//
// What it guarantees:
//
//   - One object version per open file handle: Open resolves the current
//     version (HeadObject, answered from the node's metadata cache within
//     its TTL) and every read of the handle asks GetObject for bytes of
//     that ETag, so a reader sees one version or an error, never a mix.
//   - Random reads fetch only what they cover: a read that does not
//     continue the previous one asks for exactly its range (the node then
//     reads only the chunks under it). Once a handle has been read in order
//     for Config.SequentialAfter bytes, it keeps one stream open to the end
//     of the object, which drives the node's read-ahead.
//   - Listings come from the backend's ListObjectsV2 (cached by the node
//     for its list TTL), one page at a time: readdir streams, it never
//     holds more than one page of a directory.
//   - Read-only: the mount is "ro" and every mutating call answers EROFS;
//     a missing key is ENOENT; a backend that fails (origin down and the
//     object not cached) is EIO with a log line naming the key. Lookups and
//     listing pages are bounded by Config.OpTimeout, so a stuck origin
//     gives EIO, not a hung ls.
//   - The kernel page cache is kept across opens while an object's ETag is
//     unchanged, and attribute and entry timeouts follow the node's
//     metadata TTL (longer under immutable prefixes).
//
// Files: backend.go (the Backend and error mapping), config.go, fs.go
// (directories, lookups, readdir), file.go (open files and reads),
// mount.go (mount point checks, Run), remote.go (the gateway over HTTP).
package fusefs
