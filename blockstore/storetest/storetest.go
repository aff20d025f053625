// Package storetest is the conformance suite every blockstore.Store
// implementation passes: Run it from the implementation's tests.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/internal/content"
)

// Flusher is implemented by stores that write asynchronously; the suite
// calls Flush before checking what a store holds at rest.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Run runs the conformance suite. newStore must return an empty, open store
// with a byte budget (Stats().BudgetBytes) between 64 KiB and 64 MiB; the
// suite closes it (a store's t.Cleanup may Close it again and must tolerate
// ErrClosed).
func Run(t *testing.T, newStore func(t *testing.T) blockstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s blockstore.Store)
	}{
		{"PutGetHasDelete", testPutGetHasDelete},
		{"PutTwice", testPutTwice},
		{"HashMismatch", testHashMismatch},
		{"UnsupportedCID", testUnsupportedCID},
		{"Missing", testMissing},
		{"BudgetKept", testBudgetKept},
		{"PinSurvivesPressure", testPinSurvivesPressure},
		{"PinBeforePut", testPinBeforePut},
		{"UnpinAllowsEviction", testUnpinAllowsEviction},
		{"TooLarge", testTooLarge},
		{"Concurrent", testConcurrent},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s.Stats().BudgetBytes <= 0 {
				t.Fatalf("store has no byte budget (Stats().BudgetBytes = %d)", s.Stats().BudgetBytes)
			}
			tc.fn(t, s)
		})
	}
}

// Block returns random bytes of size n and their CIDv1 (sha2-256).
func Block(t testing.TB, n int) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return content.Sum(content.SHA256, data), data
}

func blockSize(s blockstore.Store) int { return int(s.Stats().BudgetBytes / 8) }

func flush(t *testing.T, s blockstore.Store) {
	t.Helper()
	if f, ok := s.(Flusher); ok {
		if err := f.Flush(t.Context()); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

func mustPut(t *testing.T, s blockstore.Store, c cid.Cid, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), c, data); err != nil {
		t.Fatalf("put %s: %v", c, err)
	}
}

func mustGet(t *testing.T, s blockstore.Store, c cid.Cid, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), c)
	if err != nil {
		t.Fatalf("get %s: %v", c, err)
	}
	if string(got) != string(want) {
		t.Fatalf("get %s: %d bytes differ from the %d put", c, len(got), len(want))
	}
}

func has(t *testing.T, s blockstore.Store, c cid.Cid) bool {
	t.Helper()
	ok, err := s.Has(t.Context(), c)
	if err != nil {
		t.Fatalf("has %s: %v", c, err)
	}
	return ok
}

func testPutGetHasDelete(t *testing.T, s blockstore.Store) {
	defer s.Close()
	ctx := t.Context()
	c, data := Block(t, blockSize(s))
	small, smallData := Block(t, 100)
	if has(t, s, c) {
		t.Fatal("empty store has a block")
	}
	mustPut(t, s, c, data)
	mustPut(t, s, small, smallData)
	if !has(t, s, c) || !has(t, s, small) {
		t.Fatal("Has false after Put")
	}
	mustGet(t, s, c, data)
	mustGet(t, s, small, smallData)
	flush(t, s)
	st := s.Stats()
	if st.Blocks != 2 || st.Bytes != int64(len(data)+len(smallData)) {
		t.Fatalf("stats after 2 puts: %d blocks, %d bytes; want 2, %d", st.Blocks, st.Bytes, len(data)+len(smallData))
	}
	if st.Hits < 2 {
		t.Fatalf("stats: %d hits after 2 successful gets", st.Hits)
	}
	if err := s.Delete(ctx, c); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if has(t, s, c) {
		t.Fatal("Has true after Delete")
	}
	if _, err := s.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	mustGet(t, s, small, smallData)
	flush(t, s)
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != int64(len(smallData)) {
		t.Fatalf("stats after delete: %d blocks, %d bytes; want 1, %d", st.Blocks, st.Bytes, len(smallData))
	}
}

func testPutTwice(t *testing.T, s blockstore.Store) {
	defer s.Close()
	c, data := Block(t, 1000)
	mustPut(t, s, c, data)
	mustPut(t, s, c, append([]byte(nil), data...))
	flush(t, s)
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != 1000 {
		t.Fatalf("after putting one block twice: %d blocks, %d bytes", st.Blocks, st.Bytes)
	}
	mustGet(t, s, c, data)
}

