package fusefs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoal-cache/shoal/gateway"
)

// fakeBackend is an in-memory Backend for this package's unit tests: it
// records the ranges asked for and can fail or hang on demand.
type fakeBackend struct {
	mu      sync.Mutex
	objs    map[string]map[string]fakeObj // bucket -> key -> object
	ranges  []string                      // "key off+len" of every GetObject
	lists   int
	failAll error         // returned by every call when set
	delay   time.Duration // every call waits this long first
	// failList, when set, is returned by every failListEvery-th listing
	// call (counting from 1), as an interrupted request sees it.
	failList      error
	failListEvery int
	hang          chan struct{} // calls block until it is closed (or their ctx ends)
}

type fakeObj struct {
	data []byte
	etag string
	mod  time.Time
}

func newFake() *fakeBackend { return &fakeBackend{objs: map[string]map[string]fakeObj{}} }

func (f *fakeBackend) put(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs[bucket] == nil {
		f.objs[bucket] = map[string]fakeObj{}
	}
	f.objs[bucket][key] = fakeObj{data: data, etag: fmt.Sprintf(`"%x-%d"`, len(data), time.Now().UnixNano()),
		mod: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (f *fakeBackend) gate(ctx context.Context) error {
	f.mu.Lock()
	h, e, d := f.hang, f.failAll, f.delay
	f.mu.Unlock()
	time.Sleep(d)
	if h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return e
}

func (f *fakeBackend) HeadObject(ctx context.Context, bucket, key string) (gateway.ObjectInfo, error) {
	if err := f.gate(ctx); err != nil {
		return gateway.ObjectInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objs[bucket]
	if !ok {
		return gateway.ObjectInfo{}, gateway.ErrNoSuchBucket
	}
	o, ok := b[key]
	if !ok {
		return gateway.ObjectInfo{}, fmt.Errorf("%s/%s: %w", bucket, key, gateway.ErrNoSuchKey)
	}
	return gateway.ObjectInfo{Bucket: bucket, Key: key, ETag: o.etag, Size: int64(len(o.data)), LastModified: o.mod}, nil
}

func (f *fakeBackend) GetObject(ctx context.Context, info gateway.ObjectInfo, off, length int64) (io.ReadCloser, error) {
	if err := f.gate(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[info.Bucket][info.Key]
	if !ok || o.etag != info.ETag {
		return nil, gateway.ErrPreconditionFailed
	}
	f.ranges = append(f.ranges, fmt.Sprintf("%s %d+%d", info.Key, off, length))
	return io.NopCloser(bytes.NewReader(o.data[off : off+length])), nil
}

func (f *fakeBackend) ListObjectsV2(ctx context.Context, p gateway.ListParams) (gateway.ListResult, error) {
	if err := f.gate(ctx); err != nil {
		return gateway.ListResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.failList != nil && f.lists%f.failListEvery == 0 {
		return gateway.ListResult{}, f.failList
	}
	b, ok := f.objs[p.Bucket]
	if !ok {
		return gateway.ListResult{}, gateway.ErrNoSuchBucket
	}
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var res gateway.ListResult
	seen := map[string]bool{}
	n := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, p.Prefix) || k <= p.ContinuationToken {
			continue
		}
		if n == p.MaxKeys {
			res.IsTruncated = true
			break
		}
		rest := k[len(p.Prefix):]
		if i := strings.Index(rest, p.Delimiter); p.Delimiter != "" && i >= 0 {
			cp := p.Prefix + rest[:i+1]
			if seen[cp] {
				continue
			}
			seen[cp] = true
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
		} else {
			o := b[k]
			res.Entries = append(res.Entries, gateway.ListEntry{Key: k, Size: int64(len(o.data)), ETag: o.etag, LastModified: o.mod})
		}
		n++
		// The token is the last key or prefix returned: a prefix's
		// keys all sort before its successor.
		res.NextContinuationToken = k
		if len(res.CommonPrefixes) > 0 && strings.HasPrefix(k, res.CommonPrefixes[len(res.CommonPrefixes)-1]) {
			res.NextContinuationToken = res.CommonPrefixes[len(res.CommonPrefixes)-1] + "\xff"
		}
	}
	if !res.IsTruncated {
		res.NextContinuationToken = ""
	}
	return res, nil
}

func (f *fakeBackend) ListBuckets(ctx context.Context) ([]gateway.Bucket, error) {
	if err := f.gate(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []gateway.Bucket
	for b := range f.objs {
		out = append(out, gateway.Bucket{Name: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeBackend) takeRanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ranges
	f.ranges = nil
	return r
}
