package node

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/internal/integrity"
	"github.com/shoal-cache/shoal/origin"
)

// memStore is an in-memory BlockStore that verifies on Put and Get (like the
// real stores: a corrupt block is dropped and reported as not found).
type memStore struct {
	mu       sync.Mutex
	blocks   map[cid.Cid][]byte
	pins     map[cid.Cid]bool
	removals *blockstore.Removals
}

func newMemStore() *memStore {
	return &memStore{blocks: map[cid.Cid][]byte{}, pins: map[cid.Cid]bool{}, removals: blockstore.NewRemovals()}
}

var _ BlockStore = (*memStore)(nil)

func (s *memStore) Borrow(ctx context.Context, c cid.Cid) ([]byte, func(), error) {
	b, err := s.Get(ctx, c)
	return b, func() {}, err
}

func (s *memStore) PutBlock(ctx context.Context, b content.Block) error {
	return s.Put(ctx, b.CID(), b.Data())
}

func (s *memStore) AllKeys(ctx context.Context, fn func(cid.Cid) bool) error {
	s.mu.Lock()
	keys := make([]cid.Cid, 0, len(s.blocks))
	for c := range s.blocks {
		keys = append(keys, c)
	}
	s.mu.Unlock()
	for _, c := range keys {
		if !fn(c) {
			break
		}
	}
	return ctx.Err()
}

func (s *memStore) Removals() *blockstore.Removals { return s.removals }

func (s *memStore) TierStats() (memory, disk blockstore.Stats) { return s.Stats(), blockstore.Stats{} }

// evict removes c and reports it on the removals feed, as a store's
// eviction does.
func (s *memStore) evict(c cid.Cid) {
	s.remove(c)
	s.removals.Add(c)
}

func (s *memStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blocks[c]
	if !ok {
		return nil, blockstore.ErrNotFound
	}
	if content.Verify(c, b) != nil {
		delete(s.blocks, c)
		return nil, blockstore.ErrNotFound
	}
	return b, nil
}

func (s *memStore) Has(_ context.Context, c cid.Cid) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blocks[c]
	return ok, nil
}

func (s *memStore) Put(_ context.Context, c cid.Cid, data []byte) error {
	if err := content.Verify(c, data); err != nil {
		return blockstore.ErrHashMismatch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks[c] = bytes.Clone(data)
	return nil
}

func (s *memStore) Delete(_ context.Context, c cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blocks, c)
	return nil
}

func (s *memStore) Pin(_ context.Context, c cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins[c] = true
	return nil
}

func (s *memStore) Unpin(_ context.Context, c cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pins, c)
	return nil
}

func (s *memStore) Stats() blockstore.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := blockstore.Stats{Blocks: int64(len(s.blocks)), Pinned: int64(len(s.pins))}
	for _, b := range s.blocks {
		st.Bytes += int64(len(b))
	}
	return st
}

func (s *memStore) pinned() map[cid.Cid]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.pins)
}

func (s *memStore) corrupt(c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := bytes.Clone(s.blocks[c])
	b[0] ^= 0xff
	s.blocks[c] = b
}

func (s *memStore) remove(c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blocks, c)
}

type fakeObject struct {
	data []byte
	etag string
	ct   string
	meta map[string]string
}

// fakeOrigin is an in-memory origin that counts calls. down makes every
// call fail with origin.ErrUnavailable; gate (if set) blocks GetRange until
// closed; failKey makes GetRange of that key fail.
type fakeOrigin struct {
	mu      sync.Mutex
	objects map[string]*fakeObject // bucket/key
	ranges  map[string]int         // "bucket/key@off" -> GetRange calls
	calls   map[string]int         // method -> calls
	down    bool
	gate    chan struct{}
	// headGate (if set) blocks HeadObject until closed.
	headGate chan struct{}
	failKey  string
	// stalls is how many GetRange responses of a key deliver stallAt
	// bytes and then nothing until closed.
	stalls  map[string]int
	stallAt int64
	// mute is how many GetRange requests of a key get no answer at all
	// until their context ends (a lost handshake).
	mute map[string]int
	// crc: HEAD reports a full-object CRC64NVME (as S3 does with checksum
	// mode on); md5: HEAD says the ETag is the object's MD5.
	crc, md5 bool
}

// stallingBody delivers its bytes, then blocks until closed (a TCP
// connection stuck in retransmission backoff).
type stallingBody struct {
	r      io.Reader
	closed chan struct{}
	once   sync.Once
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if n, err := b.r.Read(p); n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	<-b.closed
	return 0, errors.New("stalling body: read on closed body")
}

