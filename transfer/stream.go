package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-cache/shoal/internal/content"
)

// Cut-through fetches (MsgFetchStream). A home node that reads a chunk from
// the origin passes its bytes on while they arrive instead of after the
// whole chunk landed: the asker hashes them as they come (content.Builder)
// and verifies the chunk against the CID the end frame names. On S4 (8
// nodes reading one cold object, every link 200 Mbit/s) a 4 MiB chunk
// takes about 1.3 s to arrive from the shared origin link, time the askers
// otherwise spend waiting at the start of a read and again at its end.

// StreamHandler is implemented by a Handler that can answer a fetch while
// the chunk is still arriving. A Handler without it still answers
// MsgFetchStream requests, from Fetch, once the whole chunk is there.
type StreamHandler interface {
	// FetchStream resolves a home request key as Fetch does, but returns
	// as soon as the chunk's bytes can be streamed (the chunk's size and
	// hash function known). The server sends keep-alives while it runs and
	// calls Close on the returned stream when done with it. Return
	// ErrNotFound or ErrBusy for those statuses.
	FetchStream(ctx context.Context, key []byte) (ChunkStream, error)
}

// ChunkStream is a chunk being received by a home node.
type ChunkStream interface {
	// Size is the chunk's size in bytes.
	Size() int64
	// Hash is the hash function of the chunk's CID.
	Hash() content.Hash
	// Next waits until bytes after off (0 <= off <= Size) are there and
	// returns some of them (at least one byte; read-only), io.EOF once off
	// is Size and the chunk is complete (CID then names it), or the error
	// that ended the chunk (e.g. the origin read failed). It returns ctx's
	// error if ctx ends first; the server then sends a keep-alive and calls
	// again.
	Next(ctx context.Context, off int64) ([]byte, error)
	// CID names the chunk: defined once Next returned io.EOF (it may be
	// defined earlier, if the chunk was complete already).
	CID() cid.Cid
	// Close releases the stream; it is called once.
	Close()
}

// legacyTTL is how long a peer that did not understand MsgFetchStream (it
// reset the stream) but answered MsgFetch is sent MsgFetch only: long
// enough that a rolling upgrade does not cost an extra round trip per
// chunk, short enough that an upgraded peer is streamed from soon.
const legacyTTL = 10 * time.Minute

// errNoAnswer marks a request the peer dropped without an answer header
// (reset or closed the stream): what a peer that predates a request type
// does.
var errNoAnswer = errors.New("transfer: stream dropped without an answer")

// serveStream answers a MsgFetchStream request: keep-alives while the
// handler resolves key, the answer header, then frames. It counts the
// request in the metrics itself; a returned error means the stream must be
// reset.
func (s *Server) serveStream(ctx, hctx context.Context, cancel context.CancelFunc, st network.Stream, key []byte) error {
	typ := MsgFetchStream.String()
	stopKeepAlive := s.keepAlive(hctx, cancel, st)
	cs, err := s.openChunkStream(hctx, key)
	if kerr := stopKeepAlive(); kerr != nil {
		if cs != nil {
			cs.Close()
		}
		s.metrics.requests.WithLabelValues(typ, "error").Inc()
		return kerr
	}
	if err != nil {
		s.metrics.requests.WithLabelValues(typ, resultLabel(err)).Inc()
		return s.writeHeader(st, errorResponse(err))
	}
	defer cs.Close()
	err = s.sendFrames(ctx, hctx, st, cs)
	s.metrics.requests.WithLabelValues(typ, resultLabel(err)).Inc()
	var remote remoteFailure
	if errors.As(err, &remote) {
		return nil // reported to the asker in an error frame
	}
	return err
}

// remoteFailure is the chunk's own failure (its origin read), sent to the
// asker in an error frame; the stream itself is fine.
type remoteFailure struct{ err error }

