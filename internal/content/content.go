// Package content owns how Shoal names bytes: chunk CIDs (CIDv1, raw codec,
// sha2-256 or blake3 multihash) and their verification. Every component that
// accepts bytes from outside (disk, peers) verifies them here.
package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/zeebo/blake3"
)

// Hash names a supported multihash function.
type Hash string

// Supported hash functions.
const (
	SHA256 Hash = "sha2-256"
	BLAKE3 Hash = "blake3"
)

// ErrMismatch: bytes do not hash to the CID they were stored or sent under.
var ErrMismatch = errors.New("content: bytes do not match cid")

// ErrUnsupported: the CID uses a hash function Shoal does not accept.
var ErrUnsupported = errors.New("content: unsupported cid")

// ParseHash validates a hash name from configuration.
func ParseHash(s string) (Hash, error) {
	switch Hash(s) {
	case SHA256, BLAKE3:
		return Hash(s), nil
	}
	return "", fmt.Errorf("content: unknown hash %q (want %q or %q)", s, SHA256, BLAKE3)
}

func (h Hash) code() uint64 {
	if h == BLAKE3 {
		return mh.BLAKE3
	}
	return mh.SHA2_256
}

// Sum returns the CIDv1 (raw codec) of data.
func Sum(h Hash, data []byte) cid.Cid {
	return SumCodec(h, cid.Raw, data)
}

// SumCodec returns the CIDv1 of data with the given codec.
func SumCodec(h Hash, codec uint64, data []byte) cid.Cid {
	d := digest(h.code(), data)
	enc, err := mh.Encode(d[:], h.code())
	if err != nil {
		// Only possible for an unknown code, which ParseHash rules out.
		panic(fmt.Sprintf("content: multihash %s: %v", h, err))
	}
	return cid.NewCidV1(codec, enc)
}

// digest hashes data in this goroutine with the fastest implementation at
// hand: crypto/sha256 uses the CPU's SHA extensions, and zeebo/blake3 its
// SIMD code without spawning goroutines per call (go-multihash's registered
// BLAKE3 does, which cost about 15% of CPU on the SSD hit path).
func digest(code uint64, data []byte) [32]byte {
	if code == mh.BLAKE3 {
		return blake3.Sum256(data)
	}
	return sha256.Sum256(data)
}

// Verify reports whether data hashes to c. It accepts only CIDs whose
// multihash is sha2-256 or blake3 with a 32-byte digest, so a peer cannot
// make us trust an identity hash or a truncated digest.
func Verify(c cid.Cid, data []byte) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined", ErrUnsupported)
	}
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if (dec.Code != mh.SHA2_256 && dec.Code != mh.BLAKE3) || dec.Length != 32 {
		return fmt.Errorf("%w: multihash 0x%x/%d", ErrUnsupported, dec.Code, dec.Length)
	}
	got := digest(dec.Code, data)
	if !bytes.Equal(got[:], dec.Digest) {
		return fmt.Errorf("%w: %s", ErrMismatch, c)
	}
	return nil
}

// Block is bytes together with the CID they hash to. Its fields are
// unexported, so a Block can only come from hashing (NewBlock) or verifying
// (VerifyBlock): holding one proves the bytes match the CID, and a store
// may keep it without hashing the bytes a second time.
type Block struct {
	c    cid.Cid
	data []byte
}

// NewBlock hashes data and returns it as a raw-codec Block.
func NewBlock(h Hash, data []byte) Block {
	return Block{c: Sum(h, data), data: data}
}

// VerifyBlock checks data against c (as Verify) and returns them as a Block.
func VerifyBlock(c cid.Cid, data []byte) (Block, error) {
	if err := Verify(c, data); err != nil {
		return Block{}, err
	}
	return Block{c: c, data: data}, nil
}

// CID returns the block's CID (cid.Undef for the zero Block).
func (b Block) CID() cid.Cid { return b.c }

// Data returns the block's bytes; callers must not modify them.
func (b Block) Data() []byte { return b.data }
