// Package content owns how Shoal names bytes: chunk CIDs (CIDv1, raw codec,
// sha2-256 or blake3 multihash) and their verification. Every component that
// accepts bytes from outside (disk, peers) verifies them here.
package content

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	_ "github.com/multiformats/go-multihash/register/blake3" // registers BLAKE3 with go-multihash
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
	length := -1
	if h == BLAKE3 {
		length = 32
	}
	sum, err := mh.Sum(data, h.code(), length)
	if err != nil {
		// Only possible for an unregistered hash, which ParseHash rules out.
		panic(fmt.Sprintf("content: multihash %s: %v", h, err))
	}
	return cid.NewCidV1(codec, sum)
}

// Verify reports whether data hashes to c. It accepts only CIDs whose
// multihash is sha2-256 or blake3 with a 32-byte digest, so a peer cannot
// make us trust an identity hash or a truncated digest.
func Verify(c cid.Cid, data []byte) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined", ErrUnsupported)
	}
	p := c.Prefix()
	if (p.MhType != mh.SHA2_256 && p.MhType != mh.BLAKE3) || p.MhLength != 32 {
		return fmt.Errorf("%w: multihash 0x%x/%d", ErrUnsupported, p.MhType, p.MhLength)
	}
	got, err := p.Sum(data)
	if err != nil {
		return fmt.Errorf("content: hash: %w", err)
	}
	if !bytes.Equal(got.Hash(), c.Hash()) {
		return fmt.Errorf("%w: %s", ErrMismatch, c)
	}
	return nil
}
