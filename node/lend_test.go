package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/gateway"
)

// readShared reads [off, off+n) with ReadShared, a call per chunk as a
// caller must, and checks every slice stops at a chunk boundary.
func readShared(t *testing.T, n *Node, info gateway.ObjectInfo, off, length int64, ahead int) []byte {
	t.Helper()
	var out []byte
	for length > 0 {
		data, release, err := n.ReadShared(t.Context(), info, off, length, ahead)
		if err != nil {
			t.Fatalf("ReadShared(%d, %d): %v", off, length, err)
		}
		if len(data) == 0 || int64(len(data)) > length {
			t.Fatalf("ReadShared(%d, %d): %d bytes", off, length, len(data))
		}
		if end := off + int64(len(data)); end%cs != 0 && end != off+length && end != info.Size {
			t.Fatalf("ReadShared(%d, %d) stopped at %d: neither the range's end nor a chunk boundary", off, length, end)
		}
		out = append(out, data...)
		release()
		off += int64(len(data))
		length -= int64(len(data))
	}
	return out
}

// TestReadSharedIsByteExact: lent ranges (within a chunk, across chunks,
// the last short chunk) are the object's bytes, from the origin and then
// from the store, and a random read fetches only the chunks it covers.
func TestReadSharedIsByteExact(t *testing.T) {
	e := newEnv(t, Config{})
	size := 5*cs - 3
	data := randBytes(size, 7)
	e.org.set("b", "k", data)
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	// A range inside chunk 2: the origin is asked for chunk 2 only.
	if got := readShared(t, e.n, info, 2*cs+5, 100, 0); !bytes.Equal(got, data[2*cs+5:2*cs+105]) {
		t.Fatal("range in chunk 2 differs")
	}
	if g := e.org.count("GetRange"); g != 1 {
		t.Fatalf("one chunk read: %d origin range GETs, want 1", g)
	}
	for _, r := range [][2]int{{0, size}, {cs - 5, 10}, {cs, cs}, {3, 2*cs + 9}, {size - 1, 1}, {4 * cs, size - 4*cs}} {
		for pass := range 2 {
			if got := readShared(t, e.n, info, int64(r[0]), int64(r[1]), 0); !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Fatalf("range %v pass %d differs", r, pass)
			}
		}
	}
	if g := e.org.count("GetRange"); g != 5 {
		t.Fatalf("every chunk read twice or more: %d origin range GETs, want 5 (one per chunk)", g)
	}
}

// TestReadSharedRefusesBadRanges: ranges outside the object are
// ErrInvalidArgument, and a version the origin no longer has fails.
func TestReadSharedRefusesBadRanges(t *testing.T) {
	e := newEnv(t, Config{})
	data := randBytes(2*cs, 8)
	e.org.set("b", "k", data)
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{-1, 1}, {0, 0}, {2 * cs, 1}, {cs, cs + 1}} {
		_, release, err := e.n.ReadShared(t.Context(), info, r[0], r[1], 0)
		release()
		if !errors.Is(err, gateway.ErrInvalidArgument) {
			t.Errorf("range %v: %v, want ErrInvalidArgument", r, err)
		}
	}
	e.org.set("b", "k", randBytes(2*cs, 9)) // rewritten: info's ETag is gone
	if _, _, err := e.n.ReadShared(t.Context(), info, 0, 10, 0); !errors.Is(err, gateway.ErrPreconditionFailed) {
		t.Fatalf("old version: %v, want ErrPreconditionFailed", err)
	}
}

// TestReadSharedReadsAhead: a sequential reader (ahead > 0) at a chunk's
// first byte has the next chunks fetched in the background, within the
// node's ReadAhead; without ahead nothing more is fetched.
func TestReadSharedReadsAhead(t *testing.T) {
	e := newEnv(t, Config{ReadAhead: 3})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	data := randBytes(8*cs, 10)
	e.org.set("b", "k", data)
	info, err := e.n.HeadObject(t.Context(), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	readShared(t, e.n, info, 0, 10, 0)
	if g := e.org.count("GetRange"); g != 1 {
		t.Fatalf("no read-ahead asked: %d origin range GETs, want 1", g)
	}
	readShared(t, e.n, info, cs, 10, 16) // asks 16 ahead, the node allows 3
	deadline := time.Now().Add(10 * time.Second)
	for e.org.count("GetRange") < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g := e.org.count("GetRange"); g != 5 {
		t.Fatalf("read-ahead: %d origin range GETs, want 5 (chunks 0-1 read, 2-4 ahead)", g)
	}
	for j := 2; j <= 4; j++ {
		if e.org.rangeCalls("b", "k", int64(j)*cs) != 1 {
			t.Fatalf("chunk %d was not read ahead once", j)
		}
	}
	// The chunks read ahead are held: reading them asks the origin nothing.
	if got := readShared(t, e.n, info, 2*cs, 3*cs, 0); !bytes.Equal(got, data[2*cs:5*cs]) {
		t.Fatal("chunks read ahead differ")
	}
	if g := e.org.count("GetRange"); g != 5 {
		t.Fatalf("after reading the chunks read ahead: %d origin range GETs, want 5", g)
	}
}
