package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/internal/badgerrepair"
	"github.com/shoal-cache/shoal/origin"
)

// Sentinel errors, compared with errors.Is.
var (
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("catalog: not found")
	// ErrClosed: the catalog was closed.
	ErrClosed = errors.New("catalog: closed")
	// ErrCorrupt: a stored record could not be decoded.
	ErrCorrupt = errors.New("catalog: corrupt record")
	// ErrInvalid: bad argument (empty bucket, negative index, ...).
	ErrInvalid = errors.New("catalog: invalid argument")
)

// Memory footprint knobs. The catalog holds small records only (a few
// hundred bytes per object, ~40 bytes per chunk), so small memtables and
// caches suffice; Badger's defaults (64 MiB memtables x 5, 256 MiB block
// cache) would alone exceed the node's idle RSS target of 200 MB.
const (
	memTableSize   = 8 << 20  // 2 memtables: 16 MiB worst case
	numMemtables   = 2        //
	blockCacheSize = 16 << 20 // hot index blocks
	indexCacheSize = 8 << 20  // bounds table index memory instead of keeping all in RAM
	vlogFileSize   = 64 << 20 // values are tiny; a small value log is reclaimed sooner
	// maxConflictRetries bounds retries of a transaction that lost a
	// write-write race (two chunks of one version landing at once).
	maxConflictRetries = 64
)

// Catalog is the persistent metadata store. It is safe for concurrent use.
type Catalog struct {
	db    *badger.DB
	log   *slog.Logger
	cache *cache
}

// Option configures Open.
type Option func(*options)

type options struct {
	log                       *slog.Logger
	inMemory                  bool
	cacheObjects, cacheChunks int
}

// WithLogger sets the logger (Badger's own messages go to it at debug level
// and warnings/errors at their level).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// InMemory keeps everything in memory (dir is ignored); for tests.
func InMemory() Option { return func(o *options) { o.inMemory = true } }

// Open opens (creating if needed) the catalog in dir. A catalog damaged on
// disk (a table or manifest Badger refuses or panics on) is moved aside to
// <dir>.damaged-<UTC time> and replaced by a fresh one holding what its
// readable tables still hold, logged at ERROR; a catalog in use by another
// process, or one that cannot be read for lack of permission or space, is
// an error and is left alone.
func Open(dir string, opts ...Option) (*Catalog, error) {
	o := options{log: slog.New(slog.DiscardHandler), cacheObjects: DefaultCachedObjects, cacheChunks: DefaultCachedChunks}
	for _, opt := range opts {
		opt(&o)
	}
	if dir == "" && !o.inMemory {
		return nil, fmt.Errorf("%w: empty directory", ErrInvalid)
	}
	log := o.log.With("component", "catalog")
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithValueLogFileSize(vlogFileSize).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
	if o.inMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
	}
	db, err := badgerrepair.Open(bo)
	if errors.Is(err, badgerrepair.ErrDamaged) {
		db, err = reopenDamaged(dir, bo, err, log)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: open %q: %w", dir, err)
	}
	return &Catalog{db: db, log: log, cache: newCache(o.cacheObjects, o.cacheChunks)}, nil
}

