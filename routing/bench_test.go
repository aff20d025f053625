package routing

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

const (
	benchProto = "/shoal/bench-sink/1.0.0"
	benchBytes = 256 << 20
)

// BenchmarkStream sends 256 MiB over one stream between two hosts in one
// process: libp2p's plain TLS (no membership), Shoal's swarm-key-authenticated
// TLS, and libp2p's pnet under TLS. The auth figure should match plain TLS;
// pnet pays a second cipher over every byte.
func BenchmarkStream(b *testing.B) {
	key := testKey(b, 9)
	b.Run("plain-tls", func(b *testing.B) {
		benchStream(b, newPlainTLSHost(b), newPlainTLSHost(b))
	})
	b.Run("auth-tls", func(b *testing.B) {
		benchStream(b, newTestHost(b, key, MembershipAuth), newTestHost(b, key, MembershipAuth))
	})
	b.Run("pnet-tls", func(b *testing.B) {
		benchStream(b, newTestHost(b, key, MembershipPNet), newTestHost(b, key, MembershipPNet))
	})
}

func newPlainTLSHost(b *testing.B) host.Host {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

func benchStream(b *testing.B, src, dst host.Host) {
	ctx := context.Background()
	dst.SetStreamHandler(benchProto, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(io.Discard, s); err != nil {
			s.Reset()
			return
		}
		s.Write([]byte{1})
	})
	if err := src.Connect(ctx, info(dst)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for b.Loop() {
		s, err := src.NewStream(ctx, dst.ID(), benchProto)
		if err != nil {
			b.Fatal(err)
		}
		for sent := 0; sent < benchBytes; sent += len(buf) {
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.CloseWrite(); err != nil {
			b.Fatal(err)
		}
		var ack [1]byte
		if _, err := io.ReadFull(s, ack[:]); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkFindProviders measures one FindProviders lookup for a provided
// CID from a random other node of a 12-node loopback swarm.
func BenchmarkFindProviders(b *testing.B) {
	s := newSwarm(b, 12, Config{}).routers
	ctx := context.Background()
	const nKeys = 64
	for i := range nKeys {
		if err := s[i%len(s)].Provide(ctx, chunkCID(5000+i)); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until every key is visible from a non-owner before timing.
	for i := range nKeys {
		eventually(b, 30*time.Second, "key provided", func() bool {
			ais, _ := s[(i+1)%len(s)].FindProviders(ctx, chunkCID(5000+i), 1)
			return len(ais) > 0
		})
	}
	for _, limit := range []int{1, DefaultFindLimit} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			i := 0
			for b.Loop() {
				k := i % nKeys
				ais, err := s[(k+1+i%5)%len(s)].FindProviders(ctx, chunkCID(5000+k), limit)
				if err != nil || len(ais) == 0 {
					b.Fatalf("key %d not found: %v", k, err)
				}
				i++
			}
		})
	}
}
