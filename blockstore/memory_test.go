package blockstore_test

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

func TestMemoryGetDoesNotCopy(t *testing.T) {
	m := newMemory(t, 1<<20)
	defer m.Close()
	c, data := storetest.Block(t, 1000)
	if err := m.Put(t.Context(), c, data); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &data[0] {
		t.Fatal("Get returned a copy")
	}
}

func TestMemoryScanDoesNotFlushHotBlocks(t *testing.T) {
	ctx := t.Context()
	const size = 10 << 10
	m := newMemory(t, 20*size)
	defer m.Close()
	var hot []cid.Cid
	for range 10 {
		c, data := storetest.Block(t, size)
		if err := m.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		hot = append(hot, c)
	}
	for range 2 {
		for _, c := range hot {
			if _, err := m.Get(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A one-off scan of 10x the budget, never read again.
	for range 200 {
		c, data := storetest.Block(t, size)
		if err := m.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		if st := m.Stats(); st.Bytes > st.BudgetBytes {
			t.Fatalf("over budget: %+v", st)
		}
	}
	for i, c := range hot {
		if ok, _ := m.Has(ctx, c); !ok {
			t.Errorf("hot block %d flushed by a scan", i)
		}
	}
}

func TestMemoryFullOfPins(t *testing.T) {
	ctx := t.Context()
	m := newMemory(t, 100<<10)
	defer m.Close()
	for range 2 {
		c, data := storetest.Block(t, 40<<10)
		if err := m.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		if err := m.Pin(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	c, data := storetest.Block(t, 40<<10)
	if err := m.Put(ctx, c, data); !errors.Is(err, blockstore.ErrFull) {
		t.Fatalf("put with the budget pinned: %v, want ErrFull", err)
	}
	small, smallData := storetest.Block(t, 10<<10)
	if err := m.Put(ctx, small, smallData); err != nil {
		t.Fatalf("put of a block that fits beside the pins: %v", err)
	}
}

func TestMemoryAllKeys(t *testing.T) {
	m := newMemory(t, 1<<20)
	defer m.Close()
	want := map[cid.Cid]bool{}
	for range 5 {
		c, data := storetest.Block(t, 100)
		if err := m.Put(t.Context(), c, data); err != nil {
			t.Fatal(err)
		}
		want[c] = true
	}
	n := 0
	if err := m.AllKeys(t.Context(), func(c cid.Cid) bool {
		if !want[c] {
			t.Errorf("unknown key %s", c)
		}
		n++
		return n < 3
	}); err != nil || n != 3 {
		t.Fatalf("AllKeys stopping after 3: %d, %v", n, err)
	}
}