// reopenDamaged moves a damaged catalog aside, opens a fresh one in its
// place and copies into it every record the damaged one's readable tables
// still hold. What is lost (records only in a damaged table, writes not yet
// flushed to a table) the node learns again: object records and chunk
// indexes from the origin and from peers; pinned prefixes only from the
// operator, so the log line names the directory to look into.
func reopenDamaged(dir string, bo badger.Options, damage error, log *slog.Logger) (*badger.DB, error) {
	aside, err := badgerrepair.MoveAside(dir, time.Now())
	if err != nil {
		return nil, errors.Join(damage, err)
	}
	db, err := badgerrepair.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("fresh catalog after moving the damaged one aside: %w", err)
	}
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	st, serr := badgerrepair.Salvage(aside, bo, func(k, v []byte) error { return wb.Set(k, v) })
	if serr == nil {
		serr = wb.Flush()
	}
	if serr != nil {
		// Keep the fresh catalog: it is consistent, only emptier.
		log.Error("salvaging the damaged catalog failed", "err", serr)
	}
	log.Error("catalog was damaged: moved it aside and rebuilt it from what its readable tables hold",
		"damage", damage, "moved_to", aside, "records_salvaged", st.Keys,
		"tables_read", st.Tables, "tables_unreadable", st.BadTables,
		"lost", "records of unreadable tables and unflushed writes; objects and chunk indexes are learned again from the origin and peers, pinned prefixes are not (compare with shoal status)")
	return db, nil
}

// Close flushes and closes the database.
func (c *Catalog) Close() error {
	c.cache.close()
	if c.db.IsClosed() {
		return nil
	}
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("catalog: close: %w", err)
	}
	return nil
}

// Object is the cached metadata of the current version of bucket/key.
type Object struct {
	// ObjectInfo is the origin's description of the version, as the origin
	// gave it (the JSON keys of both are the catalog's encoding).
	origin.ObjectInfo
	// CheckedAt is when the origin last confirmed this version.
	CheckedAt time.Time `json:"at"`
}

// Version names one immutable version of an object as the node cuts it:
// the same object bytes cut with another chunk size or hash are another
// version (another chunk index).
type Version struct {
	Bucket    string
	Key       string
	ETag      string
	Size      int64
	ChunkSize int64
	Hash      string
}

// ID is the version's 16-byte identifier (a truncated SHA-256 of its
// length-prefixed fields).
func (v Version) ID() [16]byte {
	h := sha256.New()
	var b [binary.MaxVarintLen64]byte
	for _, s := range []string{v.Bucket, v.Key, v.ETag, v.Hash} {
		h.Write(b[:binary.PutUvarint(b[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	h.Write(b[:binary.PutVarint(b[:], v.Size)])
	h.Write(b[:binary.PutVarint(b[:], v.ChunkSize)])
	var id [16]byte
	copy(id[:], h.Sum(nil))
	return id
}

// NumChunks is ceil(Size/ChunkSize) (0 for an empty object).
func (v Version) NumChunks() int64 {
	if v.Size <= 0 || v.ChunkSize <= 0 {
		return 0
	}
	return (v.Size + v.ChunkSize - 1) / v.ChunkSize
}

// Pin is a pinned prefix.
type Pin struct {
	Bucket  string    `json:"b"`
	Prefix  string    `json:"p"`
	Created time.Time `json:"t"`
	// Replicas is the cluster-wide copy target of every chunk under the
	// prefix (0: none, only this node's pin).
	Replicas int `json:"r,omitempty"`
}

// Counts summarises the catalog for status reports.
type Counts struct {
	Objects   int64 // cached object metadata records
	Chunks    int64 // chunk index entries, all versions
	Manifests int64 // versions with a manifest
	Pins      int64 // pinned prefixes
}

func (c *Catalog) wrap(op string, err error) error {
	if errors.Is(err, badger.ErrDBClosed) {
		err = ErrClosed
	}
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = ErrNotFound
	}
	return fmt.Errorf("catalog: %s: %w", op, err)
}

// update runs fn in a read-write transaction, retrying on write conflicts.
func (c *Catalog) update(ctx context.Context, fn func(txn *badger.Txn) error) error {
	for range maxConflictRetries {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := c.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return badger.ErrConflict
}

func (c *Catalog) view(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.db.View(fn)
}

// badgerLogger adapts slog to Badger's logger interface.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(fmt.Sprintf(f, a...)) }

// decodeCID parses a stored CID.
func decodeCID(b []byte) (cid.Cid, error) {
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: cid: %w", ErrCorrupt, err)
	}
	return c, nil
}
