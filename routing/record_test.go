package routing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

func recordsEqual(a, b ManifestRecord) bool {
	return a.Bucket == b.Bucket && a.Key == b.Key && a.ETag == b.ETag && a.Size == b.Size &&
		a.ChunkSize == b.ChunkSize && a.Hash == b.Hash && a.Manifest.Equals(b.Manifest) &&
		a.Timestamp.Equal(b.Timestamp)
}

func TestManifestRecordRoundTrip(t *testing.T) {
	rec := testRecord(time.Unix(1700000000, 123456789).UTC())
	b, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifestRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !recordsEqual(got, rec) {
		t.Fatalf("round trip: got %+v want %+v", got, rec)
	}
	if err := (ManifestValidator{}).Validate(rec.DHTKey(), b); err != nil {
		t.Fatalf("valid record rejected: %v", err)
	}
	if !strings.HasPrefix(rec.DHTKey(), "/shoal-obj/") {
		t.Fatalf("key %q", rec.DHTKey())
	}
	// The key depends on every part of the object version, unambiguously.
	keys := map[string]bool{}
	for _, k := range []string{
		ManifestRecordKey("a", "b", "c"), ManifestRecordKey("a", "b", "d"),
		ManifestRecordKey("a", "bc", ""), ManifestRecordKey("ab", "c", ""),
	} {
		if keys[k] {
			t.Fatalf("key collision: %s", k)
		}
		keys[k] = true
	}
}

func TestManifestRecordRejects(t *testing.T) {
	rec := testRecord(time.Unix(1700000000, 0))
	good, _ := rec.MarshalBinary()
	v := ManifestValidator{}
	cases := map[string][]byte{
		"empty":        nil,
		"bad version":  append([]byte{9}, good[1:]...),
		"truncated":    good[:len(good)-3],
		"trailing":     append(append([]byte{}, good...), 0),
		"huge":         bytes.Repeat([]byte{1}, MaxManifestRecordSize+1),
		"length bomb":  {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"flipped byte": flip(good, 5), // inside the bucket name: key no longer matches
	}
	for name, b := range cases {
		if err := v.Validate(rec.DHTKey(), b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: got %v, want ErrBadRecord", name, err)
		}
	}
	if err := v.Validate(ManifestRecordKey("other", rec.Key, rec.ETag), good); !errors.Is(err, ErrBadRecord) {
		t.Errorf("record under another key accepted: %v", err)
	}
	for name, bad := range map[string]func(*ManifestRecord){
		"no bucket":    func(r *ManifestRecord) { r.Bucket = "" },
		"long key":     func(r *ManifestRecord) { r.Key = strings.Repeat("k", 1025) },
		"no cid":       func(r *ManifestRecord) { r.Manifest = cid.Undef },
		"zero chunk":   func(r *ManifestRecord) { r.ChunkSize = 0 },
		"negative len": func(r *ManifestRecord) { r.Size = -1 },
	} {
		r := rec
		bad(&r)
		if _, err := r.MarshalBinary(); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: marshal got %v, want ErrBadRecord", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x20
	return c
}

func TestManifestValidatorSelectNewest(t *testing.T) {
	v := ManifestValidator{}
	t0 := time.Unix(1700000000, 0)
	a, _ := testRecord(t0).MarshalBinary()
	b, _ := testRecord(t0.Add(time.Hour)).MarshalBinary()
	c, _ := testRecord(t0.Add(time.Minute)).MarshalBinary()
	key := testRecord(t0).DHTKey()
	i, err := v.Select(key, [][]byte{a, []byte("junk"), b, c})
	if err != nil || i != 2 {
		t.Fatalf("select = %d, %v; want 2", i, err)
	}
	if _, err := v.Select(key, [][]byte{[]byte("junk")}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("select among invalid: %v", err)
	}
}

func FuzzManifestRecordDecode(f *testing.F) {
	good, _ := testRecord(time.Unix(1700000000, 0)).MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeManifestRecord(data)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
			return
		}
		// Anything that decodes re-encodes to the same bytes and validates
		// under its own key.
		again, err := rec.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("non-canonical encoding accepted")
		}
		if err := (ManifestValidator{}).Validate(rec.DHTKey(), data); err != nil {
			t.Fatalf("decoded record fails validation: %v", err)
		}
	})
}

func FuzzManifestValidator(f *testing.F) {
	rec := testRecord(time.Unix(1700000000, 0))
	good, _ := rec.MarshalBinary()
	f.Add(rec.DHTKey(), good, good)
	f.Add("/shoal-obj/x", []byte{1}, []byte{})
	f.Fuzz(func(t *testing.T, key string, a, b []byte) {
		v := ManifestValidator{}
		errA, errB := v.Validate(key, a), v.Validate(key, b)
		i, err := v.Select(key, [][]byte{a, b})
		switch {
		case errA != nil && errB != nil:
			if err == nil {
				t.Fatal("select picked an invalid value")
			}
		case err != nil:
			t.Fatalf("select failed with a valid value present: %v", err)
		case i == 0 && errA != nil, i == 1 && errB != nil:
			t.Fatalf("select picked invalid value %d", i)
		}
	})
}
