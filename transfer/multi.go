package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-cache/shoal/internal/content"
)

// GetBlock fetches the block c from the given providers and returns it
// verified against c. With several providers it splits the block into
// sub-ranges and pulls them from the K best providers at once (ranked by
// measured throughput and current load); a provider that fails or stalls is
// dropped, penalized, and its remaining bytes are requested from another one
// at the byte offset where it stopped. If the assembled block does not match
// c, single providers are asked for the whole block until one verifies, and
// every provider whose bytes differed is penalized as corrupt. When no
// provider delivers, the error wraps ErrUnavailable (and the per-provider
// causes, e.g. ErrNotFound), so the caller can fall back to the origin.
func (c *Client) GetBlock(ctx context.Context, id cid.Cid, providers []peer.AddrInfo) ([]byte, error) {
	b, err := c.GetVerified(ctx, id, providers)
	if err != nil {
		return nil, err
	}
	return b.Data(), nil
}

// GetVerified is GetBlock returning the bytes as a content.Block: proof that
// they were verified against id, so a store need not hash them again.
func (c *Client) GetVerified(ctx context.Context, id cid.Cid, providers []peer.AddrInfo) (content.Block, error) {
	if err := content.Verify(id, nil); errors.Is(err, content.ErrUnsupported) {
		return content.Block{}, fmt.Errorf("transfer: get block: %w", err)
	}
	order, addrs := c.dedupe(providers)
	if len(order) == 0 {
		return content.Block{}, fmt.Errorf("transfer: get block %s: %w", id, ErrNoProviders)
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return content.Block{}, err
	}
	defer release()

	// Splitting only pays when several providers serve at once; one
	// provider gets the whole block in one request (one stream whose flow
	// control window keeps growing, no extra round trips).
	sub := c.cfg.SubRangeSize
	if min(len(c.peers.rank(order)), c.cfg.MaxParallel) <= 1 {
		sub = c.cfg.MaxBlockSize
	}
	f := c.newBlockFetch(id, order, addrs, c.cfg.MaxParallel, sub)
	data, err := f.run(ctx)
	if err != nil {
		return content.Block{}, fmt.Errorf("transfer: get block %s: %w", id, err)
	}
	if b, verr := content.VerifyBlock(id, data); verr == nil {
		return b, nil
	}
	c.log.Warn("assembled block does not verify; finding the liar", "cid", id, "providers", len(f.contributors()))
	good, err := c.recoverCorrupt(ctx, f, order, addrs)
	if err != nil {
		return content.Block{}, fmt.Errorf("transfer: get block %s: %w", id, err)
	}
	// recoverCorrupt verified good; this rare path hashes it once more to
	// hand out the proof.
	b, err := content.VerifyBlock(id, good)
	if err != nil {
		return content.Block{}, fmt.Errorf("transfer: get block %s: %w: %w", id, ErrCorrupt, err)
	}
	return b, nil
}

func (c *Client) dedupe(providers []peer.AddrInfo) ([]peer.ID, map[peer.ID][]ma.Multiaddr) {
	addrs := make(map[peer.ID][]ma.Multiaddr, len(providers))
	order := make([]peer.ID, 0, len(providers))
	for _, ai := range providers {
		if ai.ID == "" || ai.ID == c.h.ID() {
			continue
		}
		if _, dup := addrs[ai.ID]; !dup {
			order = append(order, ai.ID)
		}
		addrs[ai.ID] = append(addrs[ai.ID], ai.Addrs...)
	}
	return order, addrs
}

