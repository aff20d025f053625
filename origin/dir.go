package origin

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"mime"
	"os"
	"path"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/shoal-cache/shoal/internal/s3name"
)

// Names reserved inside every bucket directory; keys may not start with
// them and listings never show them.
const (
	reservedPrefix = ".shoal-"
	metaDirName    = ".shoal-meta"    // sidecar metadata, one JSON file per key (by hash of the key)
	tmpDirName     = ".shoal-tmp"     // temp files for atomic replace (same filesystem as the data)
	uploadsDirName = ".shoal-uploads" // staged multipart uploads
)

// DirConfig configures a local-directory origin.
type DirConfig struct {
	// Root is an existing directory; each top-level folder is a bucket and
	// the files below it are keys, with '/' separators. Required.
	Root string
	// Region is what HeadBucket reports (default DefaultRegion).
	Region string
}

// Validate reports a configuration error wrapping ErrInvalidArgument.
func (c DirConfig) Validate() error {
	if c.Root == "" {
		return fmt.Errorf("origin: dir config: Root is required: %w", ErrInvalidArgument)
	}
	fi, err := os.Stat(c.Root)
	if err != nil {
		return fmt.Errorf("origin: dir config: Root: %w: %w", ErrInvalidArgument, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("origin: dir config: Root %s is not a directory: %w", c.Root, ErrInvalidArgument)
	}
	return nil
}

// Dir is an origin backed by a local directory, with the same method set and
// semantics as S3. All file access goes through an os.Root, so neither keys
// nor symlinks can reach outside the root.
//
// ETags: an object written through Dir gets S3's ETag (quoted hex MD5, or
// "<md5 of part md5s>-N" for multipart), remembered in a sidecar together
// with the file's version: size, mtime, inode, ctime and a fingerprint of
// its first and last 64 KiB. A file whose sidecar is missing or no longer
// matches (changed by something else) gets a strong ETag derived from that
// version instead, "<hex sha256(version)>", read without hashing the whole
// file. S3 clients compare ETags only for equality; the 64-digit form can
// not be mistaken for an MD5. What this detects, and what it cannot, is in
// the package documentation ("The file origin").
//
// Keys that a file tree can not represent are rejected with
// ErrInvalidArgument: empty segments ("a//b"), "." or "..", a leading or
// trailing '/', NUL, invalid UTF-8, and the reserved ".shoal-" first segment.
type Dir struct {
	root   *os.Root
	region string
}

// NewDir opens a directory origin. Close releases it.
func NewDir(cfg DirConfig) (*Dir, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("origin: dir: open root: %w", err)
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	return &Dir{root: r, region: region}, nil
}

// Close releases the root directory handle.
func (d *Dir) Close() error { return d.root.Close() }

// dirMeta is the sidecar record of one key.
type dirMeta struct {
	Key                string            `json:"key"`
	ETag               string            `json:"etag"`
	Size               int64             `json:"size"`
	MtimeNs            int64             `json:"mtime_ns"`
	Ino                uint64            `json:"ino"`
	CtimeNs            int64             `json:"ctime_ns,omitempty"` // absent in sidecars written before it
	Fingerprint        string            `json:"fp,omitempty"`       // likewise
	ContentType        string            `json:"content_type,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	CacheControl       string            `json:"cache_control,omitempty"`
	ContentDisposition string            `json:"content_disposition,omitempty"`
	ContentEncoding    string            `json:"content_encoding,omitempty"`
	ContentLanguage    string            `json:"content_language,omitempty"`
}

func validBucket(bucket string) error {
	if bucket == "" || len(bucket) > s3name.MaxBucketLen || strings.HasPrefix(bucket, ".") ||
		strings.ContainsAny(bucket, "/\\\x00") || !utf8.ValidString(bucket) {
		return fmt.Errorf("origin: dir: bucket name %q: %w", bucket, ErrInvalidArgument)
	}
	return nil
}

func validKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("origin: dir: key %q: %s: %w", key, why, ErrInvalidArgument)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > s3name.MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", s3name.MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.ContainsRune(key, 0):
		return bad("contains NUL")
	case strings.HasPrefix(key, "/"), strings.HasSuffix(key, "/"):
		return bad("leading or trailing '/'")
	}
	for i, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "." || seg == "..":
			return bad("'.' or '..' segment")
		case i == 0 && strings.HasPrefix(seg, reservedPrefix):
			return bad("reserved prefix " + reservedPrefix)
		}
	}
	return nil
}

func (d *Dir) checkBucket(op, bucket string) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	fi, err := d.root.Stat(bucket)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("origin: dir %s %s: %w", op, bucket, ErrNoSuchBucket)
	}
	return nil
}

func (d *Dir) checkObject(op, bucket, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	return d.checkBucket(op, bucket)
}

// fsErr translates a filesystem error for a key.
func fsErr(op, tgt string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("origin: dir %s %s: %w", op, tgt, ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("origin: dir %s %s: %w: %w", op, tgt, ErrAccessDenied, err)
	case strings.Contains(err.Error(), "escapes from parent"):
		return fmt.Errorf("origin: dir %s %s: %w: %w", op, tgt, ErrInvalidArgument, err)
	}
	return fmt.Errorf("origin: dir %s %s: %w", op, tgt, err)
}

func metaPath(bucket, key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return path.Join(bucket, metaDirName, h[:2], h+".json")
}

// readMeta returns the sidecar for key if it still describes st: the same
// size, mtime, inode, ctime and fingerprint. A sidecar from before ctime
// and fingerprint were recorded is taken when the rest matches (what it
// promised when it was written) and is brought up to date, so objects
// written through Dir keep their ETag and metadata across the upgrade.
func (d *Dir) readMeta(bucket, key string, st fileState) (dirMeta, bool) {
	data, err := d.root.ReadFile(metaPath(bucket, key))
	if err != nil {
		return dirMeta{}, false
	}
	var m dirMeta
	if json.Unmarshal(data, &m) != nil || m.Key != key || m.Size != st.v.Size ||
		m.MtimeNs != st.v.MtimeNs || m.Ino != st.v.Ino {
		return dirMeta{}, false
	}
	if m.CtimeNs == 0 && m.Fingerprint == "" {
		m.CtimeNs, m.Fingerprint = st.v.CtimeNs, st.fp
		_ = d.writeMeta(bucket, key, m) // best effort: a read-only tree still answers
		return m, true
	}
	return m, m.CtimeNs == st.v.CtimeNs && m.Fingerprint == st.fp
}

func (d *Dir) info(bucket, key string, st fileState) ObjectInfo {
	info := ObjectInfo{
		Bucket:       bucket,
		Key:          key,
		Size:         st.v.Size,
		LastModified: st.fi.ModTime().UTC(),
	}
	if m, ok := d.readMeta(bucket, key, st); ok {
		info.ETag = m.ETag
		info.ETagIsMD5 = etagIsPlainMD5(m.ETag) // Dir computed it from the bytes (PutObject)
		info.ContentType = m.ContentType
		info.Metadata = m.Metadata
		info.CacheControl = m.CacheControl
		info.ContentDisposition = m.ContentDisposition
		info.ContentEncoding = m.ContentEncoding
		info.ContentLanguage = m.ContentLanguage
	} else {
		info.ETag = derivedETag(st)
	}
	if info.ContentType == "" {
		info.ContentType = contentTypeFor(key)
	}
	return info
}

// open opens bucket/key and reads its current version. The caller closes
// the file.
func (d *Dir) open(op, bucket, key string) (*os.File, fileState, error) {
	tgt := target(bucket, key)
	p := path.Join(bucket, key)
	// Look before opening: opening a FIFO would block until a writer came.
	if fi, err := d.root.Stat(p); err != nil {
		return nil, fileState{}, fsErr(op, tgt, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fileState{}, fmt.Errorf("origin: dir %s %s: %w", op, tgt, errNotRegular)
	}
	f, err := d.root.Open(p)
	if err != nil {
		return nil, fileState{}, fsErr(op, tgt, err)
	}
	st, err := readState(f)
	if err != nil {
		f.Close()
		return nil, fileState{}, fmt.Errorf("origin: dir %s %s: %w", op, tgt, err)
	}
	return f, st, nil
}

func contentTypeFor(key string) string {
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// HeadObject returns an object's metadata.
func (d *Dir) HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	if err := d.checkObject("HeadObject", bucket, key); err != nil {
		return ObjectInfo{}, err
	}
	f, st, err := d.open("HeadObject", bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	f.Close()
	return d.info(bucket, key, st), nil
}

// etagMatch compares ETags for If-Match: quotes and a weak prefix are
// ignored, "*" matches anything.
func etagMatch(want, have string) bool {
	norm := func(s string) string { return strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`) }
	return want == "*" || norm(want) == norm(have)
}

