package routing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
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
	newer.Manifest = content.Sum(content.SHA256, []byte("another manifest"))
	newer.Timestamp = old.Timestamp.Add(time.Second)
	if err := a.PutManifestRecord(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := b.PutManifestRecord(ctx, old); err != nil {
		t.Fatal(err)
	}
	again := old
	again.Timestamp = old.Timestamp.Add(time.Hour) // the same claim, later
	if err := b.PutManifestRecord(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetManifestRecords(ctx, old.Bucket, old.Key, old.ETag, old.ChunkSize, old.Hash)
	if err != nil || len(got) != 2 || !recordsEqual(got[0], old) || !got[1].SameClaim(newer) {
		t.Fatalf("earliest first, the conflicting claim next: %+v, %v", got, err)
	}
	if _, err := b.GetManifestRecords(ctx, "x", "y", "z", 1, "h"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	a.Close()
	if err := a.Provide(ctx, c); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
