package catalog

import (
	"maps"
	"sync"

	"github.com/ipfs/go-cid"
)

// Read cache sizes (defaults of WithCache). An object record costs a few
// hundred bytes and a chunk entry about a hundred, so the defaults hold
// ~10 MB at most, within the catalog's small-footprint budget.
const (
	DefaultCachedObjects = 16384
	DefaultCachedChunks  = 65536
)

// WithCache bounds the in-memory read cache of object records and chunk
// CIDs (defaults DefaultCachedObjects, DefaultCachedChunks); 0 disables
// that part of the cache.
func WithCache(objects, chunks int) Option {
	return func(o *options) { o.cacheObjects, o.cacheChunks = max(objects, 0), max(chunks, 0) }
}

// cache is a bounded, write-through-invalidated copy of hot records, so a
// hit costs a map lookup instead of a Badger transaction (and, for
// objects, a JSON decode).
//
// Consistency: every write to Badger invalidates the affected entries after
// it committed and bumps gen; a reader fills the cache only if gen did not
// move since before its Badger read. So an entry is never older than the
// last committed write: a fill that raced with a write is dropped, and a
// write that committed after a fill removes it.
type cache struct {
	maxObjects, maxChunks int

	mu      sync.RWMutex
	closed  bool
	gen     uint64
	objects map[objKey]Object
	chunks  map[Version]map[int64]cid.Cid
	nChunks int
}

type objKey struct{ bucket, key string }

func newCache(objects, chunks int) *cache {
	return &cache{maxObjects: objects, maxChunks: chunks,
		objects: make(map[objKey]Object), chunks: make(map[Version]map[int64]cid.Cid)}
}

// generation returns the value to hand to a later fill.
func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *cache) object(bucket, key string) (Object, bool) {
	c.mu.RLock()
	o, ok := c.objects[objKey{bucket, key}]
	c.mu.RUnlock()
	if ok && o.Metadata != nil {
		o.Metadata = maps.Clone(o.Metadata) // callers may modify theirs
	}
	return o, ok
}

func (c *cache) fillObject(gen uint64, o Object) {
	if c.maxObjects == 0 {
		return
	}
	o.Metadata = maps.Clone(o.Metadata)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.gen != gen {
		return
	}
	k := objKey{o.Bucket, o.Key}
	if _, ok := c.objects[k]; !ok && len(c.objects) >= c.maxObjects {
		for old := range c.objects { // drop an arbitrary entry
			delete(c.objects, old)
			break
		}
	}
	c.objects[k] = o
}

func (c *cache) dropObject(bucket, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.objects, objKey{bucket, key})
}

func (c *cache) chunk(v Version, i int64) (cid.Cid, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.chunks[v][i]
	return id, ok
}

// fillChunk records chunk i of v. A version's chunk CIDs never change
// while it is indexed (only DropVersion removes them), so PutChunk fills
// directly, with the generation it read before writing.
func (c *cache) fillChunk(gen uint64, v Version, i int64, id cid.Cid) {
	if c.maxChunks == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.gen != gen {
		return
	}
	m := c.chunks[v]
	if _, ok := m[i]; ok {
		return
	}
	for c.nChunks >= c.maxChunks && len(c.chunks) > 0 {
		for old, om := range c.chunks { // drop an arbitrary version
			c.nChunks -= len(om)
			delete(c.chunks, old)
			break
		}
		m = c.chunks[v]
	}
	if m == nil {
		m = make(map[int64]cid.Cid)
		c.chunks[v] = m
	}
	m[i] = id
	c.nChunks++
}

func (c *cache) dropVersion(v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.nChunks -= len(c.chunks[v])
	delete(c.chunks, v)
}

func (c *cache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.gen++
	c.objects, c.chunks, c.nChunks = map[objKey]Object{}, map[Version]map[int64]cid.Cid{}, 0
}