// GetRange streams n bytes at off (n < 0: to the end), with S3's rules: a
// range starting at or past the end is ErrInvalidRange (except reading a
// whole empty object), a range past the end is cut short. A non-empty etag
// that no longer matches the file's current version fails with
// ErrPreconditionFailed; so does a read of the body once the file has
// changed after it was opened (see fileBody), with or without etag.
func (d *Dir) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.checkObject("GetObject", bucket, key); err != nil {
		return nil, err
	}
	tgt := target(bucket, key)
	if off < 0 {
		return nil, fmt.Errorf("origin: dir GetObject %s: offset %d: %w", tgt, off, ErrInvalidRange)
	}
	f, st, err := d.open("GetObject", bucket, key)
	if err != nil {
		return nil, err
	}
	if etag != "" {
		if have := d.info(bucket, key, st).ETag; !etagMatch(etag, have) {
			f.Close()
			return nil, fmt.Errorf("origin: dir GetObject %s: If-Match %s, have %s: %w", tgt, etag, have, ErrPreconditionFailed)
		}
	}
	size := st.v.Size
	if n == 0 {
		f.Close()
		return io.NopCloser(strings.NewReader("")), nil
	}
	if off > 0 && off >= size || off == 0 && size == 0 && n > 0 {
		f.Close()
		return nil, fmt.Errorf("origin: dir GetObject %s: range at %d of %d bytes: %w", tgt, off, size, ErrInvalidRange)
	}
	length := size - off
	if n > 0 && n < length {
		length = n
	}
	return &fileBody{f: f, r: io.NewSectionReader(f, off, length), v: st.v, tgt: tgt}, nil
}

