package fusefs

import (
	"context"
	"hash/fnv"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/shoal-cache/shoal/gateway"
)

// FS is a mount of a Backend's buckets; Run mounts it.
type FS struct {
	cfg     Config
	b       Backend
	lend    Lender // b, when it lends (nil: reads copy through GetObject)
	log     *slog.Logger
	started time.Time // directories' mtime
	uid     uint32    // owner shown for every file: the mounting user
	gid     uint32
}

// Option configures an FS.
type Option func(*FS)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(m *FS) { m.log = l.With("component", "mount") }
}

// New builds a mount of b's buckets; it mounts nothing yet (see Run).
func New(cfg Config, b Backend, opts ...Option) (*FS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	m := &FS{cfg: cfg, b: b, log: slog.New(slog.DiscardHandler), started: time.Now(),
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	m.lend, _ = b.(Lender)
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// opCtx bounds one metadata call (lookup, listing page, open).
func (m *FS) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.OpTimeout)
}

// fail maps err to an errno and logs the failures that are not answers.
func (m *FS) fail(op, bucket, key string, err error) syscall.Errno {
	e, logIt := errno(err)
	if logIt {
		m.log.Warn("mount: "+op+" failed", "bucket", bucket, "key", key, "errno", e.Error(), "err", err)
	}
	return e
}

// ino is a stable inode number for an object or a prefix, so that a name
// looked up again (after the kernel forgot it) is the same inode, whose
// page cache the kernel may keep.
func ino(kind byte, bucket, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte{kind})
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(key))
	v := h.Sum64()
	if v <= 1 || v == ^uint64(0) { // reserved by go-fuse
		v = 2
	}
	return v
}

// validName: a key segment that can be a file name. Keys with empty
// segments ("a//b"), "." or "..", or segments over 255 bytes are not
// shown (they stay readable through the gateway).
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

// dir is a bucket's prefix as a directory; with an empty bucket, the root
// listing every bucket.
type dir struct {
	fs.Inode
	m      *FS
	bucket string // "" at the bucket-list root
	prefix string // "" or ending in "/"
}

var (
	_ fs.NodeLookuper       = (*dir)(nil)
	_ fs.NodeGetattrer      = (*dir)(nil)
	_ fs.NodeOpendirHandler = (*dir)(nil)
	_ fs.NodeStatfser       = (*dir)(nil)
	_ fs.NodeMkdirer        = (*dir)(nil)
	_ fs.NodeMknoder        = (*dir)(nil)
	_ fs.NodeCreater        = (*dir)(nil)
	_ fs.NodeUnlinker       = (*dir)(nil)
	_ fs.NodeRmdirer        = (*dir)(nil)
	_ fs.NodeRenamer        = (*dir)(nil)
	_ fs.NodeSymlinker      = (*dir)(nil)
	_ fs.NodeLinker         = (*dir)(nil)
	_ fs.NodeSetattrer      = (*dir)(nil)
	_ fs.NodeSetxattrer     = (*dir)(nil)
	_ fs.NodeRemovexattrer  = (*dir)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileLookuper       = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
)

func (d *dir) fillAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	a.Owner = fuse.Owner{Uid: d.m.uid, Gid: d.m.gid}
	a.SetTimes(&d.m.started, &d.m.started, &d.m.started)
}

func (d *dir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fillAttr(&out.Attr)
	out.SetTimeout(d.m.cfg.MetadataTTL)
	return 0
}

func (d *dir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = uint32(d.m.cfg.MaxRead)
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

// Lookup resolves a name: a bucket at the root; else the object
// prefix+name (HEAD through the read path, answered from the node's
// metadata cache within its TTL) or, failing that, the prefix
// prefix+name+"/" if a listing shows anything under it. An object and a
// prefix of the same name show as the object.
func (d *dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx, cancel := d.m.opCtx(ctx)
	defer cancel()
	if d.bucket == "" {
		return d.lookupBucket(ctx, name, out)
	}
	if !validName(name) {
		return nil, syscall.ENOENT
	}
	key := d.prefix + name
	info, herr := d.m.b.HeadObject(ctx, d.bucket, key)
	if herr == nil {
		return d.fileChild(ctx, name, info, out), 0
	}
	res, lerr := d.m.b.ListObjectsV2(ctx, gateway.ListParams{Bucket: d.bucket, Prefix: key + "/", Delimiter: "/", MaxKeys: 1})
	if lerr == nil && (len(res.Entries) > 0 || len(res.CommonPrefixes) > 0) {
		return d.dirChild(ctx, name, d.bucket, key+"/", out), 0
	}
	if e, _ := errno(herr); e == syscall.ENOENT && lerr == nil {
		out.SetEntryTimeout(d.m.cfg.NegativeTTL)
		return nil, syscall.ENOENT
	}
	if lerr != nil {
		if e, _ := errno(herr); e == syscall.ENOENT {
			return nil, d.m.fail("lookup", d.bucket, key, lerr)
		}
	}
	return nil, d.m.fail("lookup", d.bucket, key, herr)
}

func (d *dir) lookupBucket(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	bs, err := d.m.b.ListBuckets(ctx)
	if err != nil {
		return nil, d.m.fail("list buckets", name, "", err)
	}
	for _, b := range bs {
		if b.Name == name {
			return d.dirChild(ctx, name, name, "", out), 0
		}
	}
	out.SetEntryTimeout(d.m.cfg.NegativeTTL)
	return nil, syscall.ENOENT
}

// dirChild is the child directory name (bucket/prefix), the existing
// inode if the tree has it.
func (d *dir) dirChild(ctx context.Context, name, bucket, prefix string, out *fuse.EntryOut) *fs.Inode {
	var ch *fs.Inode
	if c := d.GetChild(name); c != nil {
		if cd, ok := c.Operations().(*dir); ok && cd.bucket == bucket && cd.prefix == prefix {
			ch = c
		}
	}
	if ch == nil {
		ch = d.NewInode(ctx, &dir{m: d.m, bucket: bucket, prefix: prefix},
			fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino('d', bucket, prefix)})
	}
	ch.Operations().(*dir).fillAttr(&out.Attr)
	out.SetEntryTimeout(d.m.cfg.MetadataTTL)
	out.SetAttrTimeout(d.m.cfg.MetadataTTL)
	return ch
}

