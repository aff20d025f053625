package blockstore

import (
	"math/bits"
	"sync"
)

// bufPool recycles block read buffers by power-of-two size class, so a
// stream of disk hits reuses a few buffers instead of allocating (and the
// runtime zeroing) a chunk-sized slice per read.
//
// Ownership rule: a buffer from get belongs to its caller until it calls
// put; after put nobody may touch it. Tiered.Borrow hands that duty to its
// caller as the release function.
type bufPool struct {
	classes [maxPoolClass + 1]sync.Pool // class k holds *[]byte of cap 1<<k
}

// maxPoolClass bounds pooled buffers to 1 GiB (the largest chunk size).
const maxPoolClass = 30

// get returns a buffer of length n (contents undefined).
func (p *bufPool) get(n int) []byte {
	k := sizeClass(n)
	if k > maxPoolClass {
		return make([]byte, n)
	}
	if v := p.classes[k].Get(); v != nil {
		return (*v.(*[]byte))[:n]
	}
	return make([]byte, n, 1<<k)
}

// put recycles a buffer obtained from get.
func (p *bufPool) put(b []byte) {
	k := sizeClass(cap(b))
	if k > maxPoolClass || cap(b) != 1<<k {
		return
	}
	b = b[:cap(b)]
	p.classes[k].Put(&b)
}

// sizeClass is the smallest k with 1<<k >= n.
func sizeClass(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}
