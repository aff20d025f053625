package node

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/routing"
)

// forgery is a made-up version of an object: other bytes of the same size,
// cut into chunks whose CIDs match them.
type forgery struct {
	data   []byte
	chunks []cid.Cid
	blocks map[cid.Cid][]byte
}

func forge(size int, seed uint64) forgery {
	f := forgery{data: randBytes(size, seed), blocks: map[cid.Cid][]byte{}}
	for off := 0; off < size; off += cs {
		b := f.data[off:min(off+cs, size)]
		c := content.Sum(content.SHA256, b)
		f.chunks = append(f.chunks, c)
		f.blocks[c] = b
	}
	return f
}

// manifest is the forger's manifest of v, with chunk checksums of its
// forged bytes under alg (SumNone: none).
func (f forgery) manifest(v catalog.Version, alg byte) (cid.Cid, []byte) {
	m := Manifest{Bucket: v.Bucket, Key: v.Key, ETag: v.ETag, Size: v.Size, ChunkSize: v.ChunkSize,
		Hash: content.Hash(v.Hash), Chunks: f.chunks}
	if alg != SumNone {
		m.SumAlg = alg
		for off := int64(0); off < v.Size; off += v.ChunkSize {
			m.Sums = append(m.Sums, chunkSum(alg, f.data[off:min(off+v.ChunkSize, v.Size)]))
		}
	}
	c, b := m.CID()
	return c, b
}

func readAll(ctx context.Context, n *Node, bucket, key string) ([]byte, error) {
	return get(ctx, n, bucket, key, 0, -1)
}

// A member publishes a signed record of a forged manifest (its chunks'
// checksums consistent with its forged bytes) dated before the honest
// one, and serves the forged blocks. With a full-object CRC from the
// origin the node refuses the manifest, reads the origin's bytes,
// penalizes the publisher and keeps none of the forged blocks.
func TestForgedManifestRefusedByOriginCRC(t *testing.T) {
	const size = 6*cs + 123
	evil := peer.ID("evil")
	data := randBytes(size, 41)
	f := forge(size, 42)
	cfg := Config{ChunkSize: cs}
	cfg.Fetch.ManifestWait = time.Minute // every chunk waits for the lookup
	e := newClusterEnvWith(t, []peer.ID{evil}, cfg, func(e *clusterEnv) { e.org.crc = true })
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), size)
	mc, mb := f.manifest(v, SumCRC64NVME)
	blocks := map[cid.Cid][]byte{mc: mb}
	for c, b := range f.blocks {
		blocks[c] = b
	}
	e.tr.get = func(c cid.Cid) ([]byte, error) {
		if b, ok := blocks[c]; ok {
			return b, nil
		}
		return nil, routing.ErrNotFound
	}
	forger := e.router.net.Router(peer.AddrInfo{ID: evil})
	ctx := t.Context()
	for c := range blocks {
		if err := forger.Provide(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	rec := routing.ManifestRecord{Bucket: "b", Key: "k", ETag: v.ETag, Size: size, ChunkSize: cs, Hash: v.Hash,
		Manifest: mc, Timestamp: time.Now().Add(-time.Minute), Publisher: evil}
	if err := forger.PutManifestRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}

	got, err := readAll(ctx, e.n, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the node served the forged object")
	}
	// The lookup runs in the background (chunks whose home is the forger
	// go to the origin after ManifestWait).
	await(t, "forged manifest rejected", func() bool {
		return e.n.m.manifestsRejected.Load() == 1
	})
	if !e.tr.Penalized(evil) {
		t.Error("the forger was not penalized")
	}
	for c := range blocks {
		if ok, _ := e.store.Has(ctx, c); ok {
			t.Errorf("forged block %s kept in the store", c)
		}
	}
	// The honest version is verified and its manifest published beside
	// the forged record.
	if ok, _ := e.cat.Verified(ctx, v); !ok {
		t.Error("the version read from the origin was not verified against its CRC")
	}
	await(t, "honest manifest published", func() bool {
		recs, err := e.router.GetManifestRecords(ctx, "b", "k", v.ETag, cs, v.Hash)
		return err == nil && len(recs) == 2
	})
}