func testHashMismatch(t *testing.T, s blockstore.Store) {
	defer s.Close()
	c, data := Block(t, 1000)
	bad := append([]byte(nil), data...)
	bad[500] ^= 1
	if err := s.Put(t.Context(), c, bad); !errors.Is(err, blockstore.ErrHashMismatch) {
		t.Fatalf("put of altered bytes: %v, want ErrHashMismatch", err)
	}
	flush(t, s)
	if has(t, s, c) {
		t.Fatal("store holds a block whose bytes did not match")
	}
	// The same CID with the right bytes is still accepted; BLAKE3 too.
	mustPut(t, s, c, data)
	b3data := []byte("blake3 block")
	b3 := content.Sum(content.BLAKE3, b3data)
	mustPut(t, s, b3, b3data)
	mustGet(t, s, b3, b3data)
}

func testUnsupportedCID(t *testing.T, s blockstore.Store) {
	defer s.Close()
	data := []byte("identity")
	id, err := mh.Sum(data, mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), cid.NewCidV1(cid.Raw, id), data); !errors.Is(err, blockstore.ErrHashMismatch) {
		t.Fatalf("put under identity cid: %v, want ErrHashMismatch", err)
	}
	if err := s.Put(t.Context(), cid.Undef, data); !errors.Is(err, blockstore.ErrHashMismatch) {
		t.Fatalf("put under undefined cid: %v, want ErrHashMismatch", err)
	}
}

func testMissing(t *testing.T, s blockstore.Store) {
	defer s.Close()
	ctx := t.Context()
	c, _ := Block(t, 10)
	if _, err := s.Get(ctx, c); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Misses < 1 {
		t.Fatalf("miss not counted: %+v", st)
	}
	if err := s.Delete(ctx, c); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	if err := s.Unpin(ctx, c); err != nil {
		t.Fatalf("unpin unpinned: %v", err)
	}
}

func testBudgetKept(t *testing.T, s blockstore.Store) {
	defer s.Close()
	budget := s.Stats().BudgetBytes
	size := blockSize(s)
	var cids []cid.Cid
	var datas [][]byte
	for range 32 { // 4x the budget
		c, data := Block(t, size)
		mustPut(t, s, c, data)
		cids, datas = append(cids, c), append(datas, data)
		flush(t, s)
		if st := s.Stats(); st.Bytes > budget {
			t.Fatalf("%d bytes held, budget %d", st.Bytes, budget)
		}
	}
	st := s.Stats()
	if st.Evictions == 0 {
		t.Fatalf("no evictions after writing 4x the budget: %+v", st)
	}
	held := 0
	for i, c := range cids {
		data, err := s.Get(t.Context(), c)
		switch {
		case errors.Is(err, blockstore.ErrNotFound):
		case err != nil:
			t.Fatalf("get %s: %v", c, err)
		case string(data) != string(datas[i]):
			t.Fatalf("get %s: wrong bytes", c)
		default:
			held++
		}
	}
	if held == 0 {
		t.Fatal("nothing readable after eviction")
	}
}

func testPinSurvivesPressure(t *testing.T, s blockstore.Store) {
	defer s.Close()
	ctx := t.Context()
	size := blockSize(s)
	pc, pdata := Block(t, size)
	mustPut(t, s, pc, pdata)
	if err := s.Pin(ctx, pc); err != nil {
		t.Fatalf("pin: %v", err)
	}
	flush(t, s)
	for range 32 {
		c, data := Block(t, size)
		mustPut(t, s, c, data)
		flush(t, s)
	}
	mustGet(t, s, pc, pdata)
	if st := s.Stats(); st.Pinned != 1 || st.PinnedBytes != int64(len(pdata)) {
		t.Fatalf("stats: %d pinned (%d bytes), want 1 (%d bytes)", st.Pinned, st.PinnedBytes, len(pdata))
	}
}

func testPinBeforePut(t *testing.T, s blockstore.Store) {
	defer s.Close()
	ctx := t.Context()
	size := blockSize(s)
	pc, pdata := Block(t, size)
	if err := s.Pin(ctx, pc); err != nil {
		t.Fatalf("pin absent block: %v", err)
	}
	if has(t, s, pc) {
		t.Fatal("pin created a block")
	}
	mustPut(t, s, pc, pdata)
	flush(t, s)
	for range 32 {
		c, data := Block(t, size)
		mustPut(t, s, c, data)
		flush(t, s)
	}
	mustGet(t, s, pc, pdata)
}

