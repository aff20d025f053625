package routing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

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
	maxPeerIDLen   = 64  // an Ed25519 peer ID is 38 bytes
	maxSigLen      = 128 // an Ed25519 signature is 64 bytes
	// MaxManifestRecordSize bounds an encoded record.
	MaxManifestRecordSize = 1 + 5*binaryMaxUvarint + maxBucketLen + maxObjectKey + maxETagLen + maxHashNameLen +
		maxCIDLen + 8 + 2*binaryMaxUvarint + maxPeerIDLen + maxSigLen
	binaryMaxUvarint = binary.MaxVarintLen64

	// recordVersion 2: signed by its publisher. Version 1 records (unsigned)
	// are refused.
	recordVersion byte = 2

	// MaxClockSkew bounds how far in the future a record's timestamp may
	// lie by the validating node's clock: nodes' clocks agree to well under
	// a minute with NTP, and a record dated later than that is a claim to
	// outrank records that do not exist yet.
	MaxClockSkew = 5 * time.Minute
)

// recordSigPrefix separates a manifest record signature from any other use
// of a node's key.
const recordSigPrefix = "shoal-manifest-record/2\x00"

// ErrBadRecord: a manifest record failed to decode or validate.
var ErrBadRecord = errors.New("routing: bad manifest record")

// ManifestRecord maps one S3 object version (bucket, key, ETag), cut with
// a chunk size and hash, to the CID of its chunk manifest. It is published
// in the DHT under ManifestRecordKey, signed by its publisher: a record
// says who claims what, so a claim proven false (by the origin) costs its
// publisher, and nobody can make a claim in another node's name.
type ManifestRecord struct {
	Bucket    string
	Key       string
	ETag      string
	Size      int64     // object size in bytes
	ChunkSize int64     // chunk size the manifest was cut with
	Hash      string    // chunk hash function name (content.Hash)
	Manifest  cid.Cid   // CID of the manifest
	Timestamp time.Time // when the record was made
	// Publisher is the node that made the claim; Signature is its
	// signature over the rest (set by Sign).
	Publisher peer.ID
	Signature []byte
}

var recordKeyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ManifestRecordKey returns the DHT key of an object version cut with
// chunkSize and hash: "/shoal-obj/<base32 of sha256(bucket \0 key \0 etag
// \0 chunkSize \0 hash)>". Nodes that cut a version alike compute the same
// manifest, so two different records under one key are a conflict: one of
// them is false.
func ManifestRecordKey(bucket, key, etag string, chunkSize int64, hash string) string {
	h := sha256.New()
	for _, s := range []string{bucket, key, etag, strconv.FormatInt(chunkSize, 10), hash} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "/" + ManifestNamespace + "/" + strings.ToLower(recordKeyEncoding.EncodeToString(h.Sum(nil)))
}

// DHTKey returns the record's DHT key.
func (r ManifestRecord) DHTKey() string {
	return ManifestRecordKey(r.Bucket, r.Key, r.ETag, r.ChunkSize, r.Hash)
}

// SameClaim reports whether two records say the same of the same version
// (whoever published them, whenever).
func (r ManifestRecord) SameClaim(o ManifestRecord) bool {
	return r.Bucket == o.Bucket && r.Key == o.Key && r.ETag == o.ETag && r.Size == o.Size &&
		r.ChunkSize == o.ChunkSize && r.Hash == o.Hash && r.Manifest.Equals(o.Manifest)
}

// Validate checks field bounds (not the signature: see Verify).
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
	case len(r.Publisher) > maxPeerIDLen || len(r.Signature) > maxSigLen:
		return fmt.Errorf("%w: publisher or signature too long", ErrBadRecord)
	}
	return nil
}

// signed is the encoding without the signature: what is signed.
func (r ManifestRecord) signed() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	c := r.Manifest.Bytes()
	b := make([]byte, 0, 96+len(r.Bucket)+len(r.Key)+len(r.ETag)+len(c)+len(r.Publisher))
	b = append(b, recordVersion)
	b = appendString(b, r.Bucket)
	b = appendString(b, r.Key)
	b = appendString(b, r.ETag)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(r.ChunkSize))
	b = appendString(b, r.Hash)
	b = appendString(b, string(c))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixNano()))
	b = appendString(b, string(r.Publisher))
	return b, nil
}

// Sign sets Publisher to the key's peer ID and Signature to its signature.
func (r *ManifestRecord) Sign(key crypto.PrivKey) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("routing: sign record: %w", err)
	}
	r.Publisher = id
	msg, err := r.signed()
	if err != nil {
		return err
	}
	sig, err := key.Sign(append([]byte(recordSigPrefix), msg...))
	if err != nil {
		return fmt.Errorf("routing: sign record: %w", err)
	}
	r.Signature = sig
	return nil
}

