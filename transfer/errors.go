package transfer

import "errors"

// Sentinel errors. Handlers return ErrNotFound and ErrBusy (wrapped or not)
// to make the server answer with the matching status; the client wraps the
// sentinels it reports with the operation and peer.
var (
	// ErrNotFound: the peer does not have the block, key or metadata.
	ErrNotFound = errors.New("transfer: not found")
	// ErrBusy: the peer refused the request because it is at its limit.
	ErrBusy = errors.New("transfer: peer busy")
	// ErrRemote: the peer answered with an error status.
	ErrRemote = errors.New("transfer: remote error")
	// ErrProtocol: a message was malformed, too large or inconsistent.
	ErrProtocol = errors.New("transfer: protocol violation")
	// ErrStalled: a peer made no progress for the stall timeout.
	ErrStalled = errors.New("transfer: peer stalled")
	// ErrCorrupt: bytes from a peer did not verify against their CID.
	ErrCorrupt = errors.New("transfer: corrupt data")
	// ErrNoProviders: no provider was usable (none given, or all in the
	// penalty box).
	ErrNoProviders = errors.New("transfer: no usable provider")
	// ErrUnavailable: every provider tried failed; the caller should fall
	// back to the origin. It is joined with the per-peer causes.
	ErrUnavailable = errors.New("transfer: block unavailable from peers")
	// ErrClosed: the server is shutting down.
	ErrClosed = errors.New("transfer: closed")
)
