package node

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/catalog"
)

// TestRendezvousStable: the order does not depend on member list order,
// self is just another candidate, and removing a member only moves the
// seeds it was first for.
func TestRendezvousStable(t *testing.T) {
	ps := testPeers(20)
	rev := slices.Clone(ps)
	slices.Reverse(rev)
	for i := range 200 {
		seed := fmt.Appendf(nil, "seed-%d", i)
		a := rendezvous(seed, ps[0], ps[1:], 5)
		b := rendezvous(seed, ps[19], rev[1:], 5)
		c := rendezvous(seed, ps[0], append(slices.Clone(ps), ps...), 5) // duplicates and self listed
		if len(a) != 5 || !slices.Equal(a, b) || !slices.Equal(a, c) {
			t.Fatalf("seed %d: orders differ: %v %v %v", i, a, b, c)
		}
		full := rendezvous(seed, ps[0], ps[1:], 20)
		if !slices.Equal(full[:5], a) {
			t.Fatalf("top 5 is not a prefix of the full order")
		}
		// Remove the member ranked third: the others keep their order.
		without := slices.DeleteFunc(slices.Clone(ps[1:]), func(p peer.ID) bool { return p == full[2] })
		if full[2] == ps[0] {
			continue
		}
		got := rendezvous(seed, ps[0], without, 19)
		want := slices.Delete(slices.Clone(full), 2, 3)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: removing a member reordered the rest", i)
		}
	}
	if got := rendezvous([]byte("x"), "self", nil, 3); !slices.Equal(got, []peer.ID{"self"}) {
		t.Errorf("alone: %v", got)
	}
}

// TestRendezvousBalanced: chunk homes spread evenly over the members.
func TestRendezvousBalanced(t *testing.T) {
	ps := testPeers(10)
	const chunks = 20000
	v := catalog.Version{Bucket: "b", Key: "big", ETag: `"e"`, Size: chunks * cs, ChunkSize: cs, Hash: "sha2-256"}
	count := map[peer.ID]int{}
	for i := range int64(chunks) {
		count[rendezvous(chunkSeed(v, i), ps[0], ps[1:], 1)[0]]++
	}
	mean := float64(chunks) / float64(len(ps))
	for _, p := range ps {
		// Binomial(20000, 0.1): sd ~42; allow 6 sd.
		if d := math.Abs(float64(count[p]) - mean); d > 6*math.Sqrt(mean*0.9) {
			t.Errorf("%s is home of %d chunks, mean %.0f", p, count[p], mean)
		}
	}
}

func TestChunkKeyRoundTrip(t *testing.T) {
	vs := []catalog.Version{
		{Bucket: "b", Key: "k", ETag: `"abc"`, Size: 5*cs + 1, ChunkSize: cs, Hash: "sha2-256"},
		{Bucket: "bucket-name", Key: "dir/obj\x00with\xffodd bytes", ETag: "", Size: 1, ChunkSize: 4 << 20, Hash: "blake3"},
	}
	for _, v := range vs {
		for _, i := range []int64{0, v.NumChunks() - 1} {
			gv, gi, err := decodeChunkKey(encodeChunkKey(v, i))
			if err != nil || gv != v || gi != i {
				t.Errorf("round trip %+v/%d: %+v/%d %v", v, i, gv, gi, err)
			}
		}
	}
	b, k, err := decodeMetaKey(encodeMetaKey("b", "some/key"))
	if err != nil || b != "b" || k != "some/key" {
		t.Errorf("meta key round trip: %q %q %v", b, k, err)
	}
}

