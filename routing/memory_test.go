package routing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestMemoryRouter(t *testing.T) {
	ctx := context.Background()
	n := NewMemoryNetwork()
	a, b := n.Router(peer.AddrInfo{ID: "peer-a"}), n.Router(peer.AddrInfo{ID: "peer-b"})
	c := chunkCID(1)
	if err := a.Provide(ctx, c); err != nil {
		t.Fatal(err)
	}
	ais, err := b.FindProviders(ctx, c, 0)
	if err != nil || len(ais) != 1 || ais[0].ID != "peer-a" {
		t.Fatalf("find = %v, %v", ais, err)
	}
	if ais, _ := a.FindProviders(ctx, c, 0); len(ais) != 0 {
		t.Fatalf("self returned as provider: %v", ais)
	}
	if err := a.StopProviding(ctx, c); err != nil {
		t.Fatal(err)
	}
	if ais, _ := b.FindProviders(ctx, c, 0); len(ais) != 0 {
		t.Fatalf("after stop: %v", ais)
	}

	old := testRecord(time.Unix(1700000000, 0))
	newer := old
	newer.Size++
	newer.Timestamp = old.Timestamp.Add(time.Second)
	if err := a.PutManifestRecord(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := b.PutManifestRecord(ctx, old); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetManifestRecord(ctx, old.Bucket, old.Key, old.ETag)
	if err != nil || got.Size != newer.Size {
		t.Fatalf("newest should win: %+v, %v", got, err)
	}
	if _, err := b.GetManifestRecord(ctx, "x", "y", "z"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	a.Close()
	if err := a.Provide(ctx, c); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
