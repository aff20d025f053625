package gateway

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeBackend is an in-memory Backend for this package's tests.
type fakeBackend struct {
	mu      sync.Mutex // guards all fields below
	buckets map[string]map[string]*fakeObject
	uploads map[string]*fakeUpload
	nextID  int
	// failAfter makes GetObject of a key fail after that many bytes.
	failAfter map[string]int64
	// lastPut records the size the gateway passed to the last PutObject.
	lastPutSize int64
	putCalls    int
}

type fakeObject struct {
	info ObjectInfo
	data []byte
}

type fakeUpload struct {
	bucket, key, contentType string
	meta                     map[string]string
	parts                    map[int32][]byte
}

func newFakeBackend(buckets ...string) *fakeBackend {
	f := &fakeBackend{buckets: map[string]map[string]*fakeObject{}, uploads: map[string]*fakeUpload{}, failAfter: map[string]int64{}}
	for _, b := range buckets {
		f.buckets[b] = map[string]*fakeObject{}
	}
	return f
}

func md5ETag(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

// put stores an object directly (test setup).
func (f *fakeBackend) put(bucket, key string, data []byte, mod func(*ObjectInfo)) ObjectInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := ObjectInfo{Bucket: bucket, Key: key, ETag: md5ETag(data), Size: int64(len(data)),
		ContentType: "application/octet-stream", LastModified: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	if mod != nil {
		mod(&info)
	}
	f.buckets[bucket][key] = &fakeObject{info: info, data: data}
	return info
}

func (f *fakeBackend) object(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.buckets[bucket][key]
	if !ok {
		return nil, false
	}
	return o.data, true
}

func (f *fakeBackend) HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("fake head %s: %w", bucket, ErrNoSuchBucket)
	}
	o, ok := b[key]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("fake head %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	return o.info, nil
}

type failingReader struct {
	r io.Reader
}

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("fake: disk on fire")
	}
	return n, err
}

