package node

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cache/shoal/gateway"
)

// retryAfterOf is the Retry-After hint an error carries (0: none).
func retryAfterOf(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// TestOriginWaitBoundsHead: with an origin that accepts a HEAD and never
// answers, a client gets ErrUnavailable with a Retry-After hint once
// OriginWait has passed, not when the origin client gives up; the HEAD goes
// on, and a client arriving later shares it (one HEAD in all) and gets the
// answer when it comes.
func TestOriginWaitBoundsHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{})
		e.org.set("b", "k", randBytes(100, 1))
		gate := make(chan struct{})
		e.org.headGate = gate
		start := time.Now()
		_, err := e.n.HeadObject(t.Context(), "b", "k")
		if !errors.Is(err, gateway.ErrUnavailable) || retryAfterOf(err) <= 0 {
			t.Fatalf("HEAD of a hung origin: %v (retry after %v), want unavailable with a hint", err, retryAfterOf(err))
		}
		if took := time.Since(start); took != DefaultOriginWait {
			t.Fatalf("answered after %v, want %v", took, DefaultOriginWait)
		}
		got := make(chan error, 1)
		go func() {
			_, err := e.n.HeadObject(t.Context(), "b", "k")
			got <- err
		}()
		synctest.Wait()
		close(gate) // the origin answers at last
		if err := <-got; err != nil {
			t.Fatalf("HEAD after the origin answered: %v", err)
		}
		if n := e.org.count("HeadObject"); n != 1 {
			t.Fatalf("%d HEADs reached the origin, want 1 (the one that went on)", n)
		}
	})
}

// TestOriginWaitBoundsFirstChunk: a GET whose first chunk's origin read
// gets no answer is answered ErrUnavailable (with a hint) after OriginWait,
// before any byte is sent; the read goes on and lands the chunk.
func TestOriginWaitBoundsFirstChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{OriginWait: 3 * time.Second, Fetch: noHedge})
		data := randBytes(3*cs, 2)
		e.org.set("b", "k", data)
		info, err := e.n.HeadObject(t.Context(), "b", "k")
		if err != nil {
			t.Fatal(err)
		}
		gate := make(chan struct{})
		e.org.mu.Lock()
		e.org.gate = gate
		e.org.mu.Unlock()
		start := time.Now()
		_, err = e.n.GetObject(t.Context(), info, 0, info.Size)
		if !errors.Is(err, gateway.ErrUnavailable) || retryAfterOf(err) <= 0 {
			t.Fatalf("GET of a hung origin: %v, want unavailable with a hint", err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Fatalf("answered after %v, want 3s", took)
		}
		close(gate)
		got, err := get(t.Context(), e.n, "b", "k", 0, -1)
		if err != nil || string(got) != string(data) {
			t.Fatalf("GET after the origin answered: %v", err)
		}
		if n := e.org.rangeCalls("b", "k", 0); n != 1 {
			t.Fatalf("first chunk read %d times, want 1 (the read went on)", n)
		}
	})
}
