// Package originfetch owns how one node reads chunks from the origin: the
// node-wide bound on origin fetches in flight (slots), the per-version
// order gate that admits a version's fetches lowest chunk first, hedging of
// requests that get no answer, resuming of responses that stall, and the
// arrival every fetch writes into, through which bytes are handed to
// whoever follows them while they still arrive (cut-through at a home).
//
// A Fetcher reads exactly the requested range of one object version
// (pinned to its ETag) and returns it as a content.Block, hashed once as
// the bytes come. The caller (the node's chunk flight) is told of the
// fetch's Arrival as soon as the origin has answered, and passes it to
// the flight's joiners: no registry, no wake-up of unrelated waiters.
//
// The package knows nothing of peers, the catalog or the block store.
package originfetch