func (r remoteFailure) Error() string { return r.err.Error() }
func (r remoteFailure) Unwrap() []error {
	return []error{ErrRemote, r.err}
}

// openChunkStream asks the handler for a stream of key's chunk; a handler
// without FetchStream is served from Fetch.
func (s *Server) openChunkStream(ctx context.Context, key []byte) (ChunkStream, error) {
	if sh, ok := s.handler.(StreamHandler); ok {
		cs, err := sh.FetchStream(ctx, key)
		if err != nil {
			return nil, err
		}
		if cs == nil {
			return nil, errors.New("transfer: handler returned no stream")
		}
		return cs, nil
	}
	c, data, err := s.handler.Fetch(ctx, key)
	if err != nil {
		return nil, err
	}
	h, err := hashOf(c)
	if err != nil {
		return nil, err
	}
	return &wholeChunk{c: c, h: h, data: data}, nil
}

// hashOf names c's hash function.
func hashOf(c cid.Cid) (content.Hash, error) {
	if !c.Defined() {
		return "", fmt.Errorf("transfer: chunk without a cid")
	}
	switch c.Prefix().MhType {
	case mh.SHA2_256:
		return content.SHA256, nil
	case mh.BLAKE3:
		return content.BLAKE3, nil
	}
	return "", fmt.Errorf("transfer: chunk cid %s: %w", c, content.ErrUnsupported)
}

// wholeChunk is a ChunkStream over a complete chunk.
type wholeChunk struct {
	c    cid.Cid
	h    content.Hash
	data []byte
}

// NewWholeChunkStream returns a ChunkStream over a chunk that is complete
// already: its CID, hash function and bytes (read-only).
func NewWholeChunkStream(c cid.Cid, h content.Hash, data []byte) ChunkStream {
	return &wholeChunk{c: c, h: h, data: data}
}

func (w *wholeChunk) Size() int64        { return int64(len(w.data)) }
func (w *wholeChunk) Hash() content.Hash { return w.h }
func (w *wholeChunk) CID() cid.Cid       { return w.c }
func (w *wholeChunk) Close()             {}
func (w *wholeChunk) Next(_ context.Context, off int64) ([]byte, error) {
	if off >= int64(len(w.data)) {
		return nil, io.EOF
	}
	return w.data[off:], nil
}

// sendFrames writes the answer header and the frames of cs.
func (s *Server) sendFrames(ctx, hctx context.Context, st network.Stream, cs ChunkStream) error {
	size := cs.Size()
	h := cs.Hash()
	if _, err := content.ParseHash(string(h)); err != nil {
		return s.failStream(st, err)
	}
	if size < 0 || size > maxOffset {
		return s.failStream(st, fmt.Errorf("transfer: chunk of %d bytes", size))
	}
	hdr := Response{Status: StatusOK, CID: cs.CID(), Size: uint64(size), Length: uint64(size), Payload: []byte(h)}
	if err := s.writeHeader(st, hdr); err != nil {
		return err
	}
	var off int64
	for {
		nctx, cancel := context.WithTimeout(hctx, s.cfg.KeepAliveInterval)
		data, err := cs.Next(nctx, off)
		idle := nctx.Err() != nil // before cancel, which sets it
		cancel()
		switch {
		case err == nil && len(data) > 0 && int64(len(data)) <= size-off:
			if err := s.writeBody(ctx, st, data, true); err != nil {
				return err
			}
			off += int64(len(data))
		case err == nil:
			return fmt.Errorf("transfer: chunk stream gave %d bytes at %d of %d", len(data), off, size)
		case errors.Is(err, io.EOF):
			c := cs.CID()
			if off != size || !c.Defined() {
				return fmt.Errorf("transfer: chunk stream ended at %d of %d bytes (cid %v)", off, size, c.Defined())
			}
			return s.writeFrame(st, frameEnd, c.Bytes())
		case hctx.Err() != nil:
			return fmt.Errorf("transfer: chunk stream: %w", hctx.Err())
		case idle:
			// No byte for KeepAliveInterval: tell the asker we are alive.
			if err := s.writeFrame(st, frameKeepAlive, nil); err != nil {
				return err
			}
			s.metrics.keepAlives.Inc()
		default:
			if werr := s.writeFrame(st, frameError, errText(err)); werr != nil {
				return werr
			}
			return remoteFailure{err}
		}
	}
}

