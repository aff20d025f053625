package badgerrepair

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func testOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).WithLogger(nil).WithMetricsEnabled(false)
}

func TestOpenInUseIsNotDamage(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db2, err := Open(testOptions(dir)); err == nil {
		db2.Close()
		t.Fatal("second open of a database in use succeeded")
	} else if errors.Is(err, ErrDamaged) {
		t.Fatalf("a database in use was called damaged: %v", err)
	}
}

func TestOpenTruncatedTableIsDamage(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(testOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) != 1 {
		t.Fatalf("tables: %v", ssts)
	}
	if err := os.Truncate(ssts[0], 100); err != nil {
		t.Fatal(err)
	}
	if db, err := Open(testOptions(dir)); !errors.Is(err, ErrDamaged) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open of a truncated table: %v, want ErrDamaged", err)
	}
	aside, err := MoveAside(dir, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil || filepath.Base(aside) != filepath.Base(dir)+".damaged-20260102T030405.000Z" {
		t.Fatalf("move aside: %q %v", aside, err)
	}
	st, err := Salvage(aside, testOptions(aside), func(k, v []byte) error { return nil })
	if err != nil || st.BadTables != 1 || st.Keys != 0 {
		t.Fatalf("salvage of the only, damaged table: %+v %v", st, err)
	}
}

// TestSalvageNewestLiveVersion: across tables, the newest version of a key
// wins, and a key deleted last stays deleted.
func TestSalvageNewestLiveVersion(t *testing.T) {
	dir := t.TempDir()
	for gen, ops := range []map[string]string{
		{"a": "1", "b": "1", "c": "1"},
		{"a": "2", "b": ""}, // "" deletes
	} {
		db, err := Open(testOptions(dir))
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(txn *badger.Txn) error {
			for k, v := range ops {
				if v == "" {
					if err := txn.Delete([]byte(k)); err != nil {
						return err
					}
				} else if err := txn.Set([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(gen, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	st, err := Salvage(dir, testOptions(dir), func(k, v []byte) error { got[string(k)] = string(v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != "2" || got["c"] != "1" {
		t.Fatalf("salvaged %v (%+v), want a=2 c=1", got, st)
	}
}

// BenchmarkCheck is the start-up cost Open adds: reading and verifying
// every table of an index of 200k small records.
func BenchmarkCheck(b *testing.B) {
	dir := b.TempDir()
	opts := testOptions(dir).WithCompactL0OnClose(true)
	db, err := badger.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	wb := db.NewWriteBatch()
	k := make([]byte, 37) // a block index key: kind byte + CIDv1 sha2-256
	for i := range 200_000 {
		binary.BigEndian.PutUint64(k[1:], uint64(i)*0x9e3779b97f4a7c15)
		if err := wb.Set(append([]byte(nil), k...), []byte{0x80, 0x80, 0x80, 0x02, 0x9a, 0x05}); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := check(opts); err != nil {
			b.Fatal(err)
		}
	}
}
