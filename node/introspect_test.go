package node

import (
	"testing"
	"time"

	"github.com/shoal-cache/shoal/transfer"
)

// TestSwarmPeersView: after member 0 reads an object the cluster spreads
// over its homes, its view of the others shows the bytes each sent it, the
// blocks each holds (asked live, matching their stores) and a penalty it
// gave one of them.
func TestSwarmPeersView(t *testing.T) {
	s := newSwarm(t, 3, Config{}, nil)
	data := randBytes(6*cs+100, 7)
	s.org.set("b", "obj", data)
	mustGet(t, s.members[0].n, "obj", data)
	a := s.members[0]
	liar := s.members[1].h.ID()
	a.n.cl.Transfer.(*transfer.Client).PenalizeLiar(liar, "test")

	ps, err := a.n.Peers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("%d peers, want 2: %+v", len(ps), ps)
	}
	var in int64
	for _, p := range ps {
		var m *member
		for _, o := range s.members[1:] {
			if o.h.ID().String() == p.ID {
				m = o
			}
		}
		if m == nil {
			t.Fatalf("unknown peer %s", p.ID)
		}
		st := m.store.Stats()
		if p.BlocksHeld != st.Blocks || p.BytesHeld != st.Bytes {
			t.Errorf("peer %s: %d blocks, %d bytes held; its store has %d, %d", p.ID, p.BlocksHeld, p.BytesHeld, st.Blocks, st.Bytes)
		}
		if (p.BytesIn > 0) != (p.ReceiveRate > 0) {
			t.Errorf("peer %s: %d bytes in at %v B/s", p.ID, p.BytesIn, p.ReceiveRate)
		}
		in += p.BytesIn
		if penalized := m.h.ID() == liar; p.Penalized != penalized || p.PenaltyEnd.After(time.Now()) != penalized {
			t.Errorf("peer %s: penalized %v until %v, want penalized %v", p.ID, p.Penalized, p.PenaltyEnd, penalized)
		}
	}
	if in == 0 {
		t.Fatalf("member 0 read %d bytes and counts none from its peers: %+v", len(data), ps)
	}
}
