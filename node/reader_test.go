package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/gateway"
)

// getWriteTo is get, draining the reader with WriteTo (the gateway's path)
// after reading the first part with Read, so both paths share one reader.
func getWriteTo(ctx context.Context, n *Node, bucket, key string, off, length int64, readFirst int) ([]byte, error) {
	info, err := n.HeadObject(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	rc, err := n.GetObject(ctx, info, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	first := make([]byte, readFirst)
	if _, err := io.ReadFull(rc, first); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(first)
	k, err := rc.(io.WriterTo).WriteTo(&buf)
	if err != nil {
		return nil, err
	}
	if int64(buf.Len()) != int64(readFirst)+k {
		return nil, errors.New("WriteTo miscounted")
	}
	// The reader is exhausted: Read reports EOF, WriteTo writes nothing.
	if _, err := rc.Read(make([]byte, 1)); err != io.EOF {
		return nil, errors.New("read after WriteTo: no EOF")
	}
	return buf.Bytes(), nil
}

func TestWriteToIsByteExact(t *testing.T) {
	e := newEnv(t, Config{ReadAhead: 2})
	ctx := t.Context()
	size := 5*cs - 3
	data := randBytes(size, 42)
	e.org.set("b", "k", data)
	for _, r := range [][3]int{{0, size, 0}, {0, size, 7}, {1, size - 2, cs}, {cs - 5, 10, 3}, {cs, cs / 2, 0}, {size - 1, 1, 0}, {3, 2*cs + 9, cs + 1}} {
		for pass := range 2 { // from the origin, then from the store
			got, err := getWriteTo(ctx, e.n, "b", "k", int64(r[0]), int64(r[1]), r[2])
			if err != nil {
				t.Fatalf("range %v pass %d: %v", r, pass, err)
			}
			if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Fatalf("range %v pass %d: wrong bytes (%d bytes)", r, pass, len(got))
			}
		}
	}
}

type failingWriter struct{ after int }

var errWriterBroke = errors.New("writer broke")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.after {
		w.after -= len(p)
		return len(p), nil
	}
	n := w.after
	w.after = 0
	return n, errWriterBroke
}

