package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/internal/s3name"
)

// ManifestCodec is the CID codec of manifest blocks: 0x300001, in the
// multicodec private-use range (0x300000-0x3fffff), so that a manifest CID
// is never mistaken for a raw chunk CID. The multihash is the version's
// configured hash (sha2-256 or blake3) of the encoded manifest.
const ManifestCodec uint64 = 0x300001

// manifestMagic starts every encoded manifest; the byte after it is the
// format version.
var manifestMagic = []byte("SHOALMF")

// Manifest format versions: 1 lists the chunk CIDs; 2 adds each chunk's
// checksum under the algorithm the version's origin reports (SumAlg), so
// that a node that learns the manifest from a peer can check it against the
// origin's full-object checksum (the chunk checksums combine to it) and each
// chunk it then receives against its checksum. A manifest without checksums
// is encoded as version 1 (one encoding per manifest, hence one CID).
const (
	manifestV1 = 1
	manifestV2 = 2
)

// Chunk checksum algorithms of a manifest (Manifest.SumAlg, and
// catalog.Sum.Alg): the full-object CRCs S3 offers, which combine across
// chunks.
const (
	SumNone      byte = 0
	SumCRC64NVME byte = 1
	SumCRC32C    byte = 2
	SumCRC32     byte = 3
)

// Decoder bounds: S3's limits on names (package s3name), and ours.
const (
	maxBucketLen = s3name.MaxBucketLen
	maxKeyLen    = s3name.MaxKeyLen
	maxETagLen   = s3name.MaxETagLen
	maxHashLen   = 16
	// maxManifestChunkSize bounds the chunk size (1 GiB): larger chunks
	// would not fit the memory budget of a reader.
	maxManifestChunkSize = 1 << 30
	// maxManifestChunks bounds the chunk count (2^24 chunks of at most 1 GiB;
	// 16 Mi CIDs of ~36 bytes is a 600 MiB manifest, the decoder's ceiling).
	maxManifestChunks = 1 << 24
	// maxCIDLen bounds one encoded CID (version, codec, multihash header,
	// 32-byte digest, with room).
	maxCIDLen = 128
)

// ErrBadManifest: bytes are not a valid manifest.
var ErrBadManifest = errors.New("node: bad manifest")

// Manifest describes one object version: where it came from, how it is cut,
// and its chunk CIDs in order. Chunk i covers bytes
// [i*ChunkSize, min((i+1)*ChunkSize, Size)).
//
// Encoding (all integers unsigned varints, strings length-prefixed):
//
//	"SHOALMF" 0x01 bucket key etag size chunkSize hash count cid*count
//	"SHOALMF" 0x02 bucket key etag size chunkSize hash count cid*count alg sum*count
//
// where each cid is a length-prefixed binary CIDv1 raw, alg a byte (1
// CRC64NVME, 2 CRC32C, 3 CRC32) and each sum 8 bytes big endian. Nothing
// may follow.
type Manifest struct {
	Bucket    string
	Key       string
	ETag      string
	Size      int64
	ChunkSize int64
	Hash      content.Hash
	Chunks    []cid.Cid
	// SumAlg names the chunk checksums in Sums (SumNone: none); Sums has
	// one per chunk when it is set.
	SumAlg byte
	Sums   []uint64
}

// Encode returns the manifest's binary encoding.
func (m Manifest) Encode() []byte {
	n := len(manifestMagic) + 1 + len(m.Bucket) + len(m.Key) + len(m.ETag) + len(m.Hash) + 8*binary.MaxVarintLen64
	for _, c := range m.Chunks {
		n += c.ByteLen() + 2
	}
	b := make([]byte, 0, n+1+8*len(m.Sums))
	b = append(b, manifestMagic...)
	ver := byte(manifestV1)
	if m.SumAlg != SumNone {
		ver = manifestV2
	}
	b = append(b, ver)
	for _, s := range []string{m.Bucket, m.Key, m.ETag} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendUvarint(b, uint64(m.ChunkSize))
	b = binary.AppendUvarint(b, uint64(len(m.Hash)))
	b = append(b, m.Hash...)
	b = binary.AppendUvarint(b, uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		cb := c.Bytes()
		b = binary.AppendUvarint(b, uint64(len(cb)))
		b = append(b, cb...)
	}
	if ver == manifestV2 {
		b = append(b, m.SumAlg)
		for _, s := range m.Sums {
			b = binary.BigEndian.AppendUint64(b, s)
		}
	}
	return b
}

// CID returns the manifest block's CID (codec ManifestCodec) and encoding.
func (m Manifest) CID() (cid.Cid, []byte) {
	b := m.Encode()
	return content.SumCodec(m.Hash, ManifestCodec, b), b
}

type mreader struct {
	b   []byte
	err error
}

