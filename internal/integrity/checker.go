package integrity

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"strings"
)

// Algorithm names an integrity check as S3 spells it.
type Algorithm string

// The algorithms a Checker knows.
const (
	CRC64NVME Algorithm = "CRC64NVME"
	CRC32C    Algorithm = "CRC32C"
	CRC32     Algorithm = "CRC32"
	SHA1      Algorithm = "SHA1"
	SHA256    Algorithm = "SHA256"
	// MD5 is an ETag that is the hex MD5 of the object (a single-part
	// upload to S3 without SSE-KMS or SSE-C).
	MD5 Algorithm = "MD5"
)

// Sentinel errors, compared with errors.Is.
var (
	ErrMismatch    = errors.New("integrity: object does not match its origin's checksum")
	ErrUnsupported = errors.New("integrity: checksum cannot be checked by streaming the object")
	ErrMalformed   = errors.New("integrity: malformed checksum value")
)

// Want is one value an object must hash to, in S3's encoding.
type Want struct {
	Algorithm Algorithm
	Value     string
}

// Checker hashes an object's bytes, written in order, and compares the
// digests with the Wants it was made for. It is not safe for concurrent
// use.
type Checker struct {
	checks []check
	n      int64
}

type check struct {
	alg  Algorithm
	want []byte
	h    hash.Hash
}

// NewChecker returns a Checker for wants. A composite or multipart value
// fails with ErrUnsupported, a value that does not decode to a digest of
// the algorithm's size with ErrMalformed.
func NewChecker(wants ...Want) (*Checker, error) {
	c := &Checker{}
	for _, w := range wants {
		h, err := newHash(w.Algorithm)
		if err != nil {
			return nil, err
		}
		want, err := decode(w)
		if err != nil {
			return nil, err
		}
		if len(want) != h.Size() {
			return nil, fmt.Errorf("%w: %s %q decodes to %d bytes, want %d", ErrMalformed, w.Algorithm, w.Value, len(want), h.Size())
		}
		c.checks = append(c.checks, check{alg: w.Algorithm, want: want, h: h})
	}
	return c, nil
}

func newHash(a Algorithm) (hash.Hash, error) {
	switch a {
	case CRC64NVME:
		return &crc64NVME{}, nil
	case CRC32C:
		return crc32.New(castagnoli), nil
	case CRC32:
		return crc32.NewIEEE(), nil
	case SHA1:
		return sha1.New(), nil
	case SHA256:
		return sha256.New(), nil
	case MD5:
		return md5.New(), nil
	}
	return nil, fmt.Errorf("%w: unknown algorithm %q", ErrUnsupported, a)
}

func decode(w Want) ([]byte, error) {
	v := strings.TrimSpace(w.Value)
	if w.Algorithm == MD5 {
		v = strings.Trim(v, `"`)
	}
	if strings.Contains(v, "-") {
		return nil, fmt.Errorf("%w: %s %q is composite (a checksum of parts)", ErrUnsupported, w.Algorithm, w.Value)
	}
	var b []byte
	var err error
	if w.Algorithm == MD5 {
		b, err = hex.DecodeString(v)
	} else {
		b, err = base64.StdEncoding.DecodeString(v)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrMalformed, w.Algorithm, w.Value, err)
	}
	return b, nil
}

// Write hashes the next bytes of the object; it never fails.
func (c *Checker) Write(p []byte) (int, error) {
	for _, ch := range c.checks {
		ch.h.Write(p)
	}
	c.n += int64(len(p))
	return len(p), nil
}

// Written is the number of bytes hashed so far.
func (c *Checker) Written() int64 { return c.n }

// Verify compares the digests of the bytes written with the Wants. Every
// mismatch is reported, wrapping ErrMismatch. A Checker with no Wants
// verifies anything.
func (c *Checker) Verify() error {
	var errs []error
	for _, ch := range c.checks {
		got := ch.h.Sum(nil)
		if !bytes.Equal(got, ch.want) {
			errs = append(errs, fmt.Errorf("%w: %s of %d bytes is %s, the origin says %s",
				ErrMismatch, ch.alg, c.n, encode(ch.alg, got), encode(ch.alg, ch.want)))
		}
	}
	return errors.Join(errs...)
}

func encode(a Algorithm, b []byte) string {
	if a == MD5 {
		return hex.EncodeToString(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// crc64NVME is a hash.Hash64 over UpdateCRC64NVME.
type crc64NVME struct{ crc uint64 }

func (h *crc64NVME) Write(p []byte) (int, error) {
	h.crc = UpdateCRC64NVME(h.crc, p)
	return len(p), nil
}
func (h *crc64NVME) Sum(b []byte) []byte { return binary.BigEndian.AppendUint64(b, h.crc) }
func (h *crc64NVME) Sum64() uint64       { return h.crc }
func (h *crc64NVME) Reset()              { h.crc = 0 }
func (h *crc64NVME) Size() int           { return 8 }
func (h *crc64NVME) BlockSize() int      { return 1 }

// NewCRC64NVME returns a streaming CRC64NVME (big-endian Sum, as S3 and
// hash/crc64 encode it).
func NewCRC64NVME() hash.Hash64 { return &crc64NVME{} }
