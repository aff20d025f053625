package content

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func TestSumVerify(t *testing.T) {
	for _, h := range []Hash{SHA256, BLAKE3} {
		t.Run(string(h), func(t *testing.T) {
			data := []byte("hello shoal")
			c := Sum(h, data)
			if c.Version() != 1 || c.Type() != cid.Raw {
				t.Fatalf("want CIDv1 raw, got %s", c)
			}
			if err := Verify(c, data); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := Verify(c, []byte("hello shoaL")); !errors.Is(err, ErrMismatch) {
				t.Fatalf("verify of other bytes: got %v, want ErrMismatch", err)
			}
		})
	}
}

func TestVerifyRejectsWeakHashes(t *testing.T) {
	data := []byte("x")
	id, _ := mh.Sum(data, mh.IDENTITY, -1)
	if err := Verify(cid.NewCidV1(cid.Raw, id), data); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("identity hash: got %v, want ErrUnsupported", err)
	}
	short, _ := mh.Sum(data, mh.SHA2_256, 16)
	if err := Verify(cid.NewCidV1(cid.Raw, short), data); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("truncated hash: got %v, want ErrUnsupported", err)
	}
	if err := Verify(cid.Undef, data); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("undefined cid: got %v", err)
	}
}

func TestParseHash(t *testing.T) {
	if _, err := ParseHash("md5"); err == nil {
		t.Fatal("md5 accepted")
	}
	if h, err := ParseHash("blake3"); err != nil || h != BLAKE3 {
		t.Fatalf("blake3: %v %v", h, err)
	}
}
