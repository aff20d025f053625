package integrity

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"sync"
)

// Reflected (LSB-first) polynomials of the CRCs S3 offers. All three start
// from all ones and invert the result, as hash/crc32 and hash/crc64 do.
const (
	// polyCRC64NVME is CRC-64/NVME (0xAD93D23594C93659, reflected), S3's
	// default checksum since 2025; check value of "123456789" 0xAE8B14860A799888.
	polyCRC64NVME = 0x9A6C9329AC4BC9B5
	polyCRC32C    = 0x82F63B78 // Castagnoli, crc32.Castagnoli
	polyCRC32     = 0xEDB88320 // IEEE, crc32.IEEE
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc64NVMETables are slicing-by-8 tables for CRC64NVME. hash/crc64 keeps
// such tables only for its ISO and ECMA polynomials and rebuilds them
// (16 KiB) on every large Update with any other table; building them once
// makes a stream of 32 KiB writes about as fast as one big write.
var crc64NVMETables = sync.OnceValue(func() *[8][256]uint64 {
	var t [8][256]uint64
	for i := range 256 {
		crc := uint64(i)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ polyCRC64NVME
			} else {
				crc >>= 1
			}
		}
		t[0][i] = crc
	}
	for i := range 256 {
		crc := t[0][i]
		for j := 1; j < 8; j++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[j][i] = crc
		}
	}
	return &t
})

// UpdateCRC64NVME returns the CRC64NVME of the bytes crc covers followed
// by p (crc 0 is the CRC of nothing), like crc64.Update.
func UpdateCRC64NVME(crc uint64, p []byte) uint64 {
	t := crc64NVMETables()
	crc = ^crc
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^ t[2][crc>>40&0xff] ^ t[1][crc>>48&0xff] ^ t[0][crc>>56]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return ^crc
}

// ChecksumCRC64NVME returns the CRC64NVME of p.
func ChecksumCRC64NVME(p []byte) uint64 { return UpdateCRC64NVME(0, p) }

// UpdateCRC32C returns the CRC32C of the bytes crc covers followed by p.
func UpdateCRC32C(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }

// ChecksumCRC32C returns the CRC32C (Castagnoli) of p.
func ChecksumCRC32C(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// crcMath is arithmetic modulo one reflected CRC polynomial, as zlib's
// crc32_combine does it: a polynomial is a word whose top bit is x^0.
type crcMath struct {
	poly uint64
	one  uint64 // x^0
	// x2n[k] = x^(2^k) mod poly. k reaches 3+63 for a length of 2^63-1
	// bytes (x^(8*len)).
	x2n [67]uint64
}

func newCRCMath(poly uint64, width uint) *crcMath {
	m := &crcMath{poly: poly, one: 1 << (width - 1)}
	p := m.one >> 1 // x^1
	for k := range m.x2n {
		m.x2n[k] = p
		p = m.mul(p, p)
	}
	return m
}

// mul returns a*b mod poly.
func (m *crcMath) mul(a, b uint64) uint64 {
	var p uint64
	for bit := m.one; a != 0 && bit != 0; bit >>= 1 {
		if a&bit != 0 {
			p ^= b
			a &^= bit
		}
		if b&1 != 0 {
			b = b>>1 ^ m.poly
		} else {
			b >>= 1
		}
	}
	return p
}

// combine returns the CRC of A||B from crc1 = CRC(A), crc2 = CRC(B) and
// len2 = len(B): shifting CRC(A) over len2 zero bytes is a multiplication
// by x^(8*len2), and the initial and final inversions cancel out.
func (m *crcMath) combine(crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1 // B is empty: its CRC is 0
	}
	x := m.one
	for k, n := 3, uint64(len2); n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			x = m.mul(m.x2n[k], x)
		}
	}
	return m.mul(x, crc1) ^ crc2
}

var (
	mathCRC64NVME = sync.OnceValue(func() *crcMath { return newCRCMath(polyCRC64NVME, 64) })
	mathCRC32C    = sync.OnceValue(func() *crcMath { return newCRCMath(polyCRC32C, 32) })
	mathCRC32     = sync.OnceValue(func() *crcMath { return newCRCMath(polyCRC32, 32) })
)

// CombineCRC64NVME returns the CRC64NVME of A||B given crc1 of A, crc2 of
// B and len2, the length of B in bytes.
func CombineCRC64NVME(crc1, crc2 uint64, len2 int64) uint64 {
	return mathCRC64NVME().combine(crc1, crc2, len2)
}

// CombineCRC32C is CombineCRC64NVME for CRC32C.
func CombineCRC32C(crc1, crc2 uint32, len2 int64) uint32 {
	return uint32(mathCRC32C().combine(uint64(crc1), uint64(crc2), len2))
}

// CombineCRC32 is CombineCRC64NVME for CRC32 (IEEE).
func CombineCRC32(crc1, crc2 uint32, len2 int64) uint32 {
	return uint32(mathCRC32().combine(uint64(crc1), uint64(crc2), len2))
}

// EncodeCRC64 and EncodeCRC32 give S3's encoding of a CRC: the base64 of
// its big-endian bytes.
func EncodeCRC64(v uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
}

// EncodeCRC32 is EncodeCRC64 for a 32-bit CRC.
func EncodeCRC32(v uint32) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, v))
}
