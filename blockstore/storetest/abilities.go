package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/internal/content"
)

// ReadPathStore is a Store with the abilities the node's read path
// declares (node.BlockStore): buffers lent to readers, blocks taken
// without hashing again, a listing for announcements, the feed of removed
// blocks, and per-tier figures. A wrapper of a store that forgot one of
// them no longer compiles against the node, and RunReadPath checks each
// does what it says.
type ReadPathStore interface {
	blockstore.Store
	Borrow(ctx context.Context, c cid.Cid) (data []byte, release func(), err error)
	PutBlock(ctx context.Context, b content.Block) error
	AllKeys(ctx context.Context, fn func(cid.Cid) bool) error
	Removals() *blockstore.Removals
	TierStats() (memory, disk blockstore.Stats)
}

// RunReadPath runs Run and then checks the read-path abilities. newStore
// is as for Run.
func RunReadPath(t *testing.T, newStore func(t *testing.T) ReadPathStore) {
	t.Helper()
	Run(t, func(t *testing.T) blockstore.Store { return newStore(t) })
	tests := []struct {
		name string
		fn   func(t *testing.T, s ReadPathStore)
	}{
		{"Borrow", testBorrow},
		{"PutBlock", testPutBlock},
		{"AllKeys", testAllKeys},
		{"Removals", testRemovals},
		{"TierStats", testTierStats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func testBorrow(t *testing.T, s ReadPathStore) {
	defer s.Close()
	ctx := t.Context()
	c, data := Block(t, blockSize(s))
	mustPut(t, s, c, data)
	flush(t, s)
	for range 3 { // borrowed, given back, borrowed again
		got, release, err := s.Borrow(ctx, c)
		if err != nil || release == nil {
			t.Fatalf("borrow: %v (release nil: %v)", err, release == nil)
		}
		if string(got) != string(data) {
			t.Fatal("borrowed bytes differ from those put")
		}
		release()
	}
	missing, _ := Block(t, 10)
	_, release, err := s.Borrow(ctx, missing)
	if !errors.Is(err, blockstore.ErrNotFound) || release == nil {
		t.Fatalf("borrow of a missing block: %v (release nil: %v), want ErrNotFound and a release", err, release == nil)
	}
	release()
}

func testPutBlock(t *testing.T, s ReadPathStore) {
	defer s.Close()
	_, data := Block(t, blockSize(s))
	b := content.NewBlock(content.SHA256, data)
	if err := s.PutBlock(t.Context(), b); err != nil {
		t.Fatalf("put block: %v", err)
	}
	mustGet(t, s, b.CID(), data)
	flush(t, s)
	mustGet(t, s, b.CID(), data)
}

func testAllKeys(t *testing.T, s ReadPathStore) {
	defer s.Close()
	var want []cid.Cid
	for range 4 {
		c, data := Block(t, blockSize(s)/2)
		mustPut(t, s, c, data)
		want = append(want, c)
	}
	flush(t, s)
	var got []cid.Cid
	if err := s.AllKeys(t.Context(), func(c cid.Cid) bool { got = append(got, c); return true }); err != nil {
		t.Fatalf("all keys: %v", err)
	}
	for _, c := range want {
		if !slices.ContainsFunc(got, c.Equals) {
			t.Errorf("AllKeys left out %s", c)
		}
	}
	seen := 0
	_ = s.AllKeys(t.Context(), func(cid.Cid) bool { seen++; return false })
	if seen != 1 {
		t.Errorf("AllKeys went on after fn returned false (%d calls)", seen)
	}
}

// testRemovals: a deleted block and blocks evicted by pressure are
// reported on the feed; a block still held is not.
func testRemovals(t *testing.T, s ReadPathStore) {
	defer s.Close()
	ctx := t.Context()
	size := blockSize(s)
	keep, keepData := Block(t, 100)
	mustPut(t, s, keep, keepData)
	if err := s.Pin(ctx, keep); err != nil {
		t.Fatal(err)
	}
	c, data := Block(t, size)
	mustPut(t, s, c, data)
	flush(t, s)
	if err := s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Twice the budget: most of these must leave.
	var put []cid.Cid
	for range 16 {
		c, data := Block(t, size)
		mustPut(t, s, c, data)
		put = append(put, c)
		flush(t, s)
	}
	reported := map[cid.Cid]bool{}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for !reported[c] || len(reported) < 8 {
		got, err := s.Removals().Take(wctx)
		if err != nil {
			t.Fatalf("removals reported %d blocks (deleted one among them: %v), want the deleted one and at least 8 evicted: %v",
				len(reported), reported[c], err)
		}
		for _, r := range got {
			reported[r] = true
		}
	}
	for r := range reported {
		if has(t, s, r) && !slices.ContainsFunc(put, r.Equals) {
			t.Errorf("a block still held was reported removed: %s", r)
		}
	}
	if reported[keep] {
		t.Error("a pinned block was reported removed")
	}
}

func testTierStats(t *testing.T, s ReadPathStore) {
	defer s.Close()
	c, data := Block(t, blockSize(s))
	mustPut(t, s, c, data)
	flush(t, s)
	mem, disk := s.TierStats()
	if mem.Blocks+disk.Blocks < 1 || mem.BudgetBytes+disk.BudgetBytes < s.Stats().BudgetBytes {
		t.Errorf("tier stats %+v / %+v do not account for the store's %+v", mem, disk, s.Stats())
	}
}
