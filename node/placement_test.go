package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/transfer"
)

// TestPenalizedHomeOneOriginRead: when a chunk's first home is penalized
// and this node comes next, a local reader and a peer asking this node as
// the chunk's home share one origin read (they used to run in two flights
// with two origin reads: the reader's flight decided "not home" without the
// penalty, then passed over the penalized home and reached this node).
func TestPenalizedHomeOneOriginRead(t *testing.T) {
	others := testPeers(3)
	e := newClusterEnv(t, others)
	data := randBytes(cs, 21)
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), int64(len(data)))
	// Find a chunk layout where this node is second: one chunk, so try
	// other keys until the order fits.
	key := ""
	for j := range 200 {
		k := fmt.Sprintf("k%d", j)
		vj := v
		vj.Key = k
		order := e.homeOrder(vj, 0)
		if order[1] == e.self {
			key = k
			e.org.set("b", k, data)
			v = vj
			break
		}
	}
	if key == "" {
		t.Fatal("no key with this node second in the home order")
	}
	first := e.homeOrder(v, 0)[0]
	e.tr.penalize(first)
	e.tr.fetch = func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
		return cid.Undef, nil, fmt.Errorf("dial: %w", transfer.ErrUnavailable)
	}
	e.tr.meta = func(p peer.ID, key []byte) ([]byte, error) { return nil, transfer.ErrUnavailable }
	if _, err := e.n.HeadObject(t.Context(), "b", key); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	e.org.mu.Lock()
	e.org.gate = gate
	e.org.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		got, err := get(t.Context(), e.n, "b", key, 0, -1)
		if err == nil && string(got) != string(data) {
			err = fmt.Errorf("reader got other bytes")
		}
		errs <- err
	})
	wg.Go(func() {
		_, got, err := e.n.PeerHandler().Fetch(context.Background(), encodeChunkKey(v, 0))
		if err == nil && string(got) != string(data) {
			err = fmt.Errorf("peer got other bytes")
		}
		errs <- err
	})
	// Both requests reach the origin gate (or join the one that did)
	// before it opens.
	// Both requests wait: either each in a flight of its own at the origin
	// (two reads), or both in the chunk's home flight (one read).
	eventually(t, 10*time.Second, "both requests waiting", func() bool {
		return e.org.rangeCalls("b", key, 0) >= 2 || e.n.waiters(homeFlightKey(v, 0)) == 2
	})
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g := e.org.rangeCalls("b", key, 0); g != 1 {
		t.Errorf("origin range requests for the chunk: %d, want 1", g)
	}
}
