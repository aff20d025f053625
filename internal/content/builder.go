package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/zeebo/blake3"
)

// ErrOverflow: more bytes were written to a Builder than its size.
var ErrOverflow = errors.New("content: more bytes than the block's size")

// ErrIncomplete: a Builder was asked for its Block before all its bytes
// were written.
var ErrIncomplete = errors.New("content: block incomplete")

// Builder assembles a block of a known size from bytes that arrive in
// pieces (a stream from the origin or a peer), hashing each piece as it is
// written, so the finished Block costs no second pass over the bytes.
//
// A Builder is not safe for concurrent writes. Bytes already written may be
// read (Bytes) by other goroutines while later ones are written, provided
// the reader learnt the length it reads through a synchronising event (a
// mutex or channel) after the Write that produced it: a Write never
// touches bytes already written.
type Builder struct {
	h    Hash
	code uint64
	buf  []byte // len: bytes written; cap: the block's size
	sum  hash.Hash
}

// NewBuilder returns a Builder for a block of exactly size bytes addressed
// with hash h (an unknown h is treated as SHA256, as Sum does). size < 0 is
// treated as 0.
func NewBuilder(h Hash, size int) *Builder {
	b := &Builder{h: h, code: h.code(), buf: make([]byte, 0, max(size, 0))}
	if b.code == mh.BLAKE3 {
		b.sum = blake3.New()
	} else {
		b.sum = sha256.New()
	}
	return b
}

// Write appends p and hashes it. A p that would take the block past its
// size is refused whole with ErrOverflow.
func (b *Builder) Write(p []byte) (int, error) {
	if len(p) > cap(b.buf)-len(b.buf) {
		return 0, fmt.Errorf("%w: %d + %d > %d", ErrOverflow, len(b.buf), len(p), cap(b.buf))
	}
	b.buf = append(b.buf, p...)
	_, _ = b.sum.Write(p) // hash.Hash writes never fail
	return len(p), nil
}

// Len is the number of bytes written so far.
func (b *Builder) Len() int { return len(b.buf) }

// Size is the block's size.
func (b *Builder) Size() int { return cap(b.buf) }

// Full reports whether all Size bytes were written.
func (b *Builder) Full() bool { return len(b.buf) == cap(b.buf) }

// Bytes returns the bytes written so far. Callers must not modify them.
func (b *Builder) Bytes() []byte { return b.buf[:len(b.buf):len(b.buf)] }

func (b *Builder) digest() ([]byte, error) {
	if !b.Full() {
		return nil, fmt.Errorf("%w: %d of %d bytes", ErrIncomplete, len(b.buf), cap(b.buf))
	}
	// Sum on a copy of the state would allow further writes; a full
	// Builder takes none, so summing in place is fine.
	return b.sum.Sum(nil), nil
}

// Block returns the finished block (raw codec) named by the hash of its
// bytes. It fails with ErrIncomplete until Size bytes were written.
func (b *Builder) Block() (Block, error) {
	d, err := b.digest()
	if err != nil {
		return Block{}, err
	}
	enc, err := mh.Encode(d, b.code)
	if err != nil {
		return Block{}, fmt.Errorf("content: multihash %s: %w", b.h, err)
	}
	return Block{c: cid.NewCidV1(cid.Raw, enc), data: b.Bytes()}, nil
}

// Verify returns the finished block named c if its bytes hash to c. c's
// prefix must be the one Block would give (CIDv1, raw codec, the Builder's
// hash function, 32-byte digest) and its digest the bytes' digest;
// otherwise Verify fails with ErrMismatch (the bytes are not the block c,
// and a peer cannot make us accept another hash than the one the bytes
// were hashed with). It fails with ErrIncomplete until Size bytes were
// written.
func (b *Builder) Verify(c cid.Cid) (Block, error) {
	if !c.Defined() {
		return Block{}, fmt.Errorf("%w: undefined cid", ErrMismatch)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != b.code || p.MhLength != 32 {
		return Block{}, fmt.Errorf("%w: %s is not a raw %s cid", ErrMismatch, c, b.h)
	}
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return Block{}, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	d, err := b.digest()
	if err != nil {
		return Block{}, err
	}
	if !bytes.Equal(d, dec.Digest) {
		return Block{}, fmt.Errorf("%w: %s", ErrMismatch, c)
	}
	return Block{c: c, data: b.Bytes()}, nil
}