func (b *stallingBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func newFakeOrigin() *fakeOrigin {
	return &fakeOrigin{objects: map[string]*fakeObject{}, ranges: map[string]int{}, calls: map[string]int{}, stalls: map[string]int{}, mute: map[string]int{}}
}

func etagOf(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (o *fakeOrigin) set(bucket, key string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objects[bucket+"/"+key] = &fakeObject{data: bytes.Clone(data), etag: etagOf(data), ct: "application/octet-stream",
		meta: map[string]string{"owner": "test"}}
}

func (o *fakeOrigin) setDown(d bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = d
}

func (o *fakeOrigin) count(method string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[method]
}

func (o *fakeOrigin) rangeCalls(bucket, key string, off int64) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ranges[fmt.Sprintf("%s/%s@%d", bucket, key, off)]
}

func (o *fakeOrigin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, v := range o.calls {
		n += v
	}
	return n
}

func (o *fakeOrigin) enter(method string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls[method]++
	if o.down {
		return fmt.Errorf("%s: connection refused: %w", method, origin.ErrUnavailable)
	}
	return nil
}

func (o *fakeOrigin) get(bucket, key string) (*fakeObject, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if bucket != "b" && bucket != "c" {
		return nil, origin.ErrNoSuchBucket
	}
	ob, ok := o.objects[bucket+"/"+key]
	if !ok {
		return nil, origin.ErrNotFound
	}
	return ob, nil
}

var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func (o *fakeOrigin) HeadObject(ctx context.Context, bucket, key string) (origin.ObjectInfo, error) {
	if err := o.enter("HeadObject"); err != nil {
		return origin.ObjectInfo{}, err
	}
	o.mu.Lock()
	gate := o.headGate
	o.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return origin.ObjectInfo{}, ctx.Err()
		}
	}
	ob, err := o.get(bucket, key)
	if err != nil {
		return origin.ObjectInfo{}, err
	}
	info := origin.ObjectInfo{Bucket: bucket, Key: key, ETag: ob.etag, Size: int64(len(ob.data)),
		ContentType: ob.ct, LastModified: epoch, Metadata: maps.Clone(ob.meta), CacheControl: "max-age=60"}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.crc {
		info.Checksums = origin.Checksums{Type: origin.ChecksumFullObject,
			CRC64NVME: base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, integrity.ChecksumCRC64NVME(ob.data)))}
	}
	info.ETagIsMD5 = o.md5
	return info, nil
}

func (o *fakeOrigin) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	if err := o.enter("GetRange"); err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.ranges[fmt.Sprintf("%s/%s@%d", bucket, key, off)]++
	gate, fail := o.gate, o.failKey == key
	mute := o.mute[key] > 0
	if mute {
		o.mute[key]--
	}
	o.mu.Unlock()
	if mute {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail {
		return nil, fmt.Errorf("injected: %w", origin.ErrAccessDenied)
	}
	ob, err := o.get(bucket, key)
	if err != nil {
		return nil, err
	}
	if etag != "" && etag != ob.etag {
		return nil, origin.ErrPreconditionFailed
	}
	if off > int64(len(ob.data)) {
		return nil, origin.ErrInvalidRange
	}
	end := int64(len(ob.data))
	if n >= 0 {
		end = min(end, off+n)
	}
	o.mu.Lock()
	stall := o.stalls[key] > 0
	if stall {
		o.stalls[key]--
	}
	o.mu.Unlock()
	if stall {
		return &stallingBody{r: bytes.NewReader(ob.data[off:min(end, off+o.stallAt)]), closed: make(chan struct{})}, nil
	}
	return io.NopCloser(bytes.NewReader(ob.data[off:end])), nil
}

func (o *fakeOrigin) ListObjects(ctx context.Context, p origin.ListParams) (origin.ListResult, error) {
	if err := o.enter("ListObjects"); err != nil {
		return origin.ListResult{}, err
	}
	if p.Bucket != "b" && p.Bucket != "c" {
		return origin.ListResult{}, origin.ErrNoSuchBucket
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var keys []string
	for k := range o.objects {
		b, key, _ := strings.Cut(k, "/")
		if b == p.Bucket && strings.HasPrefix(key, p.Prefix) && key > p.ContinuationToken {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	var r origin.ListResult
	max := p.MaxKeys
	if max == 0 {
		max = 2 // small pages, to exercise continuation
	}
	for i, k := range keys {
		if i == max {
			r.IsTruncated = true
			r.NextContinuationToken = keys[i-1]
			break
		}
		ob := o.objects[p.Bucket+"/"+k]
		r.Entries = append(r.Entries, origin.ListEntry{Key: k, Size: int64(len(ob.data)), ETag: ob.etag, LastModified: epoch})
	}
	return r, nil
}

func (o *fakeOrigin) ListBuckets(ctx context.Context) ([]origin.Bucket, error) {
	if err := o.enter("ListBuckets"); err != nil {
		return nil, err
	}
	return []origin.Bucket{{Name: "b", CreationDate: epoch}, {Name: "c", CreationDate: epoch}}, nil
}

func (o *fakeOrigin) HeadBucket(ctx context.Context, bucket string) (string, error) {
	if err := o.enter("HeadBucket"); err != nil {
		return "", err
	}
	if bucket != "b" && bucket != "c" {
		return "", origin.ErrNoSuchBucket
	}
	return "", nil
}

func (o *fakeOrigin) PutObject(ctx context.Context, p origin.PutParams) (origin.ObjectInfo, error) {
	if err := o.enter("PutObject"); err != nil {
		return origin.ObjectInfo{}, err
	}
	data, err := io.ReadAll(p.Body)
	if err != nil {
		return origin.ObjectInfo{}, err
	}
	o.set(p.Bucket, p.Key, data)
	return origin.ObjectInfo{Bucket: p.Bucket, Key: p.Key, ETag: etagOf(data), Size: int64(len(data))}, nil
}

func (o *fakeOrigin) DeleteObject(ctx context.Context, bucket, key string) error {
	if err := o.enter("DeleteObject"); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.objects, bucket+"/"+key)
	return nil
}

func (o *fakeOrigin) CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	return "", origin.ErrInvalidArgument
}

func (o *fakeOrigin) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error) {
	return "", origin.ErrNoSuchUpload
}

func (o *fakeOrigin) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []origin.CompletedPart) (origin.ObjectInfo, error) {
	return origin.ObjectInfo{}, origin.ErrNoSuchUpload
}

func (o *fakeOrigin) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	return origin.ErrNoSuchUpload
}