func (f *fakeBackend) GetObject(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.buckets[info.Bucket][info.Key]
	if !ok || o.info.ETag != info.ETag {
		return nil, ErrPreconditionFailed
	}
	if off < 0 || length < 0 || off+length > int64(len(o.data)) {
		return nil, fmt.Errorf("fake get: bad range %d+%d: %w", off, length, ErrInvalidArgument)
	}
	data := o.data[off : off+length]
	if n, ok := f.failAfter[info.Key]; ok {
		return io.NopCloser(failingReader{bytes.NewReader(data[:min(n, int64(len(data)))])}), nil
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f *fakeBackend) ListObjectsV2(ctx context.Context, p ListParams) (ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[p.Bucket]
	if !ok {
		return ListResult{}, ErrNoSuchBucket
	}
	after := p.StartAfter
	if p.ContinuationToken != "" {
		raw, err := hex.DecodeString(p.ContinuationToken)
		if err != nil {
			return ListResult{}, fmt.Errorf("fake list: token: %w", ErrInvalidArgument)
		}
		after = string(raw)
	}
	keys := slices.Sorted(maps.Keys(b))
	var res ListResult
	lastCP := ""
	for _, k := range keys {
		if !strings.HasPrefix(k, p.Prefix) || k <= after {
			continue
		}
		if p.Delimiter != "" {
			if i := strings.Index(k[len(p.Prefix):], p.Delimiter); i >= 0 {
				cp := k[:len(p.Prefix)+i+len(p.Delimiter)]
				if cp == lastCP || cp <= after {
					continue
				}
				if len(res.Entries)+len(res.CommonPrefixes) == p.MaxKeys {
					res.IsTruncated = true
					break
				}
				lastCP = cp
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				res.NextContinuationToken = hex.EncodeToString([]byte(cp + "\U0010FFFF"))
				continue
			}
		}
		if len(res.Entries)+len(res.CommonPrefixes) == p.MaxKeys {
			res.IsTruncated = true
			break
		}
		o := b[k]
		res.Entries = append(res.Entries, ListEntry{Key: k, Size: o.info.Size, ETag: o.info.ETag, LastModified: o.info.LastModified})
		res.NextContinuationToken = hex.EncodeToString([]byte(k))
	}
	if !res.IsTruncated {
		res.NextContinuationToken = ""
	}
	return res, nil
}

func (f *fakeBackend) ListBuckets(ctx context.Context) ([]Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Bucket
	for _, n := range slices.Sorted(maps.Keys(f.buckets)) {
		out = append(out, Bucket{Name: n, CreationDate: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	return out, nil
}

func (f *fakeBackend) BucketLocation(ctx context.Context, bucket string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[bucket]; !ok {
		return "", ErrNoSuchBucket
	}
	return "", nil
}

// PutObject reads the whole body first and commits only on a clean EOF,
// like a real origin upload would.
func (f *fakeBackend) PutObject(ctx context.Context, p PutParams) (ObjectInfo, error) {
	f.mu.Lock()
	f.putCalls++
	f.lastPutSize = p.Size
	_, ok := f.buckets[p.Bucket]
	f.mu.Unlock()
	if !ok {
		return ObjectInfo{}, ErrNoSuchBucket
	}
	data, err := io.ReadAll(p.Body)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("fake put: %w", err)
	}
	if p.Size >= 0 && int64(len(data)) != p.Size {
		return ObjectInfo{}, fmt.Errorf("fake put: got %d bytes, want %d: %w", len(data), p.Size, ErrInvalidArgument)
	}
	return f.put(p.Bucket, p.Key, data, func(i *ObjectInfo) {
		if p.ContentType != "" {
			i.ContentType = p.ContentType
		}
		i.Metadata = p.Metadata
		i.LastModified = time.Now().UTC()
	}), nil
}

func (f *fakeBackend) DeleteObject(ctx context.Context, bucket, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket]
	if !ok {
		return ErrNoSuchBucket
	}
	if _, ok := b[key]; !ok {
		return ErrNoSuchKey
	}
	delete(b, key)
	return nil
}

func (f *fakeBackend) CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[bucket]; !ok {
		return "", ErrNoSuchBucket
	}
	f.nextID++
	id := fmt.Sprintf("upload-%d", f.nextID)
	f.uploads[id] = &fakeUpload{bucket: bucket, key: key, contentType: contentType, meta: meta, parts: map[int32][]byte{}}
	return id, nil
}

func (f *fakeBackend) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("fake part: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.uploads[uploadID]
	if !ok || u.bucket != bucket || u.key != key {
		return "", ErrNoSuchUpload
	}
	u.parts[partNumber] = data
	return md5ETag(data), nil
}

func (f *fakeBackend) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectInfo, error) {
	f.mu.Lock()
	u, ok := f.uploads[uploadID]
	if !ok || u.bucket != bucket || u.key != key {
		f.mu.Unlock()
		return ObjectInfo{}, ErrNoSuchUpload
	}
	var all []byte
	for _, p := range parts {
		d, ok := u.parts[p.PartNumber]
		if !ok || md5ETag(d) != p.ETag {
			f.mu.Unlock()
			return ObjectInfo{}, fmt.Errorf("fake complete: part %d: %w", p.PartNumber, ErrInvalidArgument)
		}
		all = append(all, d...)
	}
	delete(f.uploads, uploadID)
	f.mu.Unlock()
	return f.put(bucket, key, all, func(i *ObjectInfo) {
		i.ETag = fmt.Sprintf(`"%s-%d"`, strings.Trim(md5ETag(all), `"`), len(parts))
		if u.contentType != "" {
			i.ContentType = u.contentType
		}
		i.Metadata = u.meta
	}), nil
}

func (f *fakeBackend) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.uploads[uploadID]; !ok {
		return ErrNoSuchUpload
	}
	delete(f.uploads, uploadID)
	return nil
}

var _ Backend = (*fakeBackend)(nil)
