// Package jobs owns cluster jobs: a warm-up of every object under an S3
// prefix (optionally pinned, with a replica target), with an ID, totals
// known once the prefix is listed, progress by source (peers, origin,
// already cached), the origin amplification (origin bytes / logical
// bytes), retries with backoff and the reasons of what failed, cancel, and
// a record in the node's catalog so that a job resumes after its node
// restarts and is seen from every node.
//
// The package knows nothing of chunks, placement or libp2p: a Manager runs
// jobs through the small interfaces it declares, which the node
// implements:
//
//   - Executor lists a prefix and warms one object (the node spreads the
//     chunks over their home nodes with the read path's placement and
//     reports each chunk's source);
//   - Store keeps job records durably (the catalog);
//   - Peers asks the other members for their jobs and tells them to
//     cancel one (the node's transfer protocol).
//
// Resume: a job records every object it finished (key, ETag, bytes by
// source); a run skips those and starts the others over, whose chunks the
// cluster already holds come back as "cached" without an origin read. So a
// re-run fetches nothing twice.
package jobs