func TestChunkKeyRejects(t *testing.T) {
	v := catalog.Version{Bucket: "b", Key: "k", ETag: `"e"`, Size: 3 * cs, ChunkSize: cs, Hash: "sha2-256"}
	bad := func(f func(*catalog.Version)) []byte {
		w := v
		f(&w)
		return encodeChunkKey(w, 0)
	}
	good := encodeChunkKey(v, 0)
	cases := map[string][]byte{
		"empty":          nil,
		"wrong tag":      append([]byte{metaKeyTag}, good[1:]...),
		"trailing":       append(slices.Clone(good), 0),
		"truncated":      good[:len(good)-1],
		"index too big":  encodeChunkKey(v, 3),
		"empty bucket":   bad(func(w *catalog.Version) { w.Bucket = "" }),
		"long bucket":    bad(func(w *catalog.Version) { w.Bucket = string(bytes.Repeat([]byte("b"), 256)) }),
		"unknown hash":   bad(func(w *catalog.Version) { w.Hash = "md5" }),
		"tiny chunks":    bad(func(w *catalog.Version) { w.ChunkSize = 1 }),
		"huge chunks":    bad(func(w *catalog.Version) { w.ChunkSize = 2 << 30 }),
		"empty object":   bad(func(w *catalog.Version) { w.Size = 0 }),
		"non-minimal":    append([]byte{chunkKeyTag, 0x81, 0x00}, good[2:]...),
		"varint too big": append([]byte{chunkKeyTag}, bytes.Repeat([]byte{0xff}, 11)...),
	}
	for name, k := range cases {
		if _, _, err := decodeChunkKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", name, err)
		}
	}
	for name, k := range map[string][]byte{
		"empty": nil, "chunk key": good, "empty bucket": encodeMetaKey("", "k"),
		"trailing": append(encodeMetaKey("b", "k"), 1),
	} {
		if _, _, err := decodeMetaKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("meta %s: %v, want ErrBadKey", name, err)
		}
	}
}

func TestMetaAnswerRejects(t *testing.T) {
	for name, b := range map[string]string{
		"not json":       "{",
		"unknown status": `{"s":"maybe"}`,
		"ok without obj": `{"s":"ok"}`,
		"other key":      `{"s":"ok","o":{"b":"b","k":"other","e":"x","s":1}}`,
		"negative size":  `{"s":"ok","o":{"b":"b","k":"k","e":"x","s":-1}}`,
		"negative age":   `{"s":"ok","o":{"b":"b","k":"k","e":"x","s":1},"a":-5}`,
	} {
		if _, err := decodeMetaAnswer([]byte(b), "b", "k"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzChunkKey: the decoder never panics, and whatever it accepts encodes
// back to the same bytes (one encoding per request).
func FuzzChunkKey(f *testing.F) {
	f.Add(encodeChunkKey(catalog.Version{Bucket: "b", Key: "k", ETag: `"e"`, Size: 3 * cs, ChunkSize: cs, Hash: "sha2-256"}, 2))
	f.Add(encodeMetaKey("b", "k"))
	f.Add([]byte{chunkKeyTag, 1, 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, i, err := decodeChunkKey(b)
		if err == nil {
			if !bytes.Equal(encodeChunkKey(v, i), b) {
				t.Fatalf("accepted %x but re-encodes differently", b)
			}
			if i < 0 || i >= v.NumChunks() || v.ChunkSize < minChunkSize {
				t.Fatalf("accepted an invalid request %+v/%d", v, i)
			}
		}
		bk, k, err := decodeMetaKey(b)
		if err == nil && !bytes.Equal(encodeMetaKey(bk, k), b) {
			t.Fatalf("meta: accepted %x but re-encodes differently", b)
		}
	})
}

// FuzzMetaAnswer: a home's answer never panics the decoder, and an
// accepted answer is for the asked key.
func FuzzMetaAnswer(f *testing.F) {
	ok, _ := encodeMetaAnswer(metaAnswer{Status: metaOK, Object: &catalog.Object{Bucket: "b", Key: "k", ETag: "e", Size: 3}})
	f.Add(ok)
	f.Add([]byte(`{"s":"nokey"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeMetaAnswer(b, "b", "k")
		if err == nil && a.Status == metaOK && (a.Object.Bucket != "b" || a.Object.Key != "k" || a.Object.Size < 0) {
			t.Fatalf("accepted %+v", a)
		}
	})
}