// ListBuckets lists the top-level directories (hidden ones excluded).
func (d *Dir) ListBuckets(ctx context.Context) ([]Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(d.root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("origin: dir ListBuckets: %w", err)
	}
	var out []Bucket
	for _, e := range entries {
		if !e.IsDir() || validBucket(e.Name()) != nil {
			continue
		}
		b := Bucket{Name: e.Name()}
		if fi, err := e.Info(); err == nil {
			b.CreationDate = fi.ModTime().UTC()
		}
		out = append(out, b)
	}
	return out, nil
}

// HeadBucket reports whether the bucket directory exists; the region is the
// configured one.
func (d *Dir) HeadBucket(ctx context.Context, bucket string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := d.checkBucket("HeadBucket", bucket); err != nil {
		return "", err
	}
	return d.region, nil
}

// ctxReader fails reads once ctx is done, so a long copy stops promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeTemp copies r into a new temp file of the bucket, hashing it with h
// (may be nil), and returns the temp name and bytes written. The caller
// renames or removes it.
func (d *Dir) writeTemp(ctx context.Context, bucket string, r io.Reader, h hash.Hash) (string, int64, error) {
	if err := d.root.MkdirAll(path.Join(bucket, tmpDirName), 0o755); err != nil {
		return "", 0, err
	}
	name := path.Join(bucket, tmpDirName, randomHex(16))
	f, err := d.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", 0, err
	}
	var w io.Writer = f
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	n, err := io.Copy(w, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = d.root.Remove(name)
		return "", 0, err
	}
	return name, n, nil
}