func (r *mreader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, a...))
	}
}

func (r *mreader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("%s: bad varint", what)
		return 0
	}
	if n != uvarintLen(v) {
		r.fail("%s: non-minimal varint", what)
		return 0
	}
	r.b = r.b[n:]
	if v > max {
		r.fail("%s: %d exceeds %d", what, v, max)
		return 0
	}
	return v
}

func (r *mreader) bytes(what string, max uint64) []byte {
	n := r.uvarint(what+" length", max)
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.fail("%s: truncated", what)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// DecodeManifest parses and validates an encoded manifest: bounded lengths
// and counts, minimal varints (one encoding per manifest, hence one CID),
// a supported hash, a chunk count equal to
// ceil(Size/ChunkSize), CIDv1 raw chunk CIDs hashed with the manifest's
// hash, and no trailing bytes.
func DecodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if !bytes.HasPrefix(b, manifestMagic) {
		return m, fmt.Errorf("%w: bad magic", ErrBadManifest)
	}
	b = b[len(manifestMagic):]
	if len(b) == 0 || (b[0] != manifestV1 && b[0] != manifestV2) {
		return m, fmt.Errorf("%w: unsupported format version", ErrBadManifest)
	}
	ver := b[0]
	r := &mreader{b: b[1:]}
	m.Bucket = string(r.bytes("bucket", maxBucketLen))
	m.Key = string(r.bytes("key", maxKeyLen))
	m.ETag = string(r.bytes("etag", maxETagLen))
	m.Size = int64(r.uvarint("size", maxManifestChunks*maxManifestChunkSize))
	m.ChunkSize = int64(r.uvarint("chunk size", maxManifestChunkSize))
	hash := string(r.bytes("hash", maxHashLen))
	count := r.uvarint("chunk count", maxManifestChunks)
	if r.err != nil {
		return Manifest{}, r.err
	}
	h, err := content.ParseHash(hash)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	m.Hash = h
	if m.Bucket == "" {
		return Manifest{}, fmt.Errorf("%w: empty bucket", ErrBadManifest)
	}
	if m.ChunkSize <= 0 {
		return Manifest{}, fmt.Errorf("%w: chunk size 0", ErrBadManifest)
	}
	if want := (m.Size + m.ChunkSize - 1) / m.ChunkSize; uint64(want) != count {
		return Manifest{}, fmt.Errorf("%w: %d chunks for size %d and chunk size %d (want %d)",
			ErrBadManifest, count, m.Size, m.ChunkSize, want)
	}
	// Each CID takes at least 2 bytes: refuse counts the input cannot hold
	// before allocating.
	if count > uint64(len(r.b))/2 {
		return Manifest{}, fmt.Errorf("%w: truncated chunk list", ErrBadManifest)
	}
	wantMh := uint64(mh.SHA2_256)
	if h == content.BLAKE3 {
		wantMh = mh.BLAKE3
	}
	m.Chunks = make([]cid.Cid, count)
	for i := range m.Chunks {
		cb := r.bytes("cid", maxCIDLen)
		if r.err != nil {
			return Manifest{}, r.err
		}
		c, err := cid.Cast(cb)
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: chunk %d: %w", ErrBadManifest, i, err)
		}
		p := c.Prefix()
		if p.Version != 1 || p.Codec != cid.Raw || p.MhType != wantMh || p.MhLength != 32 {
			return Manifest{}, fmt.Errorf("%w: chunk %d: unexpected cid %s", ErrBadManifest, i, c)
		}
		m.Chunks[i] = c
	}
	if ver == manifestV2 {
		if len(r.b) < 1 {
			return Manifest{}, fmt.Errorf("%w: no checksum algorithm", ErrBadManifest)
		}
		m.SumAlg, r.b = r.b[0], r.b[1:]
		if m.SumAlg < SumCRC64NVME || m.SumAlg > SumCRC32 {
			return Manifest{}, fmt.Errorf("%w: checksum algorithm %d", ErrBadManifest, m.SumAlg)
		}
		if uint64(len(r.b)) < 8*count {
			return Manifest{}, fmt.Errorf("%w: truncated checksums", ErrBadManifest)
		}
		m.Sums = make([]uint64, count)
		for i := range m.Sums {
			m.Sums[i] = binary.BigEndian.Uint64(r.b[8*i:])
			if m.SumAlg != SumCRC64NVME && m.Sums[i] > 0xffffffff {
				return Manifest{}, fmt.Errorf("%w: chunk %d: 32-bit checksum out of range", ErrBadManifest, i)
			}
		}
		r.b = r.b[8*count:]
	}
	if len(r.b) != 0 {
		return Manifest{}, fmt.Errorf("%w: %d trailing bytes", ErrBadManifest, len(r.b))
	}
	return m, nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}