// Verify checks the record's signature against its publisher's key (the
// peer ID embeds an Ed25519 public key).
func (r ManifestRecord) Verify() error {
	if r.Publisher == "" || len(r.Signature) == 0 {
		return fmt.Errorf("%w: unsigned", ErrBadRecord)
	}
	pub, err := r.Publisher.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: publisher %s: %v", ErrBadRecord, r.Publisher, err)
	}
	msg, err := r.signed()
	if err != nil {
		return err
	}
	ok, err := pub.Verify(append([]byte(recordSigPrefix), msg...), r.Signature)
	if err != nil || !ok {
		return fmt.Errorf("%w: bad signature by %s", ErrBadRecord, r.Publisher)
	}
	return nil
}

// MarshalBinary encodes r: the signed part (a version byte,
// length-prefixed strings, uvarints, the CID bytes, the timestamp in Unix
// nanoseconds, the publisher), then the length-prefixed signature.
func (r ManifestRecord) MarshalBinary() ([]byte, error) {
	b, err := r.signed()
	if err != nil {
		return nil, err
	}
	return appendString(b, string(r.Signature)), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeManifestRecord decodes and validates an encoded record (not its
// signature: see Verify). Any malformed, oversized or trailing input is an
// ErrBadRecord.
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
	pub := d.string(maxPeerIDLen)
	sig := d.string(maxSigLen)
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
	r.Publisher = peer.ID(pub)
	r.Signature = []byte(sig)
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
// namespace. A value must decode, hash to the key it is stored under (nobody
// can plant a record for another object), carry a valid signature of its
// publisher, and be dated no later than MaxClockSkew from now and no earlier
// than MaxAge ago.
//
// Select never lets "newest wins" decide: among valid records the earliest
// publication wins, whatever the claims (a later record cannot displace a
// claim by dating itself ahead, and a record dated back loses that much of
// its lifetime); a record dated more than MaxClockSkew ahead is invalid. When
// the values hold different claims (a conflict: one of them is false, see
// ManifestRecordKey) the conflict is noted (Conflicts) for the reader, who
// settles it against the origin — the DHT cannot tell which is true.
type ManifestValidator struct {
	// MaxAge bounds a record's age (0: no bound).
	MaxAge time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	conflicts *conflictLog
}

// NewManifestValidator returns a validator that notes conflicts.
func NewManifestValidator(maxAge time.Duration) *ManifestValidator {
	return &ManifestValidator{MaxAge: maxAge, conflicts: newConflictLog()}
}

var _ record.Validator = (*ManifestValidator)(nil)

func (v *ManifestValidator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Validate implements record.Validator.
func (v *ManifestValidator) Validate(key string, value []byte) error {
	_, err := v.decode(key, value)
	return err
}

func (v *ManifestValidator) decode(key string, value []byte) (ManifestRecord, error) {
	r, err := DecodeManifestRecord(value)
	if err != nil {
		return r, err
	}
	if r.DHTKey() != key {
		return r, fmt.Errorf("%w: record for %s/%s stored under another key", ErrBadRecord, r.Bucket, r.Key)
	}
	if err := r.Verify(); err != nil {
		return r, err
	}
	now := v.now()
	if r.Timestamp.After(now.Add(MaxClockSkew)) {
		return r, fmt.Errorf("%w: dated %s, more than %v ahead", ErrBadRecord, r.Timestamp.Format(time.RFC3339), MaxClockSkew)
	}
	if v.MaxAge > 0 && r.Timestamp.Before(now.Add(-v.MaxAge)) {
		return r, fmt.Errorf("%w: dated %s, older than %v", ErrBadRecord, r.Timestamp.Format(time.RFC3339), v.MaxAge)
	}
	return r, nil
}

// Select implements record.Validator (see the type's doc). It does not
// depend on the order of values (kad-dht passes the held value first when
// searching, last when storing).
func (v *ManifestValidator) Select(key string, values [][]byte) (int, error) {
	best := -1
	var bestRec ManifestRecord
	var bestRaw []byte
	for i, val := range values {
		r, err := v.decode(key, val)
		if err != nil {
			continue
		}
		if best >= 0 && !r.SameClaim(bestRec) && v.conflicts != nil {
			v.conflicts.add(key, bestRec, r)
		}
		if best < 0 || r.Timestamp.Before(bestRec.Timestamp) ||
			(r.Timestamp.Equal(bestRec.Timestamp) && bytes.Compare(val, bestRaw) < 0) {
			best, bestRec, bestRaw = i, r, val
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no valid value among %d", ErrBadRecord, len(values))
	}
	return best, nil
}

// Conflicts returns the claims seen for key other than the one a lookup
// settled on (nil if none), as noted by recent Select calls.
func (v *ManifestValidator) Conflicts(key string) []ManifestRecord {
	if v.conflicts == nil {
		return nil
	}
	return v.conflicts.get(key)
}
