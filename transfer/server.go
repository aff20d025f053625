package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"
)

// Handler answers requests for a Server. Return ErrNotFound or ErrBusy
// (wrapped or not) for those statuses; any other error is sent as an error
// status. Returned slices are only read. A Handler that also implements
// StreamHandler answers MsgFetchStream requests while the chunk arrives.
type Handler interface {
	// GetBlock returns the whole block named c.
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
	// Fetch resolves an opaque key for which this node is the home node,
	// fetching from the origin if needed, and returns the chunk's CID and
	// bytes.
	Fetch(ctx context.Context, key []byte) (cid.Cid, []byte, error)
	// Meta returns opaque metadata (at most MaxMetaSize bytes) for key.
	Meta(ctx context.Context, key []byte) ([]byte, error)
}

// writePiece is the largest single stream write: the write deadline is
// renewed before each piece, so a slow but moving reader is not cut off,
// and the upload limiter is charged per piece.
const writePiece = 256 << 10

// Server answers /shoal/chunk/1.0.0 streams from a Handler.
type Server struct {
	h       host.Host
	handler Handler
	cfg     ServerConfig
	log     *slog.Logger
	metrics *serverMetrics
	limiter *rate.Limiter // nil: unlimited
	traffic *Traffic      // bytes sent per peer
	slots   chan struct{} // bounded concurrent serves
	ready   chan struct{}
	// keepAliveFrame is the encoded StatusWorking response.
	keepAliveFrame []byte

	mu      sync.Mutex // guards ctx, closed, streams; wg.Add happens under it
	ctx     context.Context
	closed  bool
	streams map[network.Stream]struct{}
	wg      sync.WaitGroup
}

// NewServer returns a Server that will answer on h once Run is called.
func NewServer(h host.Host, handler Handler, cfg ServerConfig, opts ...Option) (*Server, error) {
	if h == nil || handler == nil {
		return nil, errors.New("transfer: NewServer needs a host and a handler")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := buildOptions("transfer-server", opts)
	m, err := newServerMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	ka, err := AppendResponse(nil, Response{Status: StatusWorking})
	if err != nil {
		return nil, err
	}
	s := &Server{
		h: h, handler: handler, cfg: cfg, log: o.logger, metrics: m, traffic: o.traffic,
		slots:          make(chan struct{}, cfg.MaxConcurrent),
		ready:          make(chan struct{}),
		keepAliveFrame: ka,
		streams:        make(map[network.Stream]struct{}),
	}
	if cfg.UploadBytesPerSec > 0 {
		s.limiter = newLimiter(cfg.UploadBytesPerSec)
	}
	return s, nil
}

// newLimiter returns a token bucket of bps bytes/s whose burst holds at
// least one write piece.
func newLimiter(bps int64) *rate.Limiter {
	burst := max(int(min(bps, 1<<30)), writePiece)
	return rate.NewLimiter(rate.Limit(bps), burst)
}

// Ready is closed once Run has registered the protocol handler.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx is done, then unregisters the protocol, resets the
// streams being served and waits for their goroutines. It returns nil on a
// normal shutdown.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.ctx != nil {
		s.mu.Unlock()
		return fmt.Errorf("transfer: server Run called twice: %w", ErrClosed)
	}
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = serveCtx
	s.mu.Unlock()

	s.h.SetStreamHandler(ProtocolID, s.handleStream)
	close(s.ready)
	s.log.Info("serving", "protocol", ProtocolID, "max_concurrent", s.cfg.MaxConcurrent)
	<-ctx.Done()

	s.h.RemoveStreamHandler(ProtocolID)
	s.mu.Lock()
	s.closed = true
	for st := range s.streams {
		_ = st.Reset()
	}
	s.mu.Unlock()
	cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) handleStream(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	ctx := s.ctx
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
		s.wg.Done()
	}()

	if err := s.serve(ctx, st); err != nil {
		_ = st.Reset()
		s.log.Debug("stream failed", "peer", st.Conn().RemotePeer(), "err", err)
		return
	}
	_ = st.Close()
}