// recoverCorrupt is called when the block assembled by f does not verify.
// With sub-ranges from several peers the liar is unknown, so whole copies
// are fetched from single peers (the contributors first, the only
// contributor excepted) until one verifies; every single peer whose copy
// fails is a liar, and so is every contributor whose sub-ranges differ from
// the verified copy.
func (c *Client) recoverCorrupt(ctx context.Context, f *blockFetch, order []peer.ID, addrs map[peer.ID][]ma.Multiaddr) ([]byte, error) {
	contrib := f.contributors()
	liars := make(map[peer.ID]bool)
	if len(contrib) == 1 {
		liars[contrib[0]] = true
		c.penalizeCorrupt(f.id, contrib[0])
	}
	cands := make([]peer.ID, 0, len(order))
	seen := make(map[peer.ID]bool)
	for _, p := range append(append([]peer.ID(nil), contrib...), order...) {
		if !seen[p] && !liars[p] {
			seen[p] = true
			cands = append(cands, p)
		}
	}
	var (
		good   []byte
		causes []error
	)
	for _, p := range cands {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		single := c.newBlockFetch(f.id, []peer.ID{p}, addrs, 1, c.cfg.MaxBlockSize)
		data, err := single.run(ctx)
		if err != nil {
			causes = append(causes, err)
			continue
		}
		if err := content.Verify(f.id, data); err != nil {
			liars[p] = true
			c.penalizeCorrupt(f.id, p)
			causes = append(causes, fmt.Errorf("%s: %w", p, ErrCorrupt))
			continue
		}
		good = data
		break
	}
	if good == nil {
		return nil, errors.Join(append([]error{ErrUnavailable, ErrCorrupt}, causes...)...)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.segs {
		if liars[s.p] {
			continue
		}
		if f.size != int64(len(good)) || !bytes.Equal(f.buf[s.off:s.end], good[s.off:s.end]) {
			liars[s.p] = true
			c.penalizeCorrupt(f.id, s.p)
		}
	}
	return good, nil
}

func (c *Client) penalizeCorrupt(id cid.Cid, p peer.ID) {
	c.metrics.corrupt.Inc()
	c.peers.penalize(p, c.cfg.CorruptPenalty)
	c.log.Warn("peer sent corrupt data", "peer", p, "cid", id)
}

type span struct{ off, end int64 }

// segment records who delivered bytes [off, end).
type segment struct {
	p        peer.ID
	off, end int64
}

// blockFetch is one multi-provider download of one block.
type blockFetch struct {
	c        *Client
	id       cid.Cid
	order    []peer.ID
	addrs    map[peer.ID][]ma.Multiaddr
	parallel int
	sub      int64

	mu       sync.Mutex // guards the fields below; buf's bytes are written by workers on disjoint spans
	size     int64      // -1 until the first answer header
	buf      []byte
	cursor   int64  // next offset never handed out
	retry    []span // spans given back by failed providers, resumed first
	received int64
	segs     []segment
}

func (c *Client) newBlockFetch(id cid.Cid, order []peer.ID, addrs map[peer.ID][]ma.Multiaddr, parallel int, sub int64) *blockFetch {
	return &blockFetch{c: c, id: id, order: order, addrs: addrs, parallel: parallel, sub: sub, size: -1}
}

// next hands out the next span to fetch.
func (f *blockFetch) next() (span, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.retry) > 0 {
		r := f.retry[0]
		f.retry = f.retry[1:]
		if f.size >= 0 {
			r.end = min(r.end, f.size)
		}
		if r.off < r.end {
			return r, true
		}
	}
	limit := f.c.cfg.MaxBlockSize
	if f.size >= 0 {
		limit = f.size
	}
	if f.cursor >= limit {
		return span{}, false
	}
	r := span{f.cursor, min(f.cursor+f.sub, limit)}
	f.cursor = r.end
	return r, true
}

// pending reports whether spans remain to be handed out.
func (f *blockFetch) pending() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.retry) > 0 || f.size < 0 || f.cursor < f.size
}

func (f *blockFetch) complete() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size >= 0 && f.received == f.size
}

// setSize records the block size announced by a provider; all providers
// must agree.
func (f *blockFetch) setSize(size uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size > uint64(f.c.cfg.MaxBlockSize) {
		return fmt.Errorf("%w: block of %d bytes exceeds limit %d", ErrProtocol, size, f.c.cfg.MaxBlockSize)
	}
	if f.size < 0 {
		f.size = int64(size)
		f.buf = make([]byte, size)
		return nil
	}
	if f.size != int64(size) {
		return fmt.Errorf("%w: size %d, others said %d", ErrProtocol, size, f.size)
	}
	return nil
}

// settle records n bytes received at off from p and gives back the rest of
// r if the provider stopped short.
func (f *blockFetch) settle(p peer.ID, r span, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > 0 {
		f.received += n
		f.segs = append(f.segs, segment{p, r.off, r.off + n})
	}
	rest := span{r.off + n, r.end}
	if f.size >= 0 {
		rest.end = min(rest.end, f.size)
	}
	if rest.off < rest.end {
		// Resume first: it is the oldest missing data.
		f.retry = append([]span{rest}, f.retry...)
	}
}

