package node

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/transfer"
)

// busyHomes serves chunks of data as homes do, answering Busy to each
// chunk's first asks (busyFor of them, or always for peers in always).
type busyHomes struct {
	data    []byte
	busyFor int
	always  []peer.ID

	mu   sync.Mutex
	asks map[int64]int
}

func (b *busyHomes) fetch(p peer.ID, key []byte) (cid.Cid, []byte, error) {
	_, i, err := decodeChunkKey(key)
	if err != nil {
		return cid.Undef, nil, err
	}
	b.mu.Lock()
	if b.asks == nil {
		b.asks = map[int64]int{}
	}
	b.asks[i]++
	busy := b.asks[i] <= b.busyFor || slices.Contains(b.always, p)
	b.mu.Unlock()
	if busy {
		return cid.Undef, nil, fmt.Errorf("fetch: %w", transfer.ErrBusy)
	}
	c := b.data[i*cs : min((i+1)*cs, int64(len(b.data)))]
	return content.Sum(content.SHA256, c), c, nil
}

// TestBusyHomeIsAskedAgain: a home that answers Busy is asked again (it is
// alive and reads the chunk anyway) instead of the next candidate, which
// would read the chunk from the origin a second time.
func TestBusyHomeIsAskedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		others := testPeers(3)
		e := newClusterEnv(t, others)
		data := randBytes(12*cs, 21)
		e.org.set("b", "k", data)
		v := e.n.version("b", "k", etagOf(data), int64(len(data)))
		homes := &busyHomes{data: data, busyFor: 3}
		e.tr.fetch = homes.fetch
		mustGet(t, e.n, "k", data)

		wantOrigin := 0
		var firstHomes []peer.ID
		for i := range int64(12) {
			first := chunkHomes(v, i, e.self, others, nil, 1)[0]
			if first == e.self {
				wantOrigin++
				continue
			}
			firstHomes = append(firstHomes, first)
		}
		if len(firstHomes) == 0 {
			t.Fatal("test data homes every chunk on this node: it proves nothing")
		}
		if g := e.org.count("GetRange"); g != wantOrigin {
			t.Errorf("origin GETs %d, want %d (the chunks homed on this node only)", g, wantOrigin)
		}
		for i, n := range homes.asks {
			if n != 4 {
				t.Errorf("chunk %d: %d asks, want 4 (3 Busy, then served)", i, n)
			}
		}
		if got, want := e.n.m.homeBusy.Load(), int64(3*len(firstHomes)); got != want {
			t.Errorf("home_busy_retries_total %d, want %d", got, want)
		}
	})
}

// TestHomeBusyTooLongIsPassed: a home busy for longer than HomeBusyWait is
// passed for the next candidate, so a read never hangs on a busy home.
func TestHomeBusyTooLongIsPassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		others := testPeers(4)
		cfg := Config{ChunkSize: cs}
		cfg.Fetch.HomeBusyWait = 2 * time.Second
		e := newClusterEnvWith(t, others, cfg, nil)
		data := randBytes(8*cs, 22)
		e.org.set("b", "k", data)
		v := e.n.version("b", "k", etagOf(data), int64(len(data)))
		// The first home of a chunk homed elsewhere is always busy.
		var stuck peer.ID
		for i := range int64(8) {
			if h := chunkHomes(v, i, e.self, others, nil, 1)[0]; h != e.self {
				stuck = h
				break
			}
		}
		if stuck == "" {
			t.Fatal("test data homes every chunk on this node")
		}
		homes := &busyHomes{data: data, always: []peer.ID{stuck}}
		e.tr.fetch = homes.fetch
		start := time.Now()
		mustGet(t, e.n, "k", data)
		if took := time.Since(start); took < 2*time.Second {
			t.Errorf("read took %v: the busy home was not asked for HomeBusyWait", took)
		}
		for _, p := range e.tr.calls() {
			if p != stuck && !slices.Contains(others, p) {
				t.Fatalf("asked %s, not a member", p)
			}
		}
		// The chunks whose first home is stuck came from their next
		// candidate (or the origin when that is this node).
		asked := map[peer.ID]bool{}
		for _, p := range e.tr.calls() {
			asked[p] = true
		}
		for i := range int64(8) {
			h := chunkHomes(v, i, e.self, others, nil, 2)
			if h[0] == stuck && h[1] != e.self && !asked[h[1]] {
				t.Errorf("chunk %d: next candidate %s was never asked", i, h[1])
			}
		}
	})
}
