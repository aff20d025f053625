package content

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// A block written in pieces of any size names the same CID as hashing it
// whole, and verifies against that CID.
func TestBuilderMatchesSum(t *testing.T) {
	data := randomBytes(t, 1<<20+17)
	for _, h := range []Hash{SHA256, BLAKE3} {
		for _, piece := range []int{1 << 20, 4096, 1000, 1} {
			if piece == 1 && h == BLAKE3 {
				piece = 7 // byte-at-a-time over 1 MiB is slow under -race
			}
			b := NewBuilder(h, len(data))
			for off := 0; off < len(data); off += piece {
				if _, err := b.Write(data[off:min(off+piece, len(data))]); err != nil {
					t.Fatalf("%s/%d: write at %d: %v", h, piece, off, err)
				}
			}
			want := Sum(h, data)
			blk, err := b.Block()
			if err != nil {
				t.Fatalf("%s/%d: Block: %v", h, piece, err)
			}
			if !blk.CID().Equals(want) || !bytes.Equal(blk.Data(), data) {
				t.Fatalf("%s/%d: got %s, want %s", h, piece, blk.CID(), want)
			}
			vb, err := b.Verify(want)
			if err != nil || !vb.CID().Equals(want) || !bytes.Equal(vb.Data(), data) {
				t.Fatalf("%s/%d: Verify: %v", h, piece, err)
			}
		}
	}
}

func TestBuilderEmpty(t *testing.T) {
	b := NewBuilder(SHA256, 0)
	blk, err := b.Block()
	if err != nil || !blk.CID().Equals(Sum(SHA256, nil)) || len(blk.Data()) != 0 {
		t.Fatalf("empty block: %v %s", err, blk.CID())
	}
}

func TestBuilderRefuses(t *testing.T) {
	data := randomBytes(t, 100)
	b := NewBuilder(SHA256, len(data))
	if _, err := b.Block(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Block of an empty builder: %v, want ErrIncomplete", err)
	}
	if _, err := b.Write(data[:60]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(Sum(SHA256, data)); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Verify of a partial block: %v, want ErrIncomplete", err)
	}
	if n, err := b.Write(data[:41]); !errors.Is(err, ErrOverflow) || n != 0 {
		t.Fatalf("write past size: n=%d err=%v, want 0, ErrOverflow", n, err)
	}
	if got := b.Bytes(); !bytes.Equal(got, data[:60]) {
		t.Fatal("a refused write changed the bytes")
	}
	if _, err := b.Write(data[60:]); err != nil {
		t.Fatal(err)
	}
	if !b.Full() || b.Len() != 100 || b.Size() != 100 {
		t.Fatalf("Full %v Len %d Size %d", b.Full(), b.Len(), b.Size())
	}

	other := Sum(SHA256, []byte("other"))
	shaOK := Sum(SHA256, data)
	short, _ := mh.Sum(data, mh.SHA2_256, 16)
	for name, c := range map[string]cid.Cid{
		"other digest":   other,
		"other hash":     Sum(BLAKE3, data),
		"other codec":    SumCodec(SHA256, cid.DagCBOR, data),
		"cidv0":          cid.NewCidV0(shaOK.Hash()),
		"truncated hash": cid.NewCidV1(cid.Raw, short),
		"undefined":      cid.Undef,
	} {
		if _, err := b.Verify(c); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: Verify = %v, want ErrMismatch", name, err)
		}
	}
	if _, err := b.Verify(shaOK); err != nil {
		t.Fatalf("right cid after refusals: %v", err)
	}
}

// Bytes already written stay put while later writes go on (readers may
// hold them).
func TestBuilderBytesStable(t *testing.T) {
	data := randomBytes(t, 64)
	b := NewBuilder(BLAKE3, len(data))
	_, _ = b.Write(data[:10])
	first := b.Bytes()
	_, _ = b.Write(data[10:])
	if !bytes.Equal(first, data[:10]) || len(first) != 10 {
		t.Fatal("an earlier Bytes slice changed")
	}
	if &first[0] != &b.Bytes()[0] {
		t.Fatal("the buffer moved: a reader's slice no longer aliases it")
	}
}

// BenchmarkBuilder hashes a 4 MiB chunk written in 32 KiB pieces (an origin
// read), against Sum over the whole chunk.
func BenchmarkBuilder(b *testing.B) {
	const size, piece = 4 << 20, 32 << 10
	data := randomBytes(b, size)
	for _, h := range []Hash{SHA256, BLAKE3} {
		b.Run(string(h)+"/builder", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				bl := NewBuilder(h, size)
				for off := 0; off < size; off += piece {
					_, _ = bl.Write(data[off : off+piece])
				}
				if _, err := bl.Block(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(h)+"/sum", func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				NewBlock(h, data)
			}
		})
	}
}
