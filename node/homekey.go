package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/internal/content"
)

// Home request keys (the opaque keys of transfer Fetch and Meta).
//
// Chunk key (integers unsigned minimal varints, strings length-prefixed):
//
//	0x01 bucket key etag size chunkSize hash index
//
// Meta key:
//
//	0x02 bucket key
const (
	chunkKeyTag byte = 1
	metaKeyTag  byte = 2
)

// ErrBadKey: a home request key failed to decode or validate.
var ErrBadKey = errors.New("node: bad home request key")

// encodeChunkKey encodes the home request for chunk i of v.
func encodeChunkKey(v catalog.Version, i int64) []byte {
	b := make([]byte, 0, 1+len(v.Bucket)+len(v.Key)+len(v.ETag)+len(v.Hash)+8*binary.MaxVarintLen64)
	b = append(b, chunkKeyTag)
	for _, s := range []string{v.Bucket, v.Key, v.ETag} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(v.Size))
	b = binary.AppendUvarint(b, uint64(v.ChunkSize))
	b = binary.AppendUvarint(b, uint64(len(v.Hash)))
	b = append(b, v.Hash...)
	return binary.AppendUvarint(b, uint64(i))
}

// keyReader decodes home request keys; the first error sticks.
type keyReader struct {
	b   []byte
	err error
}

func (r *keyReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadKey, fmt.Sprintf(format, a...))
	}
}

func (r *keyReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail("%s: bad varint", what)
		return 0
	case n != uvarintLen(v):
		r.fail("%s: non-minimal varint", what)
		return 0
	case v > max:
		r.fail("%s: %d exceeds %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *keyReader) str(what string, max uint64) string {
	n := r.uvarint(what+" length", max)
	if r.err != nil {
		return ""
	}
	if uint64(len(r.b)) < n {
		r.fail("%s: truncated", what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeChunkKey parses and validates a chunk key: bounded fields, minimal
// varints, a supported hash, a chunk size the node accepts, an index inside
// the version, and nothing trailing.
func decodeChunkKey(b []byte) (catalog.Version, int64, error) {
	if len(b) == 0 || b[0] != chunkKeyTag {
		return catalog.Version{}, 0, fmt.Errorf("%w: not a chunk key", ErrBadKey)
	}
	r := &keyReader{b: b[1:]}
	var v catalog.Version
	v.Bucket = r.str("bucket", maxBucketLen)
	v.Key = r.str("key", maxKeyLen)
	v.ETag = r.str("etag", maxETagLen)
	v.Size = int64(r.uvarint("size", maxManifestChunks*maxManifestChunkSize))
	v.ChunkSize = int64(r.uvarint("chunk size", maxChunkSize))
	v.Hash = r.str("hash", maxHashLen)
	i := int64(r.uvarint("index", maxManifestChunks))
	switch {
	case r.err != nil:
		return catalog.Version{}, 0, r.err
	case len(r.b) != 0:
		return catalog.Version{}, 0, fmt.Errorf("%w: %d trailing bytes", ErrBadKey, len(r.b))
	case v.Bucket == "":
		return catalog.Version{}, 0, fmt.Errorf("%w: empty bucket", ErrBadKey)
	case v.ChunkSize < minChunkSize:
		return catalog.Version{}, 0, fmt.Errorf("%w: chunk size %d below %d", ErrBadKey, v.ChunkSize, minChunkSize)
	case i >= v.NumChunks():
		return catalog.Version{}, 0, fmt.Errorf("%w: chunk %d of %d", ErrBadKey, i, v.NumChunks())
	}
	if _, err := content.ParseHash(v.Hash); err != nil {
		return catalog.Version{}, 0, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return v, i, nil
}

// encodeMetaKey encodes the home request for bucket/key's metadata.
func encodeMetaKey(bucket, key string) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(bucket)+len(key))
	b = append(b, metaKeyTag)
	b = binary.AppendUvarint(b, uint64(len(bucket)))
	b = append(b, bucket...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

func decodeMetaKey(b []byte) (bucket, key string, err error) {
	if len(b) == 0 || b[0] != metaKeyTag {
		return "", "", fmt.Errorf("%w: not a meta key", ErrBadKey)
	}
	r := &keyReader{b: b[1:]}
	bucket = r.str("bucket", maxBucketLen)
	key = r.str("key", maxKeyLen)
	switch {
	case r.err != nil:
		return "", "", r.err
	case len(r.b) != 0:
		return "", "", fmt.Errorf("%w: %d trailing bytes", ErrBadKey, len(r.b))
	case bucket == "":
		return "", "", fmt.Errorf("%w: empty bucket", ErrBadKey)
	}
	return bucket, key, nil
}