// failStream answers with an error status (before any frame).
func (s *Server) failStream(st network.Stream, err error) error {
	if werr := s.writeHeader(st, errorResponse(err)); werr != nil {
		return werr
	}
	return remoteFailure{err}
}

func errText(err error) []byte {
	msg := err.Error()
	if len(msg) > maxErrMsg {
		msg = msg[:maxErrMsg]
	}
	if msg == "" {
		msg = "error"
	}
	return []byte(msg)
}

// writeFrame writes one small frame.
func (s *Server) writeFrame(st network.Stream, t frameType, body []byte) error {
	b := appendFrameHeader(make([]byte, 0, frameHeaderSize+len(body)), t, len(body))
	b = append(b, body...)
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	_, err := st.Write(b)
	return err
}

// legacyPeers remembers peers that answer MsgFetch but not MsgFetchStream.
type legacyPeers struct {
	mu    sync.Mutex // guards until
	until map[peer.ID]time.Time
}

func (l *legacyPeers) is(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.until[p]
	if ok && time.Now().After(t) {
		delete(l.until, p)
		return false
	}
	return ok
}

func (l *legacyPeers) mark(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil {
		l.until = make(map[peer.ID]time.Time)
	}
	l.until[p] = time.Now().Add(legacyTTL)
}

// fetchAny fetches key from p with MsgFetchStream, falling back to MsgFetch
// for a peer that drops the stream request unanswered (one that predates
// it) and remembering such a peer if MsgFetch works.
func (c *Client) fetchAny(ctx context.Context, p peer.ID, key []byte) (content.Block, error) {
	if c.legacy.is(p) {
		return c.fetch(ctx, p, key)
	}
	b, err := c.fetchStream(ctx, p, key)
	if err == nil || !errors.Is(err, errNoAnswer) || ctx.Err() != nil {
		return b, err
	}
	b, ferr := c.fetch(ctx, p, key)
	if ferr == nil {
		c.legacy.mark(p)
		c.log.Info("peer does not stream fetches; using whole-chunk fetches", "peer", p)
		return b, nil
	}
	return content.Block{}, errors.Join(err, ferr)
}

