package node

import (
	"context"
	"io"
	"testing"

	"go.uber.org/goleak"

	"github.com/shoal-cache/shoal/catalog"
)

// TestCloseLeavesNothingRunning: after a node served readers, peers
// (Fetch, FetchStream: cut-through), home read-ahead and manifest lookups,
// Run's return and Close leave no goroutine of the node behind (announce,
// publish, task workers, flights, hedged origin requests).
func TestCloseLeavesNothingRunning(t *testing.T) {
	before := goleak.IgnoreCurrent()
	others := testPeers(3)
	e := &clusterEnv{store: newMemStore(), org: newFakeOrigin(), router: newRecordingRouter("self"),
		tr: &fakeTransfer{}, self: "self", others: others}
	cat, err := catalog.Open("", catalog.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	e.cat = cat
	e.n, err = New(Config{ChunkSize: cs}, e.store, e.org, cat,
		WithCluster(Cluster{Router: e.router, Transfer: e.tr, Members: fixedMembers{e.self, others}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.n.Run(ctx) }()

	data := randBytes(16*cs, 31)
	e.org.set("b", "k", data)
	mustGet(t, e.n, "k", data) // every home fails: this node reads them all
	e.org.set("b", "k2", data)
	v := e.n.version("b", "k2", etagOf(data), int64(len(data)))
	h := e.n.PeerHandler()
	if _, _, err := h.Fetch(t.Context(), encodeChunkKey(v, 0)); err != nil {
		t.Fatal(err)
	}
	s, err := h.FetchStream(t.Context(), encodeChunkKey(v, 1))
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); ; {
		b, err := s.Next(t.Context(), off)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		off += int64(len(b))
	}
	s.Close()
	// A stream left before the chunk arrived.
	s2, err := h.FetchStream(t.Context(), encodeChunkKey(v, 2))
	if err == nil {
		s2.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cat.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}
