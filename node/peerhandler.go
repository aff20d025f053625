package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/origin"
	"github.com/shoal-cache/shoal/transfer"
)

// maxServedChunk bounds the chunk size of a version served as home: the
// transfer client's default MaxBlockSize, above which peers refuse blocks.
const maxServedChunk = transfer.DefaultMaxBlockSize

// PeerHandler serves other cluster members; it satisfies transfer.Handler.
// GetBlock serves only what the local store holds; Fetch and Meta serve
// requests for which this node is the home node, through the node's own
// read path (store, providers, origin) and its node-wide singleflight, and
// never forward them to another home. FetchStream (transfer.StreamHandler)
// is Fetch passing a chunk on while it arrives from the origin.
type PeerHandler struct{ n *Node }

var _ transfer.Handler = (*PeerHandler)(nil)

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

// Fetch serves the chunk named by a home request key (see encodeChunkKey)
// as its home node.
func (h *PeerHandler) Fetch(ctx context.Context, key []byte) (cid.Cid, []byte, error) {
	n := h.n
	v, i, err := decodeChunkKey(key)
	if err != nil {
		return cid.Undef, nil, err
	}
	if v.ChunkSize > maxServedChunk {
		// Never allocate a chunk no peer could receive.
		return cid.Undef, nil, fmt.Errorf("%w: chunk size %d exceeds %d", ErrBadKey, v.ChunkSize, maxServedChunk)
	}
	data, err := n.chunkAt(ctx, v, i, true)
	if err != nil {
		return cid.Undef, nil, peerErr(fmt.Sprintf("fetch %s/%s chunk %d", v.Bucket, v.Key, i), err)
	}
	c, err := n.cat.Chunk(ctx, v, i)
	if err != nil {
		// Not recorded (catalog trouble): name the bytes we have.
		c = content.Sum(n.hashOf(v), data)
	}
	return c, data, nil
}

// Meta answers a metadata request (see encodeMetaKey) as the key's home
// node, from its catalog while fresh, else from the origin.
func (h *PeerHandler) Meta(ctx context.Context, key []byte) ([]byte, error) {
	n := h.n
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
// a full store is ErrBusy; anything else is an error status.
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
