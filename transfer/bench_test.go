package transfer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// benchBlocks is how many 4 MiB blocks one benchmark op moves; they cycle
// over benchDistinct distinct blocks to keep memory low (the client keeps
// no cache, so a repeat costs the same as a new block).
const (
	benchBlocks   = 64
	benchDistinct = 8
)

func benchData(b *testing.B) ([]cid.Cid, [][]byte) {
	ids := make([]cid.Cid, benchDistinct)
	blocks := make([][]byte, benchDistinct)
	for i := range ids {
		ids[i], blocks[i] = randomBlock(b, blockSize)
	}
	return ids, blocks
}

// BenchmarkRawStream is the baseline: bare libp2p streams (TCP+TLS+yamux)
// moving the same bytes with no protocol, one stream per block or all
// blocks on one stream, optionally hashing each block as GetBlock does.
func BenchmarkRawStream(b *testing.B) {
	_, blocks := benchData(b)
	for _, bc := range []struct {
		name      string
		perStream bool
		verify    bool
	}{
		{"stream-per-block", true, false},
		{"one-stream", false, false},
		{"stream-per-block+sha256", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv, cli := newHost(b), newHost(b)
			const proto = "/shoal/bench-raw/1"
			srv.SetStreamHandler(proto, func(s network.Stream) {
				defer s.Close()
				var n [1]byte
				if _, err := io.ReadFull(s, n[:]); err != nil {
					_ = s.Reset()
					return
				}
				for i := range int(n[0]) {
					if _, err := s.Write(blocks[i%benchDistinct]); err != nil {
						_ = s.Reset()
						return
					}
				}
			})
			ctx := context.Background()
			if err := cli.Connect(ctx, info(srv)); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, blockSize)
			fetch := func(count int) {
				s, err := cli.NewStream(ctx, srv.ID(), proto)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Write([]byte{byte(count)}); err != nil {
					b.Fatal(err)
				}
				for range count {
					if _, err := io.ReadFull(s, buf); err != nil {
						b.Fatal(err)
					}
					if bc.verify {
						_ = sha256.Sum256(buf)
					}
				}
				_ = s.Close()
			}
			b.SetBytes(benchBlocks * blockSize)
			b.ResetTimer()
			for range b.N {
				if bc.perStream {
					for range benchBlocks {
						fetch(1)
					}
				} else {
					fetch(benchBlocks)
				}
			}
		})
	}
}

// BenchmarkGetBlock moves 64 x 4 MiB blocks with the chunk protocol from
// one provider and from three at once (sub-ranges of 1 MiB), verifying each
// block against its CID, over real TCP+TLS libp2p connections in-process.
func BenchmarkGetBlock(b *testing.B) {
	ids, blocks := benchData(b)
	for _, bc := range []struct {
		name      string
		providers int
		parallel  int
		sub       int64
	}{
		{"providers=1", 1, 3, 1 << 20},
		{"providers=3/sub=1MiB", 3, 3, 1 << 20},
		{"providers=3/sub=2MiB", 3, 3, 2 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hd := newMemHandler()
			for i := range ids {
				hd.put(ids[i], blocks[i])
			}
			var provs []peer.AddrInfo
			for range bc.providers {
				provs = append(provs, info(startServer(b, hd, ServerConfig{}).h))
			}
			cl, _ := newTestClient(b, ClientConfig{MaxParallel: bc.parallel, SubRangeSize: bc.sub})
			ctx := context.Background()
			// Connect outside the timed loop, as a node's peers are.
			if _, err := cl.GetBlock(ctx, ids[0], provs); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchBlocks * blockSize)
			b.ResetTimer()
			defer func() {
				b.ReportMetric(counterValue(cl.metrics.stalls)/float64(b.N), "stalls/op")
			}()
			for range b.N {
				for i := range benchBlocks {
					if _, err := cl.GetBlock(ctx, ids[i%benchDistinct], provs); err != nil {
						b.Fatal(fmt.Errorf("block %d: %w", i, err))
					}
				}
			}
		})
	}
}
