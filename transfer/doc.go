// Package transfer owns Shoal's chunk transfer protocol between peers
// (/shoal/chunk/1.0.0 on libp2p streams): the wire messages, the Server that
// answers block, fetch-through and metadata requests from a Handler, and the
// Client that pulls one chunk from several providers at once, chooses them by
// measured throughput and load, resumes a failed or stalled provider's bytes
// at the byte offset on another one, verifies every chunk against its CID and
// keeps peers that failed or lied in a penalty box for a while. A Traffic,
// shared by a node's Client and Server, counts the bytes exchanged with each
// peer for introspection (never as metric labels).
//
// One request is carried per stream: yamux streams cost one frame to open,
// and a stream per sub-range lets a stalled or failed transfer be abandoned by
// resetting its stream without disturbing others. BenchmarkRawStream measured
// no penalty for a stream per 4 MiB block against all blocks on one stream
// (both 0.5-1.1 GB/s on the shared 2-core box, within noise), so requests are
// not pipelined. A request's answer header is followed by the raw bytes, with
// no per-chunk framing.
//
// Wire format (all integers unsigned varints unless said otherwise):
//
//	request:  version u8 | type u8 | body length u16 BE | cid | key | offset | length
//	response: version u8 | status u8 | body length u32 BE | cid | size | offset | length | payload
//	          then, for an OK block/fetch answer, exactly length raw bytes
//
// where cid, key and payload are length-prefixed byte strings.
//
// Keep-alives: while its Handler runs (a home node may spend seconds reading
// the origin), the server sends a "working" response (status 4, every field
// empty: 11 bytes) every KeepAliveInterval, before the one real answer
// header. The client restarts a StallTimeout timer on every frame and gives
// the whole wait a generous cap (FetchTimeout), so a busy home is waited for
// while a hung or partitioned one is dropped, and penalized, after
// StallTimeout. The bytes of an answer are covered by the same progress
// timeout.
//
// Cut-through fetches: a MsgFetchStream request is answered with the OK
// header (the chunk's size, its hash function, its CID if already known)
// followed by frames (type u8 | length u32 BE | body; see frame.go): data,
// keep-alive, end (the chunk's CID) or error (the home's origin read
// failed: ErrRemote, no penalty). A home node that is still reading the
// chunk from the origin sends its bytes as they arrive, and keep-alives
// whenever none came for KeepAliveInterval; the client hashes the bytes as
// they come (content.Builder) and verifies them against the end frame's
// CID. Client.FetchVerified asks this way, and falls back to MsgFetch for a
// peer that drops the request unanswered (a version that predates it). A
// Handler opts in by implementing StreamHandler; the server answers other
// Handlers' stream requests from Fetch.
package transfer
