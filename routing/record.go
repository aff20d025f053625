package routing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	record "github.com/libp2p/go-libp2p-record"

	"github.com/shoal-cache/shoal/internal/s3name"
)

// ManifestNamespace is the DHT record namespace of manifest records.
const ManifestNamespace = "shoal-obj"

// Bounds on manifest record fields. They follow S3's own limits so any valid
// object fits, and keep a record well under kad-dht's message size limit.
const (
	maxBucketLen   = s3name.MaxBucketLen
	maxObjectKey   = s3name.MaxKeyLen
	maxETagLen     = s3name.MaxETagLen
	maxHashNameLen = 32  // "sha2-256", "blake3"
	maxCIDLen      = 128 // CIDv1 + multihash of a 256-bit digest is ~36 bytes
	// MaxManifestRecordSize bounds an encoded record.
	MaxManifestRecordSize = 1 + 5*binaryMaxUvarint + maxBucketLen + maxObjectKey + maxETagLen + maxHashNameLen + maxCIDLen + 8
	binaryMaxUvarint      = binary.MaxVarintLen64

	recordVersion byte = 1
)

// ErrBadRecord: a manifest record failed to decode or validate.
var ErrBadRecord = errors.New("routing: bad manifest record")

// ManifestRecord maps one S3 object version (bucket, key, ETag) to the CID
// of its chunk manifest. It is published in the DHT under ManifestRecordKey.
type ManifestRecord struct {
	Bucket    string
	Key       string
	ETag      string
	Size      int64     // object size in bytes
	ChunkSize int64     // chunk size the manifest was cut with
	Hash      string    // chunk hash function name (content.Hash)
	Manifest  cid.Cid   // CID of the manifest
	Timestamp time.Time // when the record was made; newest wins
}

var recordKeyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ManifestRecordKey returns the DHT key of an object version:
// "/shoal-obj/<base32 of sha256(bucket \0 key \0 etag)>".
func ManifestRecordKey(bucket, key, etag string) string {
	h := sha256.New()
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(etag))
	return "/" + ManifestNamespace + "/" + strings.ToLower(recordKeyEncoding.EncodeToString(h.Sum(nil)))
}

// DHTKey returns the record's DHT key.
func (r ManifestRecord) DHTKey() string { return ManifestRecordKey(r.Bucket, r.Key, r.ETag) }

// Validate checks field bounds.
func (r ManifestRecord) Validate() error {
	switch {
	case r.Bucket == "" || len(r.Bucket) > maxBucketLen:
		return fmt.Errorf("%w: bucket length %d", ErrBadRecord, len(r.Bucket))
	case r.Key == "" || len(r.Key) > maxObjectKey:
		return fmt.Errorf("%w: key length %d", ErrBadRecord, len(r.Key))
	case len(r.ETag) > maxETagLen:
		return fmt.Errorf("%w: etag length %d", ErrBadRecord, len(r.ETag))
	case r.Hash == "" || len(r.Hash) > maxHashNameLen:
		return fmt.Errorf("%w: hash name length %d", ErrBadRecord, len(r.Hash))
	case r.Size < 0 || r.ChunkSize <= 0:
		return fmt.Errorf("%w: size %d chunk size %d", ErrBadRecord, r.Size, r.ChunkSize)
	case !r.Manifest.Defined() || r.Manifest.ByteLen() > maxCIDLen:
		return fmt.Errorf("%w: manifest cid", ErrBadRecord)
	}
	return nil
}

// MarshalBinary encodes r compactly: a version byte, length-prefixed
// strings, uvarints, the CID bytes and the timestamp in Unix nanoseconds.
func (r ManifestRecord) MarshalBinary() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	c := r.Manifest.Bytes()
	b := make([]byte, 0, 64+len(r.Bucket)+len(r.Key)+len(r.ETag)+len(c))
	b = append(b, recordVersion)
	b = appendString(b, r.Bucket)
	b = appendString(b, r.Key)
	b = appendString(b, r.ETag)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(r.ChunkSize))
	b = appendString(b, r.Hash)
	b = appendString(b, string(c))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixNano()))
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeManifestRecord decodes and validates an encoded record. Any
// malformed, oversized or trailing input is an ErrBadRecord.
func DecodeManifestRecord(data []byte) (ManifestRecord, error) {
	var r ManifestRecord
	if len(data) > MaxManifestRecordSize {
		return r, fmt.Errorf("%w: %d bytes", ErrBadRecord, len(data))
	}
	d := decoder{b: data}
	if v := d.byte(); v != recordVersion {
		return r, fmt.Errorf("%w: version %d", ErrBadRecord, v)
	}
	r.Bucket = d.string(maxBucketLen)
	r.Key = d.string(maxObjectKey)
	r.ETag = d.string(maxETagLen)
	r.Size = d.int64()
	r.ChunkSize = d.int64()
	r.Hash = d.string(maxHashNameLen)
	cb := d.string(maxCIDLen)
	ts := d.uint64()
	if d.err != nil {
		return ManifestRecord{}, d.err
	}
	if len(d.b) != 0 {
		return ManifestRecord{}, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(d.b))
	}
	c, err := cid.Cast([]byte(cb))
	if err != nil {
		return ManifestRecord{}, fmt.Errorf("%w: manifest cid: %v", ErrBadRecord, err)
	}
	r.Manifest = c
	r.Timestamp = time.Unix(0, int64(ts)).UTC()
	if err := r.Validate(); err != nil {
		return ManifestRecord{}, err
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or malformed %s", ErrBadRecord, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("header")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int64() int64 {
	v := d.uvarint("integer")
	if v > 1<<62 {
		d.fail("integer")
		return 0
	}
	return int64(v)
}

func (d *decoder) string(max int) string {
	n := d.uvarint("length")
	if d.err != nil {
		return ""
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("timestamp")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// ManifestValidator is the DHT record validator of the "shoal-obj"
// namespace: a value must decode, and its (bucket, key, etag) must hash to
// the key it is stored under, so nobody can plant a record for another
// object. Among valid values, the newest timestamp wins.
type ManifestValidator struct{}

var _ record.Validator = ManifestValidator{}

// Validate implements record.Validator.
func (ManifestValidator) Validate(key string, value []byte) error {
	r, err := DecodeManifestRecord(value)
	if err != nil {
		return err
	}
	if r.DHTKey() != key {
		return fmt.Errorf("%w: record for %s/%s stored under another key", ErrBadRecord, r.Bucket, r.Key)
	}
	return nil
}

// Select implements record.Validator: the index of the newest valid value.
func (v ManifestValidator) Select(key string, values [][]byte) (int, error) {
	best := -1
	var bestRec ManifestRecord
	var bestRaw []byte
	for i, val := range values {
		if v.Validate(key, val) != nil {
			continue
		}
		r, _ := DecodeManifestRecord(val)
		// Newest wins; on equal timestamps the smaller encoding wins so
		// every node picks the same value.
		if best < 0 || r.Timestamp.After(bestRec.Timestamp) ||
			(r.Timestamp.Equal(bestRec.Timestamp) && bytes.Compare(val, bestRaw) < 0) {
			best, bestRec, bestRaw = i, r, val
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no valid value among %d", ErrBadRecord, len(values))
	}
	return best, nil
}
