package routing

import (
	"sync"
	"time"
)

// Conflict log bounds: conflicts are rare (a lie, or an origin that broke
// immutability), so a small log of recent ones is enough for the readers
// that look the version up after it was seen.
const (
	maxConflictKeys   = 1024
	maxClaimsPerKey   = 8
	conflictRetention = 10 * time.Minute
)

// conflictLog remembers, per DHT key, the distinct claims a Select saw.
type conflictLog struct {
	mu   sync.Mutex // guards keys
	keys map[string]*conflict
}

type conflict struct {
	claims []ManifestRecord
	seen   time.Time
}

func newConflictLog() *conflictLog { return &conflictLog{keys: make(map[string]*conflict)} }

// add notes that a and b, different claims, were both offered for key.
func (l *conflictLog) add(key string, a, b ManifestRecord) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.keys[key]
	if c == nil {
		if len(l.keys) >= maxConflictKeys {
			for k, o := range l.keys {
				if now.Sub(o.seen) > conflictRetention || len(l.keys) >= maxConflictKeys {
					delete(l.keys, k)
				}
			}
		}
		c = &conflict{}
		l.keys[key] = c
	}
	c.seen = now
	for _, r := range []ManifestRecord{a, b} {
		known := false
		for _, o := range c.claims {
			if o.SameClaim(r) {
				known = true
				break
			}
		}
		if !known && len(c.claims) < maxClaimsPerKey {
			c.claims = append(c.claims, r)
		}
	}
}

// get returns the claims noted for key recently (nil if none).
func (l *conflictLog) get(key string) []ManifestRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.keys[key]
	if c == nil || time.Since(c.seen) > conflictRetention {
		return nil
	}
	return append([]ManifestRecord(nil), c.claims...)
}