func (f *blockFetch) contributors() []peer.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := make(map[peer.ID]bool)
	var out []peer.ID
	for _, s := range f.segs {
		if !seen[s.p] {
			seen[s.p] = true
			out = append(out, s.p)
		}
	}
	return out
}

type workerResult struct {
	p   peer.ID
	err error
}

// run downloads the block (unverified) with up to f.parallel providers at
// once.
func (f *blockFetch) run(ctx context.Context) ([]byte, error) {
	c := f.c
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan workerResult)
	active := make(map[peer.ID]bool)
	excluded := make(map[peer.ID]bool)
	var causes []error

	spawn := func() bool {
		for _, p := range c.peers.rank(f.order) {
			if excluded[p] || active[p] {
				continue
			}
			active[p] = true
			go func() { results <- workerResult{p, f.work(ctx, p)} }()
			return true
		}
		return false
	}
	fill := func() {
		for len(active) < f.parallel && f.pending() && ctx.Err() == nil && spawn() {
		}
	}
	fill()
	if len(active) == 0 {
		return nil, ErrNoProviders
	}
	for len(active) > 0 {
		r := <-results
		delete(active, r.p)
		if r.err != nil && ctx.Err() == nil {
			excluded[r.p] = true
			causes = append(causes, fmt.Errorf("%s: %w", r.p, r.err))
			f.punish(r.p, r.err)
		}
		if !f.complete() {
			fill()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !f.complete() {
		if len(causes) == 0 {
			causes = append(causes, ErrNoProviders)
		}
		return nil, errors.Join(append([]error{ErrUnavailable}, causes...)...)
	}
	return f.buf, nil
}

// punish applies the consequence of a provider's failure.
func (f *blockFetch) punish(p peer.ID, err error) {
	c := f.c
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrBusy):
		// Not a fault: just not this provider for this block.
	case errors.Is(err, ErrStalled):
		c.metrics.stalls.Inc()
		c.peers.penalize(p, c.cfg.PenaltyDuration)
		c.log.Info("provider stalled", "peer", p, "cid", f.id)
	default:
		c.peers.penalize(p, c.cfg.PenaltyDuration)
		c.log.Info("provider failed", "peer", p, "cid", f.id, "err", err)
	}
}

// work fetches spans from p until none is left or p fails.
func (f *blockFetch) work(ctx context.Context, p peer.ID) error {
	for {
		r, ok := f.next()
		if !ok {
			return nil
		}
		if err := f.fetchSpan(ctx, p, r); err != nil {
			return err
		}
	}
}

// fetchSpan requests span r from p and writes its bytes into the block.
func (f *blockFetch) fetchSpan(ctx context.Context, p peer.ID, r span) (err error) {
	c := f.c
	var got int64
	start := time.Now()
	c.peers.start(p)
	defer func() {
		c.peers.done(p, got, time.Since(start))
		f.settle(p, r, got)
		c.metrics.requests.WithLabelValues("get", resultLabel(err)).Inc()
	}()
	req := Request{Type: MsgGetBlock, CID: f.id, Offset: uint64(r.off), Length: uint64(r.end - r.off)}
	s, hdr, err := c.open(ctx, p, f.addrs[p], req, c.cfg.StallTimeout)
	if err != nil {
		return err
	}
	if err := f.setSize(hdr.Size); err != nil {
		_ = s.Reset()
		return err
	}
	f.mu.Lock()
	end := min(r.end, f.size)
	buf := f.buf
	f.mu.Unlock()
	want := max(end-r.off, 0)
	if hdr.Length != uint64(want) || (want > 0 && hdr.Offset != uint64(r.off)) {
		_ = s.Reset()
		return fmt.Errorf("%w: asked %d+%d of %d, got %d+%d", ErrProtocol, r.off, want, hdr.Size, hdr.Offset, hdr.Length)
	}
	if want == 0 {
		_ = s.Close()
		return nil
	}
	n, err := c.readBody(ctx, p, s, buf[r.off:end])
	got = int64(n)
	if err != nil {
		_ = s.Reset()
		return err
	}
	_ = s.Close()
	return nil
}