func TestWriteToReturnsWriterErrorsAndVersionChanges(t *testing.T) {
	e := newEnv(t, Config{ReadAhead: 1})
	ctx := t.Context()
	data := randBytes(4*cs, 9)
	e.org.set("b", "k", data)
	info, err := e.n.HeadObject(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}

	rc, err := e.n.GetObject(ctx, info, 0, info.Size)
	if err != nil {
		t.Fatal(err)
	}
	n, err := rc.(io.WriterTo).WriteTo(&failingWriter{after: cs + 10})
	if !errors.Is(err, errWriterBroke) || n != cs+10 {
		t.Fatalf("WriteTo to a failing writer: %d, %v", n, err)
	}
	rc.Close()
	if _, err := rc.(io.WriterTo).WriteTo(io.Discard); !errors.Is(err, errReaderClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}

	// The object changes under an open reader: WriteTo stops with
	// ErrPreconditionFailed after a prefix of the old version.
	old, err := e.n.GetObject(ctx, info, 0, info.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	e.org.set("b", "k", randBytes(4*cs, 10))
	var buf bytes.Buffer
	if _, err := old.(io.WriterTo).WriteTo(&buf); !errors.Is(err, gateway.ErrPreconditionFailed) {
		t.Fatalf("WriteTo across a version change: %v", err)
	}
	if !bytes.HasPrefix(data, buf.Bytes()) {
		t.Fatal("WriteTo wrote bytes that are not the old version's")
	}
}

// TestConcurrentReadersOfRecycledBuffers: readers of disk hits from the
// real tiered store (whose buffers are recycled between readers), some
// closing early, each read the right bytes.
func TestConcurrentReadersOfRecycledBuffers(t *testing.T) {
	st := openTiered(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	org := newFakeOrigin()
	cat := openCatalog(t, t.TempDir())
	objs := [][]byte{randBytes(6*cs+5, 60), randBytes(4*cs, 61)}
	org.set("b", "k0", objs[0])
	org.set("b", "k1", objs[1])
	n, err := New(Config{ChunkSize: cs, ReadAhead: 3}, st, org, cat)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx := t.Context()
	for k := range objs { // land every chunk
		if _, err := get(ctx, n, "b", "k"+string(rune('0'+k)), 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := org.count("GetRange")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Go(func() {
			for round := range 6 {
				k := (w + round) % 2
				key := "b/k" + string(rune('0'+k))
				want := objs[k]
				switch round % 3 {
				case 0: // Read to the end
					got, err := get(ctx, n, "b", key[2:], 0, -1)
					if err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("%s: Read: %v", key, err)
					}
				case 1: // WriteTo from an offset
					got, err := getWriteTo(ctx, n, "b", key[2:], 7, int64(len(want))-7, 0)
					if err != nil || !bytes.Equal(got, want[7:]) {
						errs <- fmt.Errorf("%s: WriteTo: %v", key, err)
					}
				case 2: // read a little, then close with chunks pending
					info, err := n.HeadObject(ctx, "b", key[2:])
					if err != nil {
						errs <- err
						continue
					}
					rc, err := n.GetObject(ctx, info, 0, info.Size)
					if err != nil {
						errs <- err
						continue
					}
					buf := make([]byte, cs+3)
					if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, want[:cs+3]) {
						errs <- fmt.Errorf("%s: partial read: %v", key, err)
					}
					rc.Close()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := org.count("GetRange") - before; got != 0 {
		t.Errorf("reads of stored chunks went to the origin %d times", got)
	}
}

// countingStore counts the store's completed Borrow calls.
type countingStore struct {
	*blockstore.Tiered
	borrows atomic.Int64
}

func (s *countingStore) Borrow(ctx context.Context, c cid.Cid) ([]byte, func(), error) {
	data, release, err := s.Tiered.Borrow(ctx, c)
	s.borrows.Add(1)
	return data, release, err
}

// slowWriter holds its first write until the store has lent `until`
// buffers, as a slow client would while read-ahead goes on.
type slowWriter struct {
	st    *countingStore
	until int64
	buf   bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.buf.Len() == 0 {
		deadline := time.Now().Add(10 * time.Second) // a guard, not a measurement
		for w.st.borrows.Load() < w.until && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	return w.buf.Write(p)
}

// TestSlowClientKeepsItsChunk: the buffer of the chunk being written to a
// client is not recycled for the read-ahead while the write is under way.
func TestSlowClientKeepsItsChunk(t *testing.T) {
	dir, catDir := t.TempDir(), t.TempDir()
	org := newFakeOrigin()
	data := randBytes(4*cs, 70)
	org.set("b", "k", data)
	cfg := Config{ChunkSize: cs, ReadAhead: 2}
	{ // land every chunk on disk
		st := openTiered(t, dir)
		cat := openCatalog(t, catDir)
		n, err := New(cfg, st, org, cat)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(t.Context(), n, "b", "k", 0, -1); err != nil {
			t.Fatal(err)
		}
		n.Close()
		st.Close()
		cat.Close()
	}
	for round := range 3 {
		st := &countingStore{Tiered: openTiered(t, dir)} // memory starts empty
		cat := openCatalog(t, catDir)
		n, err := New(cfg, st, org, cat)
		if err != nil {
			t.Fatal(err)
		}
		info, err := n.HeadObject(t.Context(), "b", "k")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := n.GetObject(t.Context(), info, 0, info.Size)
		if err != nil {
			t.Fatal(err)
		}
		// Chunks 0 and 1 are lent at the start; chunk 2 once the reader
		// moves to chunk 0. Hold chunk 0's write until chunk 2 is lent.
		w := &slowWriter{st: st, until: 3}
		if _, err := rc.(io.WriterTo).WriteTo(w); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if !bytes.Equal(w.buf.Bytes(), data) {
			t.Fatalf("round %d: the client got other bytes than the object's", round)
		}
		if org.count("GetRange") != 4 {
			t.Fatalf("round %d: chunks were not served from the store", round)
		}
		n.Close()
		st.Close()
		cat.Close()
	}
}
