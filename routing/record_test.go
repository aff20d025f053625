package routing

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoal-cache/shoal/internal/content"
)

// testKey returns a fixed Ed25519 key (seed byte b), so records and their
// encodings are reproducible.
func signingKey(t testing.TB, b byte) crypto.PrivKey {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedRecord is testRecord(ts) signed by key.
func signedRecord(t testing.TB, ts time.Time, key crypto.PrivKey) ManifestRecord {
	t.Helper()
	r := testRecord(ts)
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	return r
}

func marshal(t testing.TB, r ManifestRecord) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clockAt is a validator whose clock reads now.
func clockAt(now time.Time) *ManifestValidator {
	v := NewManifestValidator(DefaultRecordMaxAge)
	v.Now = func() time.Time { return now }
	return v
}

func recordsEqual(a, b ManifestRecord) bool {
	return a.SameClaim(b) && a.Timestamp.Equal(b.Timestamp) && a.Publisher == b.Publisher &&
		bytes.Equal(a.Signature, b.Signature)
}

var t0 = time.Unix(1700000000, 123456789).UTC()

func TestManifestRecordRoundTrip(t *testing.T) {
	rec := signedRecord(t, t0, signingKey(t, 1))
	b := marshal(t, rec)
	got, err := DecodeManifestRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !recordsEqual(got, rec) {
		t.Fatalf("round trip: got %+v want %+v", got, rec)
	}
	if err := got.Verify(); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := clockAt(t0).Validate(rec.DHTKey(), b); err != nil {
		t.Fatalf("valid record rejected: %v", err)
	}
	if !strings.HasPrefix(rec.DHTKey(), "/shoal-obj/") {
		t.Fatalf("key %q", rec.DHTKey())
	}
	// The key depends on every part of the version and its cut,
	// unambiguously.
	keys := map[string]bool{}
	for _, k := range []string{
		ManifestRecordKey("a", "b", "c", 4, "h"), ManifestRecordKey("a", "b", "d", 4, "h"),
		ManifestRecordKey("a", "bc", "", 4, "h"), ManifestRecordKey("ab", "c", "", 4, "h"),
		ManifestRecordKey("a", "b", "c", 5, "h"), ManifestRecordKey("a", "b", "c", 4, "g"),
		ManifestRecordKey("a", "b", "c", 45, ""),
	} {
		if keys[k] {
			t.Fatalf("key collision: %s", k)
		}
		keys[k] = true
	}
}

func TestManifestRecordRejects(t *testing.T) {
	key := signingKey(t, 1)
	rec := signedRecord(t, t0, key)
	good := marshal(t, rec)
	v := clockAt(t0)
	unsigned := testRecord(t0)
	unsignedRaw := append(mustSigned(t, unsigned), 0) // empty signature
	resigned := rec
	resigned.Publisher = signedRecord(t, t0, signingKey(t, 2)).Publisher // another node's name, this node's signature
	badSig := rec
	badSig.Signature = flip(rec.Signature, 3)
	cases := map[string][]byte{
		"empty":             nil,
		"version 1":         append([]byte{1}, good[1:]...),
		"truncated":         good[:len(good)-3],
		"trailing":          append(append([]byte{}, good...), 0),
		"huge":              bytes.Repeat([]byte{1}, MaxManifestRecordSize+1),
		"length bomb":       {2, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"flipped byte":      flip(good, 5), // inside the bucket name: key no longer matches
		"unsigned":          unsignedRaw,
		"bad signature":     marshal(t, badSig),
		"another publisher": marshal(t, resigned),
		"far future":        marshal(t, signedRecord(t, t0.Add(MaxClockSkew+time.Second), key)),
		"too old":           marshal(t, signedRecord(t, t0.Add(-DefaultRecordMaxAge-time.Second), key)),
	}
	for name, b := range cases {
		if err := v.Validate(rec.DHTKey(), b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: got %v, want ErrBadRecord", name, err)
		}
	}
	if err := v.Validate(clockAt(t0).validKeyFor(t, rec, "other"), good); !errors.Is(err, ErrBadRecord) {
		t.Errorf("record under another key accepted: %v", err)
	}
	// Within the skew window a record is accepted.
	if err := v.Validate(rec.DHTKey(), marshal(t, signedRecord(t, t0.Add(MaxClockSkew-time.Second), key))); err != nil {
		t.Errorf("record dated within the skew window: %v", err)
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

// mustSigned is the signed part of r's encoding (no signature appended).
func mustSigned(t *testing.T, r ManifestRecord) []byte {
	t.Helper()
	b, err := r.signed()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validKeyFor is the DHT key of rec with another bucket.
func (*ManifestValidator) validKeyFor(t *testing.T, rec ManifestRecord, bucket string) string {
	return ManifestRecordKey(bucket, rec.Key, rec.ETag, rec.ChunkSize, rec.Hash)
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x20
	return c
}

// TestManifestValidatorSelect: the earliest publication wins whatever the
// order of values (kad-dht passes the held value first when searching and
// the new one first when storing), "newest wins" never decides, a record
// dated far ahead is invalid, and a different claim is noted as a conflict.
func TestManifestValidatorSelect(t *testing.T) {
	honest, forger := signingKey(t, 1), signingKey(t, 2)
	v := clockAt(t0.Add(time.Hour))
	a := marshal(t, signedRecord(t, t0, honest))
	later := marshal(t, signedRecord(t, t0.Add(time.Minute), honest))
	key := testRecord(t0).DHTKey()
	for _, vals := range [][][]byte{{a, []byte("junk"), later}, {later, a}, {a, later}} {
		i, err := v.Select(key, vals)
		if err != nil || !bytes.Equal(vals[i], a) {
			t.Fatalf("select over %d values = %d, %v; want the earliest", len(vals), i, err)
		}
	}
	if got := v.Conflicts(key); got != nil {
		t.Fatalf("same claim noted as a conflict: %+v", got)
	}
	// A forger's record of another manifest dated (nearly) as far ahead as
	// it may: it does not displace the honest claim, either way round.
	forged := testRecord(t0.Add(time.Hour + MaxClockSkew - time.Second))
	forged.Manifest = content.Sum(content.SHA256, []byte("forged manifest"))
	if err := forged.Sign(forger); err != nil {
		t.Fatal(err)
	}
	f := marshal(t, forged)
	for _, vals := range [][][]byte{{a, f}, {f, a}} {
		i, err := v.Select(key, vals)
		if err != nil || !bytes.Equal(vals[i], a) {
			t.Fatalf("forged future record won: %d, %v", i, err)
		}
	}
	conf := v.Conflicts(key)
	if len(conf) != 2 || !conf[0].SameClaim(testRecord(t0)) && !conf[1].SameClaim(testRecord(t0)) {
		t.Fatalf("conflict not noted with both claims: %+v", conf)
	}
	if _, err := v.Select(key, [][]byte{[]byte("junk")}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("select among invalid: %v", err)
	}
}

func FuzzManifestRecordDecode(f *testing.F) {
	good := marshal(f, signedRecord(f, t0, signingKey(f, 1)))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeManifestRecord(data)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
			return
		}
		// Anything that decodes re-encodes to the same bytes.
		again, err := rec.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("non-canonical encoding accepted")
		}
	})
}

func FuzzManifestValidator(f *testing.F) {
	rec := signedRecord(f, t0, signingKey(f, 1))
	good := marshal(f, rec)
	f.Add(rec.DHTKey(), good, good)
	f.Add("/shoal-obj/x", []byte{2}, []byte{})
	f.Fuzz(func(t *testing.T, key string, a, b []byte) {
		v := clockAt(t0)
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
		if j, _ := v.Select(key, [][]byte{b, a}); err == nil && !bytes.Equal([][]byte{a, b}[i], [][]byte{b, a}[j]) {
			t.Fatal("select depends on the order of values")
		}
	})
}