// A forger's manifest that copies the honest chunk checksums (so they
// combine to the origin's CRC) but names forged chunks is caught as the
// first forged chunk arrives: it does not match its checksum.
func TestForgedChunkUnderHonestChecksums(t *testing.T) {
	const size = 4 * cs
	evil := peer.ID("evil")
	data := randBytes(size, 51)
	f := forge(size, 52)
	// The reader waits for the manifest lookup (the forged record is the
	// only one) rather than asking the chunk's home meanwhile.
	cfg := Config{ChunkSize: cs}
	cfg.Fetch.ManifestWait = time.Minute
	e := newClusterEnvWith(t, []peer.ID{evil}, cfg, func(e *clusterEnv) { e.org.crc = true })
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), size)
	m := Manifest{Bucket: "b", Key: "k", ETag: v.ETag, Size: size, ChunkSize: cs, Hash: content.Hash(v.Hash),
		Chunks: f.chunks, SumAlg: SumCRC64NVME}
	for off := 0; off < size; off += cs {
		m.Sums = append(m.Sums, chunkSum(SumCRC64NVME, data[off:off+cs]))
	}
	mc, mb := m.CID()
	blocks := map[cid.Cid][]byte{mc: mb}
	for c, b := range f.blocks {
		blocks[c] = b
	}
	e.tr.get = func(c cid.Cid) ([]byte, error) {
		if b, ok := blocks[c]; ok {
			return b, nil
		}
		return nil, routing.ErrNotFound
	}
	forger := e.router.net.Router(peer.AddrInfo{ID: evil})
	ctx := t.Context()
	for c := range blocks {
		if err := forger.Provide(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := forger.PutManifestRecord(ctx, routing.ManifestRecord{Bucket: "b", Key: "k", ETag: v.ETag, Size: size,
		ChunkSize: cs, Hash: v.Hash, Manifest: mc, Timestamp: time.Now(), Publisher: evil}); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(ctx, e.n, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the node served forged bytes")
	}
	if e.n.m.forgeries.Load() < 1 || !e.tr.Penalized(evil) {
		t.Errorf("forgeries %d, forger penalized %v: want the forgery caught and its publisher penalized",
			e.n.m.forgeries.Load(), e.tr.Penalized(evil))
	}
	for c := range f.blocks {
		if ok, _ := e.store.Has(ctx, c); ok {
			t.Errorf("forged block %s kept in the store", c)
		}
	}
}

// A member that is home for some chunks sends forged ones (their CIDs
// match the forged bytes, so the transfer alone cannot tell). A full read
// fails (the client never gets complete wrong bytes), the version is
// dropped, the next read is the origin's, and the liar is penalized once
// the origin's chunks show what it sent was not theirs. With a full-object
// CRC or only an MD5 ETag.
func TestLyingHomeCaughtOnFullRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		crc, md5 bool
	}{{"crc64nvme", true, false}, {"md5-etag", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 12 * cs
			evil := peer.ID("evil")
			data := randBytes(size, 61)
			f := forge(size, 62)
			e := newClusterEnvWith(t, []peer.ID{evil}, Config{ChunkSize: cs, SpotCheckRate: -1}, func(e *clusterEnv) {
				e.org.crc, e.org.md5 = tc.crc, tc.md5
			})
			e.org.set("b", "k", data)
			v := e.n.version("b", "k", etagOf(data), size)
			place := e.n.snapshot()
			lies := 0
			for i := range v.NumChunks() {
				if !place.HomeOf(v, i) {
					lies++
				}
			}
			if lies == 0 {
				t.Fatal("test setup: the liar is home of no chunk")
			}
			e.tr.fetch = func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
				_, i, err := decodeChunkKey(key)
				if err != nil {
					return cid.Undef, nil, err
				}
				return f.chunks[i], f.blocks[f.chunks[i]], nil
			}
			ctx := t.Context()
			got, err := readAll(ctx, e.n, "b", "k")
			if err == nil {
				if bytes.Equal(got, data) {
					t.Fatal("the full read succeeded with the origin's bytes though the liar was home of chunks")
				}
				t.Fatalf("a full read returned %d wrong bytes without an error", len(got))
			}
			if int64(len(got)) >= size {
				t.Fatalf("the client got %d bytes of %d before the error", len(got), size)
			}
			if e.n.m.forgeries.Load() < 1 {
				t.Error("the forgery was not counted")
			}
			got, err = readAll(ctx, e.n, "b", "k")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("second read: %v (equal %v)", err, bytes.Equal(got, data))
			}
			if !e.tr.Penalized(evil) {
				t.Error("the lying home was not penalized")
			}
			for c := range f.blocks {
				if ok, _ := e.store.Has(ctx, c); ok {
					t.Errorf("forged block %s kept in the store", c)
				}
			}
		})
	}
}

// Where the origin offers no integrity data, the auditor of a chunk (its
// second home) re-reads a fraction of the chunks it got from peers from the
// origin; here every one (rate 1), so the lie is found and the version
// dropped.
func TestSpotCheckCatchesLie(t *testing.T) {
	const size = 8 * cs
	evil := peer.ID("evil")
	data := randBytes(size, 71)
	f := forge(size, 72)
	e := newClusterEnvWith(t, []peer.ID{evil}, Config{ChunkSize: cs, SpotCheckRate: 1}, nil)
	e.org.set("b", "k", data)
	v := e.n.version("b", "k", etagOf(data), size)
	e.tr.fetch = func(p peer.ID, key []byte) (cid.Cid, []byte, error) {
		_, i, err := decodeChunkKey(key)
		if err != nil {
			return cid.Undef, nil, err
		}
		return f.chunks[i], f.blocks[f.chunks[i]], nil
	}
	ctx := t.Context()
	rc, err := e.n.GetObject(ctx, mustHead(t, e.n, "b", "k"), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc) // the origin offers nothing to check a stream against
	rc.Close()
	await(t, "spot check finds the lie", func() bool { return e.n.m.spotChecks.lies.Load() > 0 })
	if !e.tr.Penalized(evil) {
		t.Error("the liar was not penalized")
	}
	if !e.n.trust.isDistrusted(v) {
		t.Error("the version is still trusted")
	}
	got, err := readAll(ctx, e.n, "b", "k")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after the spot check: %v (equal %v)", err, bytes.Equal(got, data))
	}
}

func mustHead(t *testing.T, n *Node, bucket, key string) gateway.ObjectInfo {
	t.Helper()
	info, err := n.HeadObject(t.Context(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
