package integrity

import (
	"crypto/rand"
	"hash/crc32"
	"hash/crc64"
	mrand "math/rand/v2"
	"testing"
)

var stdNVME = crc64.MakeTable(polyCRC64NVME)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCRC64NVMECheckValue(t *testing.T) {
	// The catalogued check value of CRC-64/NVME.
	if got := ChecksumCRC64NVME([]byte("123456789")); got != 0xAE8B14860A799888 {
		t.Fatalf("CRC64NVME(123456789) = %#x, want 0xae8b14860a799888", got)
	}
	if got := ChecksumCRC64NVME(nil); got != 0 {
		t.Fatalf("CRC64NVME of nothing = %#x", got)
	}
}

// TestCRC64NVMEMatchesHashCRC64: the slicing-by-8 implementation agrees
// with hash/crc64 for every length and alignment, whole and streamed.
func TestCRC64NVMEMatchesHashCRC64(t *testing.T) {
	data := randomBytes(t, 70_000)
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 2047, 2048, 4099, 70_000} {
		for _, off := range []int{0, 1, 3} {
			if off+n > len(data) {
				continue
			}
			p := data[off : off+n]
			if got, want := ChecksumCRC64NVME(p), crc64.Checksum(p, stdNVME); got != want {
				t.Fatalf("len %d off %d: %#x, want %#x", n, off, got, want)
			}
		}
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	h := NewCRC64NVME()
	for rest := data; len(rest) > 0; {
		k := min(len(rest), r.IntN(5000))
		h.Write(rest[:k])
		rest = rest[k:]
	}
	if got, want := h.Sum64(), crc64.Checksum(data, stdNVME); got != want {
		t.Fatalf("streamed %#x, want %#x", got, want)
	}
}

// splits cuts n bytes into random pieces, some empty.
func splits(r *mrand.Rand, n int) []int {
	var cuts []int
	for left := n; left > 0; {
		k := min(left, r.IntN(n/3+2))
		if r.IntN(8) == 0 {
			k = 0
		}
		cuts = append(cuts, k)
		left -= k
	}
	return cuts
}

// TestCombineOverRandomSplits: combining the CRCs of the pieces of a random
// split gives the CRC of the whole, as hash/crc64 and hash/crc32 compute
// it, for all three polynomials.
func TestCombineOverRandomSplits(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 11))
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for round := range 200 {
		n := r.IntN(300_000)
		if round == 0 {
			n = 0
		}
		data := randomBytes(t, n)
		var c64 uint64
		var c32c, c32 uint32
		off := 0
		for _, k := range splits(r, n) {
			p := data[off : off+k]
			off += k
			c64 = CombineCRC64NVME(c64, crc64.Checksum(p, stdNVME), int64(k))
			c32c = CombineCRC32C(c32c, crc32.Checksum(p, castagnoli), int64(k))
			c32 = CombineCRC32(c32, crc32.ChecksumIEEE(p), int64(k))
		}
		if want := crc64.Checksum(data, stdNVME); c64 != want {
			t.Fatalf("round %d, %d bytes: combined CRC64NVME %#x, want %#x", round, n, c64, want)
		}
		if want := crc32.Checksum(data, castagnoli); c32c != want {
			t.Fatalf("round %d, %d bytes: combined CRC32C %#x, want %#x", round, n, c32c, want)
		}
		if want := crc32.ChecksumIEEE(data); c32 != want {
			t.Fatalf("round %d, %d bytes: combined CRC32 %#x, want %#x", round, n, c32, want)
		}
	}
}

// TestCombineLongRuns: runs built by doubling agree with a direct CRC,
// and combining stays associative for lengths far beyond anything hashed
// here (2^40 bytes and more reach deep into the x^(2^k) table).
func TestCombineLongRuns(t *testing.T) {
	const mib = 1 << 20
	c, l := ChecksumCRC64NVME(make([]byte, mib)), int64(mib)
	for l < 16*mib {
		c, l = CombineCRC64NVME(c, c, l), 2*l
	}
	if want := ChecksumCRC64NVME(make([]byte, 16*mib)); c != want {
		t.Fatalf("16 MiB of zeros by doubling: %#x, direct %#x", c, want)
	}
	r := mrand.New(mrand.NewPCG(3, 5))
	for range 100 {
		a, b, x := r.Uint64(), r.Uint64(), r.Uint64()
		lb, lx := r.Int64N(1<<62), r.Int64N(1<<40)
		left := CombineCRC64NVME(CombineCRC64NVME(a, b, lb), x, lx)
		right := CombineCRC64NVME(a, CombineCRC64NVME(b, x, lx), lb+lx)
		if left != right {
			t.Fatalf("combine not associative for lengths %d, %d", lb, lx)
		}
		a32, b32, x32 := uint32(a), uint32(b), uint32(x)
		if CombineCRC32C(CombineCRC32C(a32, b32, lb), x32, lx) != CombineCRC32C(a32, CombineCRC32C(b32, x32, lx), lb+lx) {
			t.Fatalf("CRC32C combine not associative for lengths %d, %d", lb, lx)
		}
	}
	if got := CombineCRC64NVME(c, 0, 0); got != c {
		t.Fatal("combining an empty run changed the CRC")
	}
}

// BenchmarkCRC64NVME: 32 KiB writes, as a chunk stream delivers them, with
// this package's tables and with hash/crc64's (which rebuilds its
// slicing tables on every large write for a polynomial it does not know).
func BenchmarkCRC64NVME(b *testing.B) {
	p := randomBytes(b, 32<<10)
	b.Run("integrity", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		var c uint64
		for b.Loop() {
			c = UpdateCRC64NVME(c, p)
		}
	})
	b.Run("hash-crc64", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		var c uint64
		for b.Loop() {
			c = crc64.Update(c, stdNVME, p)
		}
	})
}