func testUnpinAllowsEviction(t *testing.T, s blockstore.Store) {
	defer s.Close()
	ctx := t.Context()
	size := blockSize(s)
	pc, pdata := Block(t, size)
	mustPut(t, s, pc, pdata)
	if err := s.Pin(ctx, pc); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, pc); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	// Pressure from blocks in use (each read twice), not a one-off scan,
	// which scan-resistant policies are allowed to absorb elsewhere.
	for range 64 {
		c, data := Block(t, size)
		mustPut(t, s, c, data)
		mustGet(t, s, c, data)
		mustGet(t, s, c, data)
		flush(t, s)
	}
	if has(t, s, pc) {
		t.Fatal("unpinned block survived 8x the budget of newer, used blocks")
	}
	if st := s.Stats(); st.Pinned != 0 || st.PinnedBytes != 0 {
		t.Fatalf("stats: %d pinned (%d bytes) after unpin", st.Pinned, st.PinnedBytes)
	}
}

func testTooLarge(t *testing.T, s blockstore.Store) {
	defer s.Close()
	c, data := Block(t, int(s.Stats().BudgetBytes)+1)
	if err := s.Put(t.Context(), c, data); !errors.Is(err, blockstore.ErrTooLarge) && !errors.Is(err, blockstore.ErrFull) {
		t.Fatalf("put of a block larger than the budget: %v, want ErrTooLarge or ErrFull", err)
	}
	flush(t, s)
	if has(t, s, c) {
		t.Fatal("store holds a block larger than its budget")
	}
}

func testConcurrent(t *testing.T, s blockstore.Store) {
	defer s.Close()
	ctx := t.Context()
	size := blockSize(s) / 4
	const workers, rounds = 8, 20
	shared := make([]cid.Cid, 16)
	sharedData := make(map[cid.Cid][]byte)
	for i := range shared {
		c, data := Block(t, size)
		shared[i] = c
		sharedData[c] = data
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c := shared[(w+r)%len(shared)]
				data := sharedData[c]
				if err := s.Put(ctx, c, data); err != nil {
					errs <- fmt.Errorf("put: %w", err)
					return
				}
				got, err := s.Get(ctx, c)
				if err != nil && !errors.Is(err, blockstore.ErrNotFound) {
					errs <- fmt.Errorf("get: %w", err)
					return
				}
				if err == nil && string(got) != string(data) {
					errs <- fmt.Errorf("get %s: wrong bytes", c)
					return
				}
				if _, err := s.Has(ctx, c); err != nil {
					errs <- fmt.Errorf("has: %w", err)
					return
				}
				err = nil
				switch r % 5 {
				case 1:
					err = s.Delete(ctx, c)
				case 2:
					err = s.Pin(ctx, c)
				case 3:
					err = s.Unpin(ctx, c)
				}
				if err != nil {
					errs <- fmt.Errorf("op %d: %w", r%5, err)
					return
				}
				_ = s.Stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	flush(t, s)
	if st := s.Stats(); st.Bytes > st.BudgetBytes || st.Bytes < 0 || st.Blocks < 0 {
		t.Fatalf("inconsistent stats after concurrent use: %+v", st)
	}
	// Whatever is held must read back intact.
	for _, c := range shared {
		if got, err := s.Get(ctx, c); err == nil && string(got) != string(sharedData[c]) {
			t.Fatalf("get %s: wrong bytes", c)
		} else if err != nil && !errors.Is(err, blockstore.ErrNotFound) {
			t.Fatalf("get %s: %v", c, err)
		}
	}
}

func testClosed(t *testing.T, s blockstore.Store) {
	ctx := t.Context()
	c, data := Block(t, 100)
	mustPut(t, s, c, data)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	checks := map[string]error{}
	_, checks["get"] = s.Get(ctx, c)
	_, checks["has"] = s.Has(ctx, c)
	checks["put"] = s.Put(ctx, c, data)
	checks["delete"] = s.Delete(ctx, c)
	checks["pin"] = s.Pin(ctx, c)
	checks["unpin"] = s.Unpin(ctx, c)
	checks["close"] = s.Close()
	for op, err := range checks {
		if !errors.Is(err, blockstore.ErrClosed) {
			t.Errorf("%s after close: %v, want ErrClosed", op, err)
		}
	}
	_ = s.Stats() // must not panic
}