// fileChild is the child file name for the version info, the existing
// inode (its attributes updated) if the tree has it.
func (d *dir) fileChild(ctx context.Context, name string, info gateway.ObjectInfo, out *fuse.EntryOut) *fs.Inode {
	var f *file
	var ch *fs.Inode
	if c := d.GetChild(name); c != nil {
		if cf, ok := c.Operations().(*file); ok && cf.bucket == info.Bucket && cf.key == info.Key {
			f, ch = cf, c
			f.setInfo(info)
		}
	}
	if ch == nil {
		f = &file{m: d.m, bucket: info.Bucket, key: info.Key, info: info}
		ch = d.NewInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG, Ino: ino('f', info.Bucket, info.Key)})
	}
	f.fillAttr(&out.Attr, f.currentInfo())
	ttl := d.m.cfg.attrTTL(info.Bucket, info.Key)
	out.SetEntryTimeout(ttl)
	out.SetAttrTimeout(ttl)
	return ch
}

// OpendirHandle starts a listing: readdir streams it page by page.
func (d *dir) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{d: d, clean: true}, 0, 0
}

// The tree is read-only: everything that would change it is EROFS (the
// mount is "ro" too, so the kernel refuses most of these before asking).

func (d *dir) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dir) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dir) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (d *dir) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (d *dir) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (d *dir) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}
func (d *dir) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dir) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *dir) Setattr(context.Context, fs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (d *dir) Setxattr(context.Context, string, []byte, uint32) syscall.Errno { return syscall.EROFS }
func (d *dir) Removexattr(context.Context, string) syscall.Errno              { return syscall.EROFS }

// dent is one directory entry of a listing page.
type dent struct {
	name  string
	isDir bool
	e     gateway.ListEntry // for files
}

// dirHandle streams one directory listing, one page at a time. The bridge
// calls it under its own per-handle lock; mu makes it safe regardless.
type dirHandle struct {
	d *dir

	mu      sync.Mutex // guards the fields below
	pos     uint64     // entries produced (the offset of the next)
	page    []dent     // the rest of the current page
	started bool       // "." and ".." were queued
	token   string     // continuation of the next page
	done    bool       // no page after the current one
	lastRaw string     // name of the last entry taken from a page (dedup)
	// recent are the entries of the current and the previous page by
	// name: READDIRPLUS asks for the attributes of each entry it sends,
	// also when it sends the tail of a batch again (the caller's buffer was
	// full), and the listing has them.
	recent, prev map[string]dent
	// req is the request of the last call; clean says that the next call
	// of another request is the first entry of its reply (nothing of ours
	// is pending in go-fuse: the handle is new or was sought, or the last
	// reply ended because we ended it).
	req   context.Context
	clean bool
}

// Readdirent produces the next entry. A listing page that fails is
// reported (EIO, EINTR) only as the first entry of a reply; in the middle
// of one, the reply ends early instead, and the next request fetches the
// page again (and reports the failure if it fails again). go-fuse
// (v2.12.1) keeps an error returned in the middle of a reply and returns
// it again, in place of the entry, at every later reply that ends with an
// entry that did not fit: the reader would lose an entry per reply after
// any failed page (an interrupted `ls` of 10,000 keys showed 9,904). A reply ends with an entry that did not fit whenever the kernel's
// buffer fills, and that entry opens the next reply, so only a reply
// after one we ended ourselves is known to start with our entry.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	firstEntry := ctx != h.req && h.clean
	h.req, h.clean = ctx, false
	de, e := h.nextLocked(ctx)
	switch {
	case e != 0 && firstEntry:
		h.clean = true
		return nil, e
	case e != 0:
		h.clean = true
		return nil, 0
	case de == nil:
		h.clean = true
	}
	return de, 0
}