// fetchStream sends MsgFetchStream and receives the chunk, hashing while
// the frames arrive; the whole exchange is capped at FetchTimeout, and
// every frame must come within StallTimeout of the previous one.
func (c *Client) fetchStream(ctx context.Context, p peer.ID, key []byte) (content.Block, error) {
	capAt := time.Now().Add(c.cfg.FetchTimeout)
	s, hdr, err := c.open(ctx, p, nil, Request{Type: MsgFetchStream, Key: key}, c.cfg.FetchTimeout)
	if err != nil {
		return content.Block{}, err
	}
	defer s.Close()
	h, herr := content.ParseHash(string(hdr.Payload))
	if herr != nil || hdr.Size > uint64(c.cfg.MaxBlockSize) || hdr.Offset != 0 || hdr.Length != hdr.Size ||
		(hdr.CID.Defined() && hdr.CID.Prefix() != content.Sum(h, nil).Prefix()) {
		_ = s.Reset()
		return content.Block{}, fmt.Errorf("%w: stream answer size %d offset %d length %d hash %q cid %v",
			ErrProtocol, hdr.Size, hdr.Offset, hdr.Length, hdr.Payload, hdr.CID)
	}
	b := content.NewBuilder(h, int(hdr.Size))
	start := time.Now()
	end, err := c.receiveFrames(ctx, s, b, capAt)
	c.traffic.received(p, b.Len(), time.Since(start))
	if err != nil {
		_ = s.Reset()
		return content.Block{}, err
	}
	if hdr.CID.Defined() && !end.Equals(hdr.CID) {
		return content.Block{}, fmt.Errorf("%w: answer named %s, end frame %s", ErrProtocol, hdr.CID, end)
	}
	blk, err := b.Verify(end)
	if err != nil {
		return content.Block{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return blk, nil
}

// deadlineReader is the part of a stream receiveFrames uses.
type deadlineReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// receiveFrames reads frames from r into b until the end frame, whose CID
// it returns (unverified), or an error frame (ErrRemote). Every read must
// progress within StallTimeout, and the end come before capAt.
func (c *Client) receiveFrames(ctx context.Context, r deadlineReader, b *content.Builder, capAt time.Time) (cid.Cid, error) {
	piece := maxFrameData
	if c.limiter != nil {
		piece = min(piece, readPiece)
	}
	scratch := make([]byte, min(piece, b.Size()))
	var hb [frameHeaderSize]byte
	readFull := func(buf []byte) error {
		for got := 0; got < len(buf); {
			if err := c.progressDeadline(r, capAt); err != nil {
				return err
			}
			n, err := r.Read(buf[got:])
			got += n
			if err != nil && got < len(buf) {
				return c.readErr(ctx, err, b.Len())
			}
		}
		return nil
	}
	for {
		if err := readFull(hb[:]); err != nil {
			return cid.Undef, err
		}
		h, err := parseFrameHeader(hb, int64(b.Size()-b.Len()))
		if err != nil {
			return cid.Undef, err
		}
		switch h.typ {
		case frameKeepAlive:
		case frameData:
			for rem := h.len; rem > 0; {
				buf := scratch[:min(rem, len(scratch))]
				if err := c.progressDeadline(r, capAt); err != nil {
					return cid.Undef, err
				}
				n, err := r.Read(buf)
				if n > 0 {
					if _, werr := b.Write(buf[:n]); werr != nil {
						return cid.Undef, fmt.Errorf("%w: %w", ErrProtocol, werr)
					}
					rem -= n
					c.metrics.bytesReceived.Add(float64(n))
					if c.limiter != nil {
						if werr := c.limiter.WaitN(ctx, n); werr != nil {
							return cid.Undef, werr
						}
					}
				}
				if err != nil && rem > 0 {
					return cid.Undef, c.readErr(ctx, err, b.Len())
				}
			}
		case frameEnd, frameError:
			body := make([]byte, h.len)
			if err := readFull(body); err != nil {
				return cid.Undef, err
			}
			if h.typ == frameError {
				return cid.Undef, fmt.Errorf("%w: %q", ErrRemote, body)
			}
			if !b.Full() {
				return cid.Undef, fmt.Errorf("%w: end frame after %d of %d bytes", ErrProtocol, b.Len(), b.Size())
			}
			return parseEndFrame(body)
		}
	}
}

// progressDeadline sets r's read deadline to StallTimeout from now, capped
// at capAt; past capAt it reports a stall.
func (c *Client) progressDeadline(r deadlineReader, capAt time.Time) error {
	now := time.Now()
	if !now.Before(capAt) {
		return fmt.Errorf("%w: no complete answer within %s", ErrStalled, c.cfg.FetchTimeout)
	}
	d := now.Add(c.cfg.StallTimeout)
	if d.After(capAt) {
		d = capAt
	}
	_ = r.SetReadDeadline(d)
	return nil
}

// readErr classifies a failed read after got chunk bytes.
func (c *Client) readErr(ctx context.Context, err error, got int) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("%w: no frame for %s after %d bytes", ErrStalled, c.cfg.StallTimeout, got)
	}
	return fmt.Errorf("transfer: stream cut after %d bytes: %w", got, err)
}
