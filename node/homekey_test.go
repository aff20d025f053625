package node

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/origin"
)

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
	ok, _ := encodeMetaAnswer(metaAnswer{Status: metaOK, Object: &catalog.Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: "k", ETag: "e", Size: 3}}})
	f.Add(ok)
	f.Add([]byte(`{"s":"nokey"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeMetaAnswer(b, "b", "k")
		if err == nil && a.Status == metaOK && (a.Object.Bucket != "b" || a.Object.Key != "k" || a.Object.Size < 0) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// TestHomeReadAhead: a home that serves one of its chunks of a version read
// in order also fetches its next DefaultHomeReadAhead own chunks from the origin,
// once; a request in the middle of an object (the previous own chunk not
// held) starts nothing.
func TestHomeReadAhead(t *testing.T) {
	others := testPeers(3)
	data := randBytes(16*cs, 21)
	setup := func() (*clusterEnv, catalog.Version, []int64) {
		e := newClusterEnv(t, others)
		e.org.set("b", "k", data)
		v := e.n.version("b", "k", etagOf(data), int64(len(data)))
		var own []int64
		for j := range v.NumChunks() {
			if chunkHomes(v, j, e.self, others, nil, 1)[0] == e.self {
				own = append(own, j)
			}
		}
		if len(own) != 4 {
			t.Fatalf("own chunks %v, want one per window of 4", own)
		}
		return e, v, own
	}
	known := func(e *clusterEnv, v catalog.Version, i int64) bool {
		_, err := e.cat.Chunk(t.Context(), v, i)
		return err == nil
	}

	e, v, own := setup()
	h := e.n.PeerHandler()
	if _, _, err := h.Fetch(t.Context(), encodeChunkKey(v, own[0])); err != nil {
		t.Fatal(err)
	}
	await(t, "the next own chunks fetched ahead", func() bool {
		return known(e, v, own[1]) && known(e, v, own[2])
	})
	// Serving them again (from the store) moves the window by one.
	if _, _, err := h.Fetch(t.Context(), encodeChunkKey(v, own[1])); err != nil {
		t.Fatal(err)
	}
	await(t, "the last own chunk fetched ahead", func() bool { return known(e, v, own[3]) })
	if got := e.org.count("GetRange"); got != 4 {
		t.Errorf("%d origin GETs for 4 own chunks", got)
	}
	for j := range v.NumChunks() {
		if !slices.Contains(own, j) && known(e, v, j) {
			t.Errorf("chunk %d of another home was fetched", j)
		}
	}

	e, v, own = setup()
	if _, _, err := e.n.PeerHandler().Fetch(t.Context(), encodeChunkKey(v, own[2])); err != nil {
		t.Fatal(err)
	}
	e.n.cl.mu.Lock()
	ahead := len(e.n.cl.ahead)
	e.n.cl.mu.Unlock()
	if ahead != 0 || known(e, v, own[3]) {
		t.Errorf("a request in the middle started %d read-ahead fetches", ahead)
	}
}