// serve handles one request on st. A returned error means the stream must
// be reset.
func (s *Server) serve(ctx context.Context, st network.Stream) error {
	_ = st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	req, err := ReadRequest(st)
	if err != nil {
		s.metrics.requests.WithLabelValues("invalid", resultLabel(err)).Inc()
		return err
	}
	_ = st.SetReadDeadline(time.Time{})
	typ := req.Type.String()

	select {
	case s.slots <- struct{}{}:
	default:
		s.metrics.requests.WithLabelValues(typ, "busy").Inc()
		return s.writeHeader(st, Response{Status: StatusBusy})
	}
	s.metrics.inflight.Inc()
	defer func() {
		<-s.slots
		s.metrics.inflight.Dec()
	}()

	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandlerTimeout)
	defer cancel()
	if req.Type == MsgFetchStream {
		return s.serveStream(ctx, hctx, cancel, st, req.Key)
	}
	stopKeepAlive := s.keepAlive(hctx, cancel, st)
	var (
		c    cid.Cid
		data []byte
	)
	switch req.Type {
	case MsgGetBlock:
		data, err = s.handler.GetBlock(hctx, req.CID)
	case MsgFetch:
		c, data, err = s.handler.Fetch(hctx, req.Key)
	case MsgMeta:
		data, err = s.handler.Meta(hctx, req.Key)
		if err == nil && len(data) > MaxMetaSize {
			err = fmt.Errorf("meta answer of %d bytes exceeds %d", len(data), MaxMetaSize)
		}
	}
	if kerr := stopKeepAlive(); kerr != nil {
		// The asker is gone (its stream is reset): nobody to answer.
		s.metrics.requests.WithLabelValues(typ, "error").Inc()
		return kerr
	}
	if err == nil && req.Type == MsgMeta {
		s.metrics.requests.WithLabelValues(typ, "ok").Inc()
		return s.writeHeader(st, Response{Status: StatusOK, Payload: data})
	}
	if err != nil {
		s.metrics.requests.WithLabelValues(typ, resultLabel(err)).Inc()
		return s.writeHeader(st, errorResponse(err))
	}

	size := uint64(len(data))
	off := min(req.Offset, size)
	n := size - off
	if req.Length != 0 {
		n = min(n, req.Length)
	}
	hdr := Response{Status: StatusOK, CID: c, Size: size, Offset: off, Length: n}
	if err := s.writeHeader(st, hdr); err != nil {
		s.metrics.requests.WithLabelValues(typ, "error").Inc()
		return err
	}
	err = s.writeBody(ctx, st, data[off:off+n], false)
	s.metrics.requests.WithLabelValues(typ, resultLabel(err)).Inc()
	return err
}

// keepAlive sends a StatusWorking frame on st every KeepAliveInterval
// until the returned stop function is called, so that the asker can tell a
// busy handler from a hung peer. A failed write means the asker left: the
// handler's context is cancelled (cancel) and stop returns the error. stop
// waits for the sender to finish, so the caller owns the stream's writes
// again when it returns.
func (s *Server) keepAlive(ctx context.Context, cancel context.CancelFunc, st network.Stream) (stop func() error) {
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		t := time.NewTicker(s.cfg.KeepAliveInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				done <- nil
				return
			case <-ctx.Done():
				done <- nil
				return
			case <-t.C:
			}
			_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if _, err := st.Write(s.keepAliveFrame); err != nil {
				cancel()
				done <- fmt.Errorf("transfer: keep-alive: %w", err)
				return
			}
			s.metrics.keepAlives.Inc()
		}
	}()
	return func() error {
		close(quit)
		return <-done
	}
}

func errorResponse(err error) Response {
	switch {
	case errors.Is(err, ErrNotFound):
		return Response{Status: StatusNotFound}
	case errors.Is(err, ErrBusy):
		return Response{Status: StatusBusy}
	}
	msg := err.Error()
	if len(msg) > maxErrMsg {
		msg = msg[:maxErrMsg]
	}
	return Response{Status: StatusError, Payload: []byte(msg)}
}

func (s *Server) writeHeader(st network.Stream, r Response) error {
	b, err := AppendResponse(make([]byte, 0, 64+len(r.Payload)), r)
	if err != nil {
		return err
	}
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	_, err = st.Write(b)
	return err
}

// writeBody streams data in pieces of at most writePiece bytes (raw, or
// each in a data frame when framed), renewing the idle deadline before each
// piece and charging the upload limiter. The bytes written are counted in
// s.traffic for the stream's peer.
func (s *Server) writeBody(ctx context.Context, st network.Stream, data []byte, framed bool) error {
	sent := 0
	defer func() { s.traffic.sent(st.Conn().RemotePeer(), sent) }()
	var hb [frameHeaderSize]byte
	for len(data) > 0 {
		n := min(len(data), writePiece)
		if s.limiter != nil {
			if err := s.limiter.WaitN(ctx, n); err != nil {
				return err
			}
		}
		_ = st.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if framed {
			if _, err := st.Write(appendFrameHeader(hb[:0], frameData, n)); err != nil {
				return err
			}
		}
		w, err := st.Write(data[:n])
		sent += w
		s.metrics.bytesSent.Add(float64(w))
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