func (h *dirHandle) nextLocked(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	for len(h.page) == 0 {
		if !h.started {
			h.started = true
			h.page = []dent{{name: ".", isDir: true}, {name: "..", isDir: true}}
			break
		}
		if h.done {
			return nil, 0
		}
		if e := h.fetchLocked(ctx); e != 0 {
			return nil, e
		}
	}
	de := h.page[0]
	h.page = h.page[1:]
	h.pos++
	out := &fuse.DirEntry{Name: de.name, Off: h.pos, Mode: syscall.S_IFREG}
	d := h.d
	switch {
	case de.name == "." || de.name == "..":
		out.Mode = syscall.S_IFDIR
	case d.bucket == "":
		out.Mode, out.Ino = syscall.S_IFDIR, ino('d', de.name, "")
	case de.isDir:
		out.Mode, out.Ino = syscall.S_IFDIR, ino('d', d.bucket, d.prefix+de.name+"/")
	default:
		out.Ino = ino('f', d.bucket, d.prefix+de.name)
	}
	return out, 0
}

// fetchLocked reads the next page (bounded by OpTimeout).
func (h *dirHandle) fetchLocked(ctx context.Context) syscall.Errno {
	d := h.d
	ctx, cancel := d.m.opCtx(ctx)
	defer cancel()
	if d.bucket == "" {
		bs, err := d.m.b.ListBuckets(ctx)
		if err != nil {
			return d.m.fail("list buckets", "", "", err)
		}
		for _, b := range bs {
			if validName(b.Name) {
				h.page = append(h.page, dent{name: b.Name, isDir: true})
			}
		}
		h.done = true
		return 0
	}
	res, err := d.m.b.ListObjectsV2(ctx, gateway.ListParams{Bucket: d.bucket, Prefix: d.prefix, Delimiter: "/",
		ContinuationToken: h.token, MaxKeys: d.m.cfg.ListPage})
	if err != nil {
		return d.m.fail("list", d.bucket, d.prefix, err)
	}
	page := make([]dent, 0, len(res.Entries)+len(res.CommonPrefixes))
	for _, e := range res.Entries {
		if name := strings.TrimPrefix(e.Key, d.prefix); validName(name) {
			page = append(page, dent{name: name, e: e})
		}
	}
	for _, p := range res.CommonPrefixes {
		if name := strings.TrimSuffix(strings.TrimPrefix(p, d.prefix), "/"); validName(name) {
			page = append(page, dent{name: name, isDir: true})
		}
	}
	// Files before directories of the same name (Lookup shows the file).
	sort.SliceStable(page, func(i, j int) bool { return page[i].name < page[j].name })
	h.prev, h.recent = h.recent, make(map[string]dent, len(page))
	for _, de := range page {
		if de.name == h.lastRaw {
			continue
		}
		h.lastRaw = de.name
		h.page = append(h.page, de)
		h.recent[de.name] = de
	}
	h.token = res.NextContinuationToken
	h.done = !res.IsTruncated || h.token == ""
	return 0
}

// Lookup answers READDIRPLUS for an entry just produced from what the
// listing said (size, ETag, Last-Modified), without a HEAD per file.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	h.mu.Lock()
	last, ok := h.recent[name]
	if !ok {
		last, ok = h.prev[name]
	}
	h.mu.Unlock()
	d := h.d
	if !ok {
		return d.Lookup(ctx, name, out)
	}
	switch {
	case d.bucket == "":
		return d.dirChild(ctx, name, name, "", out), 0
	case last.isDir:
		return d.dirChild(ctx, name, d.bucket, d.prefix+name+"/", out), 0
	}
	if c := d.GetChild(name); c != nil {
		if f, ok := c.Operations().(*file); ok && f.key == last.e.Key {
			// Known already: its attributes come from its own HEAD or
			// listing, refreshed on their TTL.
			f.fillAttr(&out.Attr, f.currentInfo())
			ttl := d.m.cfg.attrTTL(d.bucket, f.key)
			out.SetEntryTimeout(ttl)
			out.SetAttrTimeout(ttl)
			return c, 0
		}
	}
	info := gateway.ObjectInfo{Bucket: d.bucket, Key: last.e.Key, ETag: last.e.ETag, Size: last.e.Size, LastModified: last.e.LastModified}
	return d.fileChild(ctx, name, info, out), 0
}

// Seekdir restarts the listing and skips to off (telldir/seekdir, and a
// rewinddir at 0).
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off == h.pos {
		return 0
	}
	h.pos, h.page, h.started, h.token, h.done, h.lastRaw, h.recent, h.prev = 0, nil, false, "", false, "", nil, nil
	// go-fuse drops what it held: the next Readdirent starts the reply,
	// even within this request.
	h.req, h.clean = nil, true
	for h.pos < off {
		de, e := h.nextLocked(ctx)
		if e != 0 {
			return e
		}
		if de == nil {
			break
		}
	}
	return 0
}
