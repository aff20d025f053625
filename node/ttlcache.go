package node

import (
	"sync"
	"time"
)

// ttlCache is a small bounded map whose entries expire after ttl. When full,
// it first drops expired entries, then an arbitrary one (Go's map order):
// good enough for short-lived listing caches.
type ttlCache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex          // guards m
	m  map[string]entry[V] //
}

type entry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, max int, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, now: now, m: make(map[string]entry[V])}
}

func (c *ttlCache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k string, v V) {
	if c.ttl <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k2, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k2)
			}
		}
		for k2 := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k2)
		}
	}
	c.m[k] = entry[V]{v: v, expires: now.Add(c.ttl)}
}

func (c *ttlCache[V]) delete(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// deletePrefix drops every entry whose key starts with p.
func (c *ttlCache[V]) deletePrefix(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if len(k) >= len(p) && k[:len(p)] == p {
			delete(c.m, k)
		}
	}
}
