package origin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// defaultMaxKeys is S3's page size and cap.
const defaultMaxKeys = 1000

// tokenPrefix versions the opaque continuation token of Dir listings.
const tokenPrefix = "d1:"

func encodeToken(marker string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + marker))
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), tokenPrefix) {
		return "", fmt.Errorf("origin: dir ListObjects: bad continuation token: %w", ErrInvalidArgument)
	}
	return string(b[len(tokenPrefix):]), nil
}

// ListObjects returns one page of keys in byte order, like ListObjectsV2.
// Each call walks the part of the bucket's tree under the prefix's
// directory, so Dir suits development and tests more than buckets with
// millions of keys.
func (d *Dir) ListObjects(ctx context.Context, p ListParams) (ListResult, error) {
	if err := d.checkBucket("ListObjects", p.Bucket); err != nil {
		return ListResult{}, err
	}
	maxKeys := p.MaxKeys
	switch {
	case maxKeys < 0:
		return ListResult{}, fmt.Errorf("origin: dir ListObjects %s: MaxKeys %d: %w", p.Bucket, maxKeys, ErrInvalidArgument)
	case maxKeys == 0 || maxKeys > defaultMaxKeys:
		maxKeys = defaultMaxKeys
	}
	marker := p.StartAfter
	markerIsPrefix := false
	if p.ContinuationToken != "" {
		m, err := decodeToken(p.ContinuationToken)
		if err != nil {
			return ListResult{}, err
		}
		marker = m
		markerIsPrefix = p.Delimiter != "" && strings.HasSuffix(m, p.Delimiter)
	}

	keys, err := d.walkKeys(ctx, p.Bucket, p.Prefix)
	if err != nil {
		return ListResult{}, err
	}
	slices.Sort(keys)

	var res ListResult
	var last string // last item added: key or common prefix
	count := 0
	for _, k := range keys {
		if k <= marker || markerIsPrefix && strings.HasPrefix(k, marker) {
			continue
		}
		item, isPrefix := k, false
		if p.Delimiter != "" {
			if i := strings.Index(k[len(p.Prefix):], p.Delimiter); i >= 0 {
				item, isPrefix = k[:len(p.Prefix)+i+len(p.Delimiter)], true
			}
		}
		if isPrefix && count > 0 && item == last {
			continue // already listed this common prefix
		}
		if count == maxKeys {
			res.IsTruncated = true
			res.NextContinuationToken = encodeToken(last)
			break
		}
		count++
		last = item
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, item)
			continue
		}
		f, st, err := d.open("ListObjects", p.Bucket, k)
		if err != nil {
			count-- // removed (or being rewritten) since the walk
			continue
		}
		f.Close()
		info := d.info(p.Bucket, k, st)
		res.Entries = append(res.Entries, ListEntry{Key: k, Size: info.Size, ETag: info.ETag, LastModified: info.LastModified})
	}
	return res, nil
}

// walkKeys returns the keys of regular files in bucket that start with
// prefix, unsorted. Reserved top-level folders are skipped.
func (d *Dir) walkKeys(ctx context.Context, bucket, prefix string) ([]string, error) {
	start := bucket
	if i := strings.LastIndex(prefix, "/"); i > 0 {
		dirPart := prefix[:i]
		if validKey(dirPart) != nil {
			return nil, nil // no key can live under such a prefix
		}
		start = path.Join(bucket, dirPart)
	}
	var keys []string
	fsys := d.root.FS()
	err := fs.WalkDir(fsys, start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || p != start && errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if p == start {
			return nil
		}
		key := p[len(bucket)+1:]
		if e.IsDir() {
			if path.Dir(p) == bucket && strings.HasPrefix(e.Name(), reservedPrefix) {
				return fs.SkipDir
			}
			// Prune directories that cannot hold a key with the prefix.
			if d := key + "/"; !strings.HasPrefix(d, prefix) && !strings.HasPrefix(prefix, d) {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("origin: dir ListObjects %s: %w", bucket, err)
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			return nil, nil
		}
		return nil, fmt.Errorf("origin: dir ListObjects %s: %w", bucket, err)
	}
	return keys, nil
}
