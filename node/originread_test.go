package node

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/node/originfetch"
)

// TestOriginStallResumes: an origin response that stops delivering
// mid-chunk is given up after the stall time and the missing bytes are
// asked for again from the first one missing; the reader gets the right
// bytes and the origin never sends a byte twice.
func TestOriginStallResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{})
		data := randBytes(cs, 41)
		e.org.set("b", "k", data)
		e.org.stalls["k"], e.org.stallAt = 1, int64(cs/3)

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		got, err := get(ctx, e.n, "b", "k", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("wrong bytes after a resumed origin read")
		}
		if a, b := e.org.rangeCalls("b", "k", 0), e.org.rangeCalls("b", "k", int64(cs/3)); a != 1 || b != 1 {
			t.Fatalf("range requests at 0 and at the first missing byte: %d and %d, want 1 and 1", a, b)
		}
		if r := e.n.origin.Counters().Resumes.Load(); r != 1 {
			t.Fatalf("resumes = %d, want 1", r)
		}
		if b := e.n.origin.Counters().Bytes.Load(); b != int64(cs) {
			t.Fatalf("origin bytes = %d, want %d (nothing twice)", b, cs)
		}
	})
}

// TestOriginStallGivesUp: an origin whose every response stalls fails the
// read after originfetch.DefaultMaxResumes resumes (no endless retrying), with an error
// the gateway maps to a 503, and the node still serves other objects.
func TestOriginStallGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{})
		e.org.set("b", "stuck", randBytes(cs, 42))
		e.org.stalls["stuck"], e.org.stallAt = 100, 1000
		good := randBytes(cs, 43)
		e.org.set("b", "good", good)

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := get(ctx, e.n, "b", "stuck", 0, -1)
		if err == nil {
			t.Fatal("read of an origin that always stalls succeeded")
		}
		if !errors.Is(err, originfetch.ErrStalled) || !errors.Is(err, gateway.ErrUnavailable) {
			t.Fatalf("error %v: want the origin stalled, as unavailable (503)", err)
		}
		if calls := e.org.count("GetRange"); calls != 1+originfetch.DefaultMaxResumes {
			t.Fatalf("GetRange calls = %d, want %d", calls, 1+originfetch.DefaultMaxResumes)
		}
		got, err := get(ctx, e.n, "b", "good", 0, -1)
		if err != nil || !bytes.Equal(got, good) {
			t.Fatalf("other object after a stuck one: %v", err)
		}
	})
}

// TestOriginHedgesSilentRequest: a range request that gets no answer within
// the stall time is sent once more; the reader gets the bytes from the
// second, the first is cancelled, and only one body is read.
func TestOriginHedgesSilentRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{})
		data := randBytes(cs, 44)
		e.org.set("b", "k", data)
		e.org.mute["k"] = 1

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		got, err := get(ctx, e.n, "b", "k", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("wrong bytes after a hedged origin request")
		}
		if calls := e.org.rangeCalls("b", "k", 0); calls != 2 {
			t.Fatalf("range requests = %d, want 2 (one hedge)", calls)
		}
		if h := e.n.origin.Counters().Hedges.Load(); h != 1 {
			t.Fatalf("hedges = %d, want 1", h)
		}
		if b := e.n.origin.Counters().Bytes.Load(); b != int64(cs) {
			t.Fatalf("origin bytes = %d, want %d", b, cs)
		}
	})
}

// TestOriginNoHedgeWhenPrompt: an origin that answers within the stall
// time gets exactly one request per chunk.
func TestOriginNoHedgeWhenPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{})
		data := randBytes(3*cs, 45)
		e.org.set("b", "k", data)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		got, err := get(ctx, e.n, "b", "k", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read: %v", err)
		}
		if calls := e.org.count("GetRange"); calls != 3 {
			t.Fatalf("range requests = %d, want 3", calls)
		}
		if h := e.n.origin.Counters().Hedges.Load(); h != 0 {
			t.Fatalf("hedges = %d, want 0", h)
		}
	})
}
