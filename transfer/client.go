package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/shoal-cache/shoal/internal/content"
)

// readPiece caps one stream read when a download limit is set, so the
// limiter is charged in small steps.
const readPiece = 256 << 10

// Client fetches chunks, fetch-through chunks and metadata from peers.
// It is safe for concurrent use; its peer measurements and penalty box are
// shared by all calls.
type Client struct {
	h       host.Host
	cfg     ClientConfig
	log     *slog.Logger
	metrics *clientMetrics
	limiter *rate.Limiter // nil: unlimited
	slots   chan struct{} // bounded concurrent calls
	peers   *peerTable
	traffic *Traffic    // bytes received per peer (and sent, if shared with a Server)
	legacy  legacyPeers // peers that answer MsgFetch but not MsgFetchStream
}

// NewClient returns a Client that opens streams from h.
func NewClient(h host.Host, cfg ClientConfig, opts ...Option) (*Client, error) {
	if h == nil {
		return nil, errors.New("transfer: NewClient needs a host")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := buildOptions("transfer-client", opts)
	m, err := newClientMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		h: h, cfg: cfg, log: o.logger, metrics: m,
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		peers:   newPeerTable(float64(cfg.PriorThroughput)),
		traffic: o.traffic,
	}
	if cfg.DownloadBytesPerSec > 0 {
		c.limiter = newLimiter(cfg.DownloadBytesPerSec)
	}
	return c, nil
}

// Peer reports what the client has measured about p, with the bytes
// exchanged with it (see Traffic).
func (c *Client) Peer(p peer.ID) PeerInfo {
	pi := c.peers.info(p)
	tr := c.traffic.Peer(p)
	pi.BytesIn, pi.BytesOut, pi.ReceiveRate = tr.In, tr.Out, tr.InRate
	return pi
}

// Penalized reports whether p is in the penalty box now: it recently
// stalled, failed or sent corrupt data, and callers choosing among peers
// (home nodes, providers) should pass it over until it leaves.
func (c *Client) Penalized(p peer.ID) bool {
	return !c.peers.info(p).PenalizedUntil.IsZero()
}

// PenalizeLiar puts p in the penalty box for CorruptPenalty, as for
// corrupt bytes, for a lie its caller proved: a manifest or a chunk that
// matches the CID it was named by but not what the origin confirms. It is
// counted in shoal_transfer_corrupt_total and logged with why.
func (c *Client) PenalizeLiar(p peer.ID, why string) {
	c.metrics.corrupt.Inc()
	c.peers.penalize(p, c.cfg.CorruptPenalty)
	c.log.Warn("peer lied", "peer", p, "why", why)
}

// judge penalizes p for the outcome err of a Fetch or Meta: corrupt bytes
// for CorruptPenalty; a stall, a broken connection or a protocol violation
// for PenaltyDuration. An answer (not found, busy, a remote error such as
// the origin failing on the home) or the caller giving up is no fault.
func (c *Client) judge(ctx context.Context, p peer.ID, op string, err error) {
	switch {
	case err == nil, ctx.Err() != nil,
		errors.Is(err, ErrNotFound), errors.Is(err, ErrBusy), errors.Is(err, ErrRemote):
	case errors.Is(err, ErrCorrupt):
		c.metrics.corrupt.Inc()
		c.peers.penalize(p, c.cfg.CorruptPenalty)
		c.log.Warn("peer sent corrupt data", "peer", p, "op", op)
	case errors.Is(err, ErrStalled):
		c.metrics.stalls.Inc()
		c.peers.penalize(p, c.cfg.PenaltyDuration)
		c.log.Info("peer stalled", "peer", p, "op", op)
	default:
		c.peers.penalize(p, c.cfg.PenaltyDuration)
		c.log.Info("peer failed", "peer", p, "op", op, "err", err)
	}
}

func (c *Client) acquire(ctx context.Context) (func(), error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("transfer: waiting for a fetch slot: %w", ctx.Err())
	}
}

// Fetch asks p, the home node of key, for the chunk under key (p fetches it
// from the origin if needed) and returns its CID and bytes, verified.
func (c *Client) Fetch(ctx context.Context, p peer.ID, key []byte) (cid.Cid, []byte, error) {
	b, err := c.FetchVerified(ctx, p, key)
	if err != nil {
		return cid.Undef, nil, err
	}
	return b.CID(), b.Data(), nil
}