// publish renames a temp file to bucket/key (atomic replace) and writes the
// sidecar; it returns the object's info.
func (d *Dir) publish(op, tmp, bucket, key string, m dirMeta) (ObjectInfo, error) {
	tgt := target(bucket, key)
	final := path.Join(bucket, key)
	if dir := path.Dir(final); dir != bucket {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			_ = d.root.Remove(tmp)
			return ObjectInfo{}, fmt.Errorf("origin: dir %s %s: a parent of the key is a file: %w: %w", op, tgt, ErrInvalidArgument, err)
		}
	}
	if fi, err := d.root.Lstat(final); err == nil && fi.IsDir() {
		_ = d.root.Remove(tmp)
		return ObjectInfo{}, fmt.Errorf("origin: dir %s %s: key is a prefix of other keys: %w", op, tgt, ErrInvalidArgument)
	}
	if err := d.root.Rename(tmp, final); err != nil {
		_ = d.root.Remove(tmp)
		return ObjectInfo{}, fsErr(op, tgt, err)
	}
	f, st, err := d.open(op, bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	f.Close()
	m.Key, m.Size, m.MtimeNs, m.Ino, m.CtimeNs, m.Fingerprint = key, st.v.Size, st.v.MtimeNs, st.v.Ino, st.v.CtimeNs, st.fp
	if err := d.writeMeta(bucket, key, m); err != nil {
		return ObjectInfo{}, fmt.Errorf("origin: dir %s %s: write metadata: %w", op, tgt, err)
	}
	return d.info(bucket, key, st), nil
}

func (d *Dir) writeMeta(bucket, key string, m dirMeta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mp := metaPath(bucket, key)
	if err := d.root.MkdirAll(path.Dir(mp), 0o755); err != nil {
		return err
	}
	tmp := mp + "." + randomHex(8) + ".tmp"
	if err := d.root.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := d.root.Rename(tmp, mp); err != nil {
		_ = d.root.Remove(tmp)
		return err
	}
	return nil
}

// PutObject writes an object atomically (temp file + rename). With
// Size >= 0 a body of another length is rejected with ErrInvalidArgument
// and nothing is written.
func (d *Dir) PutObject(ctx context.Context, p PutParams) (ObjectInfo, error) {
	if err := d.checkObject("PutObject", p.Bucket, p.Key); err != nil {
		return ObjectInfo{}, err
	}
	tgt := target(p.Bucket, p.Key)
	body := p.Body
	if body == nil {
		body = strings.NewReader("")
	}
	if p.Size >= 0 {
		body = io.LimitReader(body, p.Size+1)
	}
	h := md5.New()
	tmp, n, err := d.writeTemp(ctx, p.Bucket, body, h)
	if err != nil {
		return ObjectInfo{}, fsErrOrCtx(ctx, "PutObject", tgt, err)
	}
	if p.Size >= 0 && n != p.Size {
		_ = d.root.Remove(tmp)
		return ObjectInfo{}, fmt.Errorf("origin: dir PutObject %s: body has %d bytes, Size says %d: %w", tgt, n, p.Size, ErrInvalidArgument)
	}
	return d.publish("PutObject", tmp, p.Bucket, p.Key, dirMeta{
		ETag:        `"` + hex.EncodeToString(h.Sum(nil)) + `"`,
		ContentType: p.ContentType,
		Metadata:    lowerKeys(p.Metadata),
	})
}

func fsErrOrCtx(ctx context.Context, op, tgt string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("origin: dir %s %s: %w", op, tgt, err)
	}
	return fsErr(op, tgt, err)
}

// DeleteObject removes an object and its sidecar, then any directories the
// removal left empty. A missing key is not an error (as in S3).
func (d *Dir) DeleteObject(ctx context.Context, bucket, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.checkObject("DeleteObject", bucket, key); err != nil {
		return err
	}
	p := path.Join(bucket, key)
	fi, err := d.root.Lstat(p)
	if err != nil || fi.IsDir() {
		return nil
	}
	if err := d.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsErr("DeleteObject", target(bucket, key), err)
	}
	_ = d.root.Remove(metaPath(bucket, key))
	for dir := path.Dir(p); dir != bucket && dir != "."; dir = path.Dir(dir) {
		if d.root.Remove(dir) != nil { // not empty
			break
		}
	}
	return nil
}
