// Package origin owns Shoal's access to the system of record: an S3 (or
// S3-compatible) service through aws-sdk-go-v2, and a local directory with
// the same behaviour (each top-level folder is a bucket). Both types have the
// same method set; consumers (package node) declare the small interface they
// need. Errors are translated to this package's sentinels at this boundary.
// Health wraps either and tracks whether the origin answers.
//
// # The S3 origin: bounded calls
//
// Each attempt waits at most S3Config.HeaderTimeout for response headers
// (10 s by default) and is retried with backoff up to MaxRetries times, but
// a whole call, from its first attempt to the headers of its last, is
// bounded by RetryBudget (30 s): a server that accepts connections and
// never answers costs a caller that long at most, then ErrUnavailable.
// Bodies are never timed as a whole (a 100 GiB body takes what it takes);
// one that makes no progress for IdleTimeout fails with ErrUnavailable.
// Uploads are bounded by the header timeout per attempt only.
//
// # Integrity data
//
// ObjectInfo carries what the origin says about the object's bytes and
// nothing computed here: S3's checksums (a HEAD asks with ChecksumMode
// ENABLED; S3 keeps a full-object CRC64NVME of every object written since
// December 2024, or the algorithm the uploader chose, COMPOSITE for some
// multipart uploads) and ETagIsMD5, set when the ETag has the form of a single-part
// MD5 and the HEAD named no SSE-KMS, DSSE-KMS or SSE-C, under which S3's
// ETag is not the MD5. Package internal/integrity checks bytes against
// them. The file origin reports no checksums; its ETagIsMD5 is true for
// objects written through it with PutObject, whose MD5 it computed.
//
// # The file origin: what it guarantees
//
// Dir identifies a version of a file by its size, mtime, inode, ctime and a
// fingerprint (SHA-256 of the first and last 64 KiB); the ETag is derived
// from them, or is the S3 ETag remembered for that version of an object
// written through Dir. ctime carries the guarantee: every change made
// through the kernel, a write, truncate, rename over the key, chmod, chown,
// a new link or setting the times (Chtimes), sets it to the current time,
// and no system call sets it back. So an in-place rewrite that restores the
// size and the mtime still yields a new ETag, and:
//
//   - GetRange with an ETag reads the file's version when it opens it and
//     fails with ErrPreconditionFailed unless it matches;
//   - every read of the body re-checks the version (fstat) and fails with
//     ErrPreconditionFailed once the file has changed, so a body that ends
//     with io.EOF holds bytes of one version only. A reader must discard
//     what a failed body gave it (node does: a failed chunk stores nothing).
//
// What it cannot see: a second write within one tick of the kernel's
// timestamp clock (a few milliseconds) after a first, with Dir's look in
// between, can leave ctime unchanged on kernels before Linux 6.13 and on
// filesystems without fine-grained timestamps (6.13 gave them to ext4, xfs,
// btrfs and tmpfs; NFS, FUSE and overlay depend on what is below). The
// fingerprint catches such a write in the first or last 64 KiB; one in the
// middle stays unseen until the file changes again. Stores through a shared
// memory mapping update the times when a page is first dirtied, not at
// every store. Anything that counts as a change is one: chmod, or a copy of
// the tree (new inodes), gives unchanged bytes a new ETag and drops the
// metadata Dir stored for them, which costs a fetch, never a wrong byte.
// Whole-file hashing would close the tick gap but costs seconds per GiB at
// the first HEAD after each change (measured: 0.2 ms for the fingerprint of
// a 1 GiB file, 2 s for its MD5, docs/ARCHITECTURE.md).
package origin