// FetchVerified is Fetch returning the answer as a content.Block: proof that
// the bytes were verified against the CID the home node named. It asks with
// MsgFetchStream, so the home passes the chunk on while it still arrives
// from the origin and the bytes are hashed as they come; a peer that drops
// that request unanswered (an older version) is asked with MsgFetch.
func (c *Client) FetchVerified(ctx context.Context, p peer.ID, key []byte) (content.Block, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return content.Block{}, fmt.Errorf("transfer: fetch: key of %d bytes (want 1..%d): %w", len(key), MaxKeySize, ErrProtocol)
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return content.Block{}, err
	}
	defer release()
	b, err := c.fetchAny(ctx, p, key)
	c.metrics.requests.WithLabelValues("fetch", resultLabel(err)).Inc()
	c.judge(ctx, p, "fetch", err)
	if err != nil {
		return content.Block{}, fmt.Errorf("transfer: fetch from %s: %w", p, err)
	}
	return b, nil
}

func (c *Client) fetch(ctx context.Context, p peer.ID, key []byte) (content.Block, error) {
	s, hdr, err := c.open(ctx, p, nil, Request{Type: MsgFetch, Key: key}, c.cfg.FetchTimeout)
	if err != nil {
		return content.Block{}, err
	}
	defer s.Close()
	if hdr.Size > uint64(c.cfg.MaxBlockSize) || hdr.Offset != 0 || hdr.Length != hdr.Size || !hdr.CID.Defined() {
		_ = s.Reset()
		return content.Block{}, fmt.Errorf("%w: fetch answer size %d offset %d length %d cid %v",
			ErrProtocol, hdr.Size, hdr.Offset, hdr.Length, hdr.CID.Defined())
	}
	data := make([]byte, hdr.Size)
	n, err := c.readBody(ctx, p, s, data)
	if err != nil {
		_ = s.Reset()
		return content.Block{}, err
	}
	if n != len(data) {
		return content.Block{}, fmt.Errorf("%w: short body", ErrProtocol)
	}
	b, err := content.VerifyBlock(hdr.CID, data)
	if err != nil {
		if errors.Is(err, content.ErrMismatch) {
			return content.Block{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return content.Block{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return b, nil
}

// Meta asks p for the opaque metadata under key.
func (c *Client) Meta(ctx context.Context, p peer.ID, key []byte) ([]byte, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, fmt.Errorf("transfer: meta: key of %d bytes (want 1..%d): %w", len(key), MaxKeySize, ErrProtocol)
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	s, hdr, err := c.open(ctx, p, nil, Request{Type: MsgMeta, Key: key}, c.cfg.FetchTimeout)
	if err == nil {
		_ = s.Close()
		if hdr.Length != 0 {
			err = fmt.Errorf("%w: meta answer announces %d raw bytes", ErrProtocol, hdr.Length)
		}
	}
	c.metrics.requests.WithLabelValues("meta", resultLabel(err)).Inc()
	c.judge(ctx, p, "meta", err)
	if err != nil {
		return nil, fmt.Errorf("transfer: meta from %s: %w", p, err)
	}
	return hdr.Payload, nil
}

// open connects to p if needed, opens a stream, sends req and reads the
// answer header, waiting at most headerTimeout for it in all and at most
// StallTimeout between keep-alives. On StatusOK it returns the stream,
// positioned at the raw bytes; the caller closes it. The stream is reset if
// ctx ends while it is open.
func (c *Client) open(ctx context.Context, p peer.ID, addrs []ma.Multiaddr, req Request, headerTimeout time.Duration) (network.Stream, Response, error) {
	if p == c.h.ID() {
		return nil, Response{}, fmt.Errorf("transfer: refusing to dial self")
	}
	if len(addrs) > 0 {
		c.h.Peerstore().AddAddrs(p, addrs, peerstore.TempAddrTTL)
	}
	if c.h.Network().Connectedness(p) != network.Connected {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		err := c.h.Connect(dctx, peer.AddrInfo{ID: p, Addrs: addrs})
		cancel()
		if err != nil {
			return nil, Response{}, fmt.Errorf("transfer: connect: %w", err)
		}
	}
	b, err := AppendRequest(nil, req)
	if err != nil {
		return nil, Response{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	s, err := c.h.NewStream(sctx, p, ProtocolID)
	cancel()
	if err != nil {
		return nil, Response{}, fmt.Errorf("transfer: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	fail := func(err error) (network.Stream, Response, error) {
		stop()
		_ = s.Reset()
		if ctx.Err() != nil {
			return nil, Response{}, ctx.Err()
		}
		return nil, Response{}, classify(err)
	}
	// dropped is fail for an exchange the peer cut without any answer.
	dropped := func(err error) (network.Stream, Response, error) {
		if ctx.Err() == nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrStalled) &&
			!errors.Is(err, os.ErrDeadlineExceeded) && !isTimeout(err) {
			err = fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		return fail(err)
	}
	_ = s.SetWriteDeadline(time.Now().Add(c.cfg.StallTimeout))
	if _, err := s.Write(b); err != nil {
		return dropped(err)
	}
	_ = s.SetWriteDeadline(time.Time{})
	if err := s.CloseWrite(); err != nil {
		return dropped(err)
	}
	hdr, err := c.readHeader(s, headerTimeout)
	if err != nil {
		return dropped(err)
	}
	switch hdr.Status {
	case StatusOK:
	case StatusNotFound:
		return fail(ErrNotFound)
	case StatusBusy:
		return fail(ErrBusy)
	default:
		return fail(fmt.Errorf("%w: %q", ErrRemote, hdr.Payload))
	}
	return &guardedStream{Stream: s, stop: stop}, hdr, nil
}

// readHeader reads the answer header from s, skipping keep-alives. Every
// frame must arrive within StallTimeout of the previous one (a progress
// timeout: a hung peer is dropped after StallTimeout, however long the
// handler may legitimately run), and the answer within total.
func (c *Client) readHeader(s network.Stream, total time.Duration) (Response, error) {
	capAt := time.Now().Add(total)
	for {
		now := time.Now()
		if !now.Before(capAt) {
			return Response{}, fmt.Errorf("%w: no answer within %s", ErrStalled, total)
		}
		deadline := now.Add(c.cfg.StallTimeout)
		if deadline.After(capAt) {
			deadline = capAt
		}
		_ = s.SetReadDeadline(deadline)
		hdr, err := ReadResponse(s)
		if err != nil {
			return Response{}, err
		}
		if hdr.Status != StatusWorking {
			return hdr, nil
		}
	}
}

// guardedStream unregisters the context watch when the stream is done.
type guardedStream struct {
	network.Stream
	stop func() bool
}

func (g *guardedStream) Close() error { g.stop(); return g.Stream.Close() }
func (g *guardedStream) Reset() error { g.stop(); return g.Stream.Reset() }

// readBody fills dst from s, the stream to p, renewing the stall deadline
// before every read, charging the download limiter and counting what
// arrives in c.traffic. It returns the bytes read.
func (c *Client) readBody(ctx context.Context, p peer.ID, s network.Stream, dst []byte) (got int, err error) {
	start := time.Now()
	defer func() { c.traffic.received(p, got, time.Since(start)) }()
	for got < len(dst) {
		buf := dst[got:]
		if c.limiter != nil {
			buf = buf[:min(len(buf), readPiece)]
		}
		_ = s.SetReadDeadline(time.Now().Add(c.cfg.StallTimeout))
		n, err := s.Read(buf)
		got += n
		c.metrics.bytesReceived.Add(float64(n))
		if c.limiter != nil && n > 0 {
			if werr := c.limiter.WaitN(ctx, n); werr != nil {
				return got, werr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return got, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
				return got, fmt.Errorf("%w: no byte for %s after %d bytes", ErrStalled, c.cfg.StallTimeout, got)
			}
			if got < len(dst) {
				return got, fmt.Errorf("transfer: body cut at %d of %d bytes: %w", got, len(dst), err)
			}
		}
	}
	return got, nil
}

// classify marks deadline errors as stalls.
func classify(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
		return fmt.Errorf("%w: %w", ErrStalled, err)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
