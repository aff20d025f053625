package blockstore_test

import (
	"container/list"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
	"github.com/shoal-cache/shoal/internal/content"
)

const chunkSize = 4 << 20

func BenchmarkMemoryGetHit(b *testing.B) {
	m, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c, data := storetest.Block(b, chunkSize)
	if err := m.Put(b.Context(), c, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(chunkSize)
	for b.Loop() {
		if _, err := m.Get(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiskGetHit(b *testing.B) {
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: b.TempDir(), BudgetBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var cids []cid.Cid
	for range 8 {
		c, data := storetest.Block(b, chunkSize)
		if err := d.Put(b.Context(), c, data); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, c)
	}
	b.SetBytes(chunkSize)
	i := 0
	for b.Loop() { // read + sha2-256 verification of 4 MiB (page cache warm)
		if _, err := d.Get(b.Context(), cids[i%len(cids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDiskPut(b *testing.B) {
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: b.TempDir(), BudgetBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const pool = 32 // 128 MiB of distinct chunks through a 64 MiB budget: includes eviction
	cids := make([]cid.Cid, pool)
	datas := make([][]byte, pool)
	for i := range pool {
		cids[i], datas[i] = storetest.Block(b, chunkSize)
	}
	b.SetBytes(chunkSize)
	i := 0
	for b.Loop() {
		c := cids[i%pool]
		if err := d.Put(b.Context(), c, datas[i%pool]); err != nil {
			b.Fatal(err)
		}
		if i%pool == pool-1 { // make the next lap write again
			for _, c := range cids {
				_ = d.Delete(b.Context(), c)
			}
		}
		i++
	}
}

// BenchmarkMemoryPolicy reports the memory tier's hit ratio on a skewed
// workload (Zipf over 4,000 blocks, cache of 400) interrupted by one-off
// scans (a 600-block scan every 5,000 requests), next to a plain LRU with
// the same byte budget.
func BenchmarkMemoryPolicy(b *testing.B) {
	const (
		blockBytes = 1 << 10
		cacheSize  = 400
		keys       = 4000
		requests   = 50000
		scanEvery  = 5000
		scanLen    = 600
	)
	ctx := context.Background()
	blockFor := func(k uint64) (cid.Cid, []byte) {
		data := make([]byte, blockBytes)
		binary.LittleEndian.PutUint64(data, k)
		return content.Sum(content.SHA256, data), data
	}
	ids := make([]cid.Cid, keys)
	datas := make([][]byte, keys)
	for k := range keys {
		ids[k], datas[k] = blockFor(uint64(k))
	}
	var hits, lruHits, total float64
	for b.Loop() {
		m, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: cacheSize * blockBytes})
		if err != nil {
			b.Fatal(err)
		}
		lru := newLRU(cacheSize)
		rng := rand.New(rand.NewPCG(1, 2))
		zipf := rand.NewZipf(rng, 1.1, 1, keys-1)
		scanKey := uint64(keys)
		for r := range requests {
			var c cid.Cid
			var data []byte
			if r%scanEvery < scanLen && r >= scanEvery {
				c, data = blockFor(scanKey)
				scanKey++
			} else {
				k := zipf.Uint64()
				c, data = ids[k], datas[k]
			}
			total++
			if _, err := m.Get(ctx, c); err == nil {
				hits++
			} else if err := m.Put(ctx, c, data); err != nil {
				b.Fatal(err)
			}
			if lru.get(c) {
				lruHits++
			}
		}
		m.Close()
	}
	b.ReportMetric(hits/total, "hit-ratio")
	b.ReportMetric(lruHits/total, "lru-hit-ratio")
}

// lru is the baseline: a plain LRU of n equally sized blocks.
type lru struct {
	n     int
	order list.List
	items map[cid.Cid]*list.Element
}

func newLRU(n int) *lru { return &lru{n: n, items: map[cid.Cid]*list.Element{}} }

// get reports a hit, inserting on a miss.
func (l *lru) get(c cid.Cid) bool {
	if e, ok := l.items[c]; ok {
		l.order.MoveToFront(e)
		return true
	}
	l.items[c] = l.order.PushFront(c)
	if l.order.Len() > l.n {
		delete(l.items, l.order.Remove(l.order.Back()).(cid.Cid))
	}
	return false
}

// BenchmarkTieredDiskHit compares the two ways a streaming reader can get
// disk hits from a Tiered whose memory tier is smaller than the data read
// in a cycle (as in a sequential read of a large object): Get (a fresh
// buffer per read) and Borrow (recycled buffers). Neither promotes blocks
// that are not read again soon, and both verify every read against its
// CID; -benchmem shows the difference.
func BenchmarkTieredDiskHit(b *testing.B) {
	for _, mode := range []string{"Get", "Borrow"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: 2 * chunkSize})
			if err != nil {
				b.Fatal(err)
			}
			d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: 256 << 20})
			if err != nil {
				b.Fatal(err)
			}
			var cids []cid.Cid
			for range 8 {
				c, data := storetest.Block(b, chunkSize)
				if err := d.Put(b.Context(), c, data); err != nil {
					b.Fatal(err)
				}
				cids = append(cids, c)
			}
			tr, err := blockstore.NewTiered(mem, d, blockstore.TieredConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			b.SetBytes(chunkSize)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c := cids[i%len(cids)]
				i++
				if mode == "Get" {
					if _, err := tr.Get(b.Context(), c); err != nil {
						b.Fatal(err)
					}
					continue
				}
				_, release, err := tr.Borrow(b.Context(), c)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}
