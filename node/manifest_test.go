package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/internal/content"
)

func testManifest(size, chunk int64, h content.Hash) Manifest {
	m := Manifest{Bucket: "bkt", Key: "dir/obj.bin", ETag: `"abc-2"`, Size: size, ChunkSize: chunk, Hash: h}
	for i := int64(0); i*chunk < size; i++ {
		m.Chunks = append(m.Chunks, content.Sum(h, []byte{byte(i), byte(i >> 8)}))
	}
	return m
}

// withSums is m with chunk checksums under alg (format v2).
func withSums(m Manifest, alg byte) Manifest {
	m.SumAlg = alg
	m.Sums = nil
	for i := range m.Chunks {
		s := uint64(i)*0x9e3779b97f4a7c15 + 1
		if alg != SumCRC64NVME {
			s &= 0xffffffff
		}
		m.Sums = append(m.Sums, s)
	}
	return m
}

func TestManifestV2RoundTrip(t *testing.T) {
	for _, alg := range []byte{SumCRC64NVME, SumCRC32C, SumCRC32} {
		m := withSums(testManifest(5*(4<<20)+3, 4<<20, content.SHA256), alg)
		b := m.Encode()
		got, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("alg %d: %v", alg, err)
		}
		if got.SumAlg != alg || len(got.Sums) != len(m.Sums) || !bytes.Equal(got.Encode(), b) {
			t.Fatalf("alg %d: round trip changed the manifest: %+v", alg, got)
		}
		for i := range m.Sums {
			if got.Sums[i] != m.Sums[i] {
				t.Fatalf("alg %d: sum %d = %x, want %x", alg, i, got.Sums[i], m.Sums[i])
			}
		}
		// The checksums are part of the manifest's identity.
		c1, _ := m.CID()
		c2, _ := testManifest(5*(4<<20)+3, 4<<20, content.SHA256).CID()
		if c1.Equals(c2) {
			t.Fatal("a manifest with checksums has the CID of one without")
		}
	}
}

func TestDecodeManifestV2Rejects(t *testing.T) {
	good := withSums(testManifest(3*(4<<20), 4<<20, content.SHA256), SumCRC32C)
	enc := good.Encode()
	big := good
	big.Sums = append([]uint64(nil), good.Sums...)
	big.Sums[1] = 1 << 40 // a 32-bit CRC cannot be this
	badAlg := bytes.Clone(enc)
	badAlg[len(enc)-1-8*len(good.Sums)] = 9
	for name, b := range map[string][]byte{
		"truncated sums":  enc[:len(enc)-3],
		"trailing":        append(bytes.Clone(enc), 0),
		"32-bit overflow": big.Encode(),
		"unknown alg":     badAlg,
	} {
		if _, err := DecodeManifest(b); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: got %v, want ErrBadManifest", name, err)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	for _, m := range []Manifest{
		testManifest(0, 4<<20, content.SHA256),
		testManifest(1, 4<<20, content.SHA256),
		testManifest(10*(4<<20)+1, 4<<20, content.BLAKE3),
		testManifest(1<<40, 1<<30, content.SHA256),
	} {
		b := m.Encode()
		got, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !bytes.Equal(got.Encode(), b) || got.Size != m.Size || len(got.Chunks) != len(m.Chunks) {
			t.Fatalf("round trip changed the manifest: %+v", got)
		}
		c, b2 := m.CID()
		if c.Type() != ManifestCodec || content.Verify(c, b2) != nil {
			t.Fatalf("manifest cid %s does not verify", c)
		}
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	good := testManifest(3*(4<<20), 4<<20, content.SHA256)
	short := good
	short.Chunks = short.Chunks[:2]
	mixed := good
	mixed.Chunks = append([]cid.Cid{content.Sum(content.BLAKE3, []byte("x"))}, good.Chunks[1:]...)
	wrongCodec := good
	wrongCodec.Chunks = append([]cid.Cid{content.SumCodec(content.SHA256, cid.DagProtobuf, []byte("x"))}, good.Chunks[1:]...)
	noBucket := good
	noBucket.Bucket = ""
	zeroChunk := good
	zeroChunk.ChunkSize = 0
	badHash := good
	badHash.Hash = "md5"
	enc := good.Encode()
	cases := map[string][]byte{
		"empty":         nil,
		"magic":         []byte("NOTMANIFEST"),
		"version":       append([]byte("SHOALMF"), 9),
		"truncated":     enc[:len(enc)-1],
		"trailing":      append(bytes.Clone(enc), 0),
		"count":         short.Encode(),
		"mixed hash":    mixed.Encode(),
		"wrong codec":   wrongCodec.Encode(),
		"no bucket":     noBucket.Encode(),
		"zero chunk":    zeroChunk.Encode(),
		"unknown hash":  badHash.Encode(),
		"huge varint":   append([]byte("SHOALMF\x01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"huge count":    append([]byte("SHOALMF\x01\x01b\x00\x00"), 0x80, 0x80, 0x80, 0x80, 0x01, 0x01, 0x08, 's', 'h', 'a', '2', '-', '2', '5', '6', 0x80, 0x80, 0x80, 0x80, 0x01),
		"key too long":  append([]byte("SHOALMF\x01\x01b"), 0x80, 0x80, 0x01),
		"non-minimal":   append([]byte("SHOALMF\x01"), 0x81, 0x00, 'b'),
		"size overflow": append([]byte("SHOALMF\x01\x01b\x00\x00"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
	}
	for name, b := range cases {
		if _, err := DecodeManifest(b); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: got %v, want ErrBadManifest", name, err)
		}
	}
}

func FuzzManifestDecode(f *testing.F) {
	f.Add(testManifest(0, 4<<20, content.SHA256).Encode())
	f.Add(testManifest(3*(4<<20)-1, 4<<20, content.SHA256).Encode())
	f.Add(testManifest(5, 1, content.BLAKE3).Encode())
	f.Add([]byte("SHOALMF\x01"))
	f.Add(withSums(testManifest(3*(4<<20)-1, 4<<20, content.SHA256), SumCRC64NVME).Encode())
	f.Add(withSums(testManifest(2, 1, content.BLAKE3), SumCRC32).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error does not wrap ErrBadManifest: %v", err)
			}
			return
		}
		// Accepted manifests are consistent and re-encode to the same bytes.
		if m.ChunkSize <= 0 || int64(len(m.Chunks)) != (m.Size+m.ChunkSize-1)/m.ChunkSize {
			t.Fatalf("inconsistent manifest accepted: size %d chunk %d count %d", m.Size, m.ChunkSize, len(m.Chunks))
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("accepted manifest does not re-encode to its input")
		}
	})
}
