package routing

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestMembers(t *testing.T) {
	const proto = "/shoal/test-members/1.0.0"
	key := testKey(t, 9)
	self := newTestHost(t, key, MembershipAuth)
	speaker1 := newTestHost(t, key, MembershipAuth)
	speaker2 := newTestHost(t, key, MembershipAuth)
	mute := newTestHost(t, key, MembershipAuth) // connected, but does not speak proto
	speaker1.SetStreamHandler(proto, func(s network.Stream) { s.Close() })
	speaker2.SetStreamHandler(proto, func(s network.Stream) { s.Close() })
	ctx := context.Background()
	for _, other := range []host.Host{speaker1, speaker2, mute} {
		if err := self.Connect(ctx, info(other)); err != nil {
			t.Fatal(err)
		}
	}
	m := NewMembers(self, proto)
	if m.Self() != self.ID() {
		t.Fatalf("Self = %s, want %s", m.Self(), self.ID())
	}
	want := []peer.ID{speaker1.ID(), speaker2.ID()}
	slices.Sort(want)
	eventually(t, 10*time.Second, "both speakers are members", func() bool {
		return slices.Equal(m.Members(), want)
	})

	// A member that goes away drops out once the cache expires.
	speaker2.Close()
	eventually(t, 10*time.Second, "closed speaker leaves", func() bool {
		return slices.Equal(m.Members(), []peer.ID{speaker1.ID()})
	})
	got := m.Members()
	got[0] = "mutated"
	if m.Members()[0] != speaker1.ID() {
		t.Fatal("Members returned its cached slice")
	}
}
