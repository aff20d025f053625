package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/transfer"
)

// Serving peers. GetBlock serves only what the local store holds; Fetch,
// FetchStream and Meta serve requests for which this node is the home
// node, through the node's own read path (store, providers, origin) and
// its flights, and never forward them to another home.
//
// Cut-through: a home reads a chunk from the origin for the whole cluster;
// instead of making the other nodes wait until the chunk has landed, it
// passes the bytes on while they arrive. FetchStream joins the chunk's
// home flight, and as soon as the flight's origin read has begun (the
// flight publishes its arrival) streams from it. Peers verify the bytes
// against the CID the home names at the end, and the node's own readers
// still get whole verified chunks.

// maxServedChunk bounds the chunk size of a version served as home: the
// transfer client's default MaxBlockSize, above which peers refuse blocks.
const maxServedChunk = transfer.DefaultMaxBlockSize

// PeerHandler serves other cluster members; it satisfies transfer.Handler
// and transfer.StreamHandler.
type PeerHandler struct{ n *Node }

var (
	_ transfer.Handler       = (*PeerHandler)(nil)
	_ transfer.StreamHandler = (*PeerHandler)(nil)
	_ transfer.ChunkStream   = (*homeStream)(nil)
)

// PeerHandler returns the handler to give transfer.NewServer.
func (n *Node) PeerHandler() *PeerHandler { return &PeerHandler{n: n} }

// GetBlock returns block c from the local store; it never fetches. A block
// the store does not hold (or dropped as corrupt) is transfer.ErrNotFound.
func (h *PeerHandler) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := h.n.store.Get(ctx, c)
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, blockstore.ErrNotFound), errors.Is(err, blockstore.ErrHashMismatch):
		return nil, fmt.Errorf("node: block %s: %w", c, transfer.ErrNotFound)
	}
	return nil, fmt.Errorf("node: block %s: %w", c, err)
}

// homeChunk decodes a home request key and checks it is one this node
// serves.
func homeChunk(key []byte) (catalog.Version, int64, error) {
	v, i, err := decodeChunkKey(key)
	if err != nil {
		return catalog.Version{}, 0, err
	}
	if v.ChunkSize > maxServedChunk {
		// Never allocate a chunk no peer could receive.
		return catalog.Version{}, 0, fmt.Errorf("%w: chunk size %d exceeds %d", ErrBadKey, v.ChunkSize, maxServedChunk)
	}
	return v, i, nil
}

// Fetch serves the chunk named by a home request key (see encodeChunkKey)
// as its home node.
func (h *PeerHandler) Fetch(ctx context.Context, key []byte) (cid.Cid, []byte, error) {
	v, i, err := homeChunk(key)
	if err != nil {
		return cid.Undef, nil, err
	}
	d, _, err := h.n.readChunk(ctx, v, i, access{asHome: true, ahead: true})
	if err != nil {
		return cid.Undef, nil, peerErr(fmt.Sprintf("fetch %s/%s chunk %d", v.Bucket, v.Key, i), err)
	}
	return d.cid, d.data, nil
}

// FetchStream serves the chunk named by a home request key as its home
// node, as Fetch does, but streams it: a chunk in the store is sent at
// once; otherwise the chunk's home flight is joined and, as soon as it
// reads the chunk from the origin, its bytes are sent as they arrive. A
// flight that finds the chunk elsewhere (a provider) is streamed once it
// has the whole chunk.
func (h *PeerHandler) FetchStream(ctx context.Context, key []byte) (transfer.ChunkStream, error) {
	n := h.n
	v, i, err := homeChunk(key)
	if err != nil {
		return nil, err
	}
	how := access{asHome: true, ahead: true}
	r, err := n.chunk(ctx, v, i, how)
	op := fmt.Sprintf("fetch %s/%s chunk %d", v.Bucket, v.Key, i)
	switch {
	case err != nil:
		return nil, peerErr(op, err)
	case r.t == nil:
		return transfer.NewWholeChunkStream(r.hit.cid, n.hashOf(v), r.hit.data), nil
	}
	t := r.t
	select {
	case <-t.shown():
		return &homeStream{a: t.progress(), v: v, i: i, t: t, served: func() { n.served(r, how, v, i) }}, nil
	case <-t.done():
		d, err := t.result()
		t.leave()
		if err != nil {
			return nil, peerErr(op, err)
		}
		n.served(r, how, v, i)
		return transfer.NewWholeChunkStream(d.cid, n.hashOf(v), d.data), nil
	case <-ctx.Done():
		t.leave()
		return nil, ctx.Err()
	}
}

// homeStream streams a chunk from its origin read at this home node while
// holding the home flight's ticket (a flight whose holders all left is
// cancelled).
type homeStream struct {
	a      *originfetch.Arrival
	v      catalog.Version
	i      int64
	t      *chunkTicket
	served func() // called once the flight ended well
}

func (s *homeStream) Size() int64        { return s.a.Size() }
func (s *homeStream) Hash() content.Hash { return s.a.Hash() }

func (s *homeStream) Next(ctx context.Context, off int64) ([]byte, error) {
	data, err := s.a.Next(ctx, off)
	if err != nil && err != io.EOF && ctx.Err() == nil {
		return nil, fmt.Errorf("node: home read of %s/%s chunk %d: %w", s.v.Bucket, s.v.Key, s.i, err)
	}
	return data, err
}

func (s *homeStream) CID() cid.Cid {
	blk, ok := s.a.Result()
	if !ok {
		return cid.Undef
	}
	return blk.CID()
}

// Close leaves the flight. After a complete read it waits for the flight
// to store and record the chunk instead of cancelling it.
func (s *homeStream) Close() {
	if _, ok := s.a.Result(); ok {
		<-s.t.done()
		if _, err := s.t.result(); err == nil {
			s.served()
		}
	}
	s.t.leave()
}

// Meta answers a metadata request (see encodeMetaKey) as the key's home
// node, from its catalog while fresh, else from the origin.
func (h *PeerHandler) Meta(ctx context.Context, key []byte) ([]byte, error) {
	n := h.n
	if len(key) > 0 && key[0] == ctlKeyTag {
		return h.serveControl(ctx, key)
	}
	bucket, k, err := decodeMetaKey(key)
	if err != nil {
		return nil, err
	}
	o, err := n.headAt(ctx, bucket, k, true)
	var a metaAnswer
	switch {
	case err == nil:
		a = metaAnswer{Status: metaOK, Object: &o, Age: max(0, n.now().Sub(o.CheckedAt))}
	case errors.Is(err, origin.ErrNotFound):
		a = metaAnswer{Status: metaNoKey}
	case errors.Is(err, origin.ErrNoSuchBucket):
		a = metaAnswer{Status: metaNoBucket}
	default:
		return nil, peerErr("meta "+bucket+"/"+k, err)
	}
	return encodeMetaAnswer(a)
}

// peerErr maps read path errors to what the transfer server understands:
// a version the origin no longer has is ErrNotFound (the asker falls back);
// a full store or a closing node is ErrBusy; anything else is an error
// status.
func peerErr(op string, err error) error {
	switch {
	case errors.Is(err, origin.ErrNotFound), errors.Is(err, origin.ErrNoSuchBucket),
		errors.Is(err, origin.ErrPreconditionFailed):
		return fmt.Errorf("node: %s: %w: %w", op, transfer.ErrNotFound, err)
	case errors.Is(err, blockstore.ErrFull), errors.Is(err, ErrClosed):
		return fmt.Errorf("node: %s: %w: %w", op, transfer.ErrBusy, err)
	}
	return fmt.Errorf("node: %s: %w", op, err)
}
