package integrity

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"hash/crc64"
	mrand "math/rand/v2"
	"testing"
)

// wantsFor computes, with the standard library alone, what an origin would
// report for data.
func wantsFor(data []byte) []Want {
	b64 := base64.StdEncoding.EncodeToString
	s1, s256, m := sha1.Sum(data), sha256.Sum256(data), md5.Sum(data)
	return []Want{
		{CRC64NVME, EncodeCRC64(crc64.Checksum(data, stdNVME))},
		{CRC32C, EncodeCRC32(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))},
		{CRC32, EncodeCRC32(crc32.ChecksumIEEE(data))},
		{SHA1, b64(s1[:])},
		{SHA256, b64(s256[:])},
		{MD5, `"` + hex.EncodeToString(m[:]) + `"`},
	}
}

func TestCheckerStreamsChunksInOrder(t *testing.T) {
	data := randomBytes(t, 1<<20+17)
	r := mrand.New(mrand.NewPCG(9, 9))
	for _, w := range wantsFor(data) {
		t.Run(string(w.Algorithm), func(t *testing.T) {
			c, err := NewChecker(w)
			if err != nil {
				t.Fatal(err)
			}
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+r.IntN(300_000))
				c.Write(rest[:k])
				rest = rest[k:]
			}
			if c.Written() != int64(len(data)) {
				t.Fatalf("Written %d", c.Written())
			}
			if err := c.Verify(); err != nil {
				t.Fatalf("the right bytes: %v", err)
			}

			bad, _ := NewChecker(w)
			flipped := append([]byte(nil), data...)
			flipped[len(flipped)/2] ^= 1
			bad.Write(flipped)
			if err := bad.Verify(); !errors.Is(err, ErrMismatch) {
				t.Fatalf("one flipped bit: %v, want ErrMismatch", err)
			}
			short, _ := NewChecker(w)
			short.Write(data[:len(data)-1])
			if err := short.Verify(); !errors.Is(err, ErrMismatch) {
				t.Fatalf("one byte short: %v, want ErrMismatch", err)
			}
		})
	}
	all, err := NewChecker(wantsFor(data)...)
	if err != nil {
		t.Fatal(err)
	}
	all.Write(data)
	if err := all.Verify(); err != nil {
		t.Fatalf("all algorithms at once: %v", err)
	}
}

func TestCheckerRefusesWhatItCannotCheck(t *testing.T) {
	for _, tc := range []struct {
		w    Want
		want error
	}{
		{Want{CRC64NVME, "AAAAAAAAAAA=-3"}, ErrUnsupported},                 // COMPOSITE
		{Want{MD5, `"0123456789abcdef0123456789abcdef-2"`}, ErrUnsupported}, // multipart ETag
		{Want{"CRC16", "AAA="}, ErrUnsupported},
		{Want{CRC32C, "not base64!"}, ErrMalformed},
		{Want{CRC32C, "AAAAAAAAAAA="}, ErrMalformed}, // 8 bytes for a 4-byte CRC
		{Want{MD5, `"abc"`}, ErrMalformed},
	} {
		if _, err := NewChecker(tc.w); !errors.Is(err, tc.want) {
			t.Errorf("NewChecker(%+v) = %v, want %v", tc.w, err, tc.want)
		}
	}
	c, err := NewChecker()
	if err != nil || c.Verify() != nil {
		t.Fatalf("a checker with nothing to check: %v", err)
	}
}
