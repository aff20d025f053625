package catalog

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shoal-cache/shoal/origin"
)

// TestDamagedCatalogMovedAsideAndSalvaged writes two generations of records
// (each closed into a table of its own), spoils the newer table or the
// MANIFEST, and reopens: the catalog opens, the damaged directory is moved
// aside with a loud log line, and what the readable tables held is back.
func TestDamagedCatalogMovedAsideAndSalvaged(t *testing.T) {
	for name, tc := range map[string]struct {
		file  string // under the catalog dir; "newest.sst" is the newer table
		spoil func(data []byte) []byte
		// lostNewer: the newer generation's records cannot be salvaged.
		lostNewer bool
	}{
		"sst truncated":    {"newest.sst", func(b []byte) []byte { return b[:len(b)/2] }, true},
		"sst garbled":      {"newest.sst", garbleMiddle, true},
		"manifest garbled": {"MANIFEST", garbleMiddle, false},
		// Badger would take the cut for a torn append and delete the
		// tables the rest does not name.
		"manifest truncated": {"MANIFEST", func(b []byte) []byte { return b[:len(b)*2/3] }, false},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "catalog")
			ctx := t.Context()
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			put := func(key string) {
				t.Helper()
				if err := c.PutObject(ctx, Object{ObjectInfo: origin.ObjectInfo{Bucket: "b", Key: key, ETag: `"e"`, Size: 1}}); err != nil {
					t.Fatal(err)
				}
			}
			put("old/1")
			if err := c.AddPin(ctx, Pin{Bucket: "b", Prefix: "old/"}); err != nil {
				t.Fatal(err)
			}
			put("gone")
			if err := c.DeleteObject(ctx, "b", "gone"); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if c, err = Open(dir); err != nil {
				t.Fatal(err)
			}
			put("new/1")
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, tc.file)
			if tc.file == "newest.sst" {
				ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
				if len(ssts) < 2 {
					t.Fatalf("want a table per generation, have %v", ssts)
				}
				sort.Strings(ssts)
				target = ssts[len(ssts)-1]
			}
			data, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, tc.spoil(data), 0o644); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			c, err = Open(dir, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if err != nil {
				t.Fatalf("open of a damaged catalog: %v", err)
			}
			t.Cleanup(func() { c.Close() })
			aside, _ := filepath.Glob(dir + ".damaged-*")
			if len(aside) != 1 {
				t.Fatalf("damaged catalog not moved aside: %v", aside)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "moved it aside") {
				t.Fatalf("no loud log line:\n%s", logs.String())
			}
			if _, err := c.GetObject(ctx, "b", "old/1"); err != nil {
				t.Fatalf("record of a readable table not salvaged: %v", err)
			}
			if ok, err := c.Pinned(ctx, "b", "old/x"); err != nil || !ok {
				t.Fatalf("pin of a readable table not salvaged: %v %v", ok, err)
			}
			if _, err := c.GetObject(ctx, "b", "gone"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted record came back: %v", err)
			}
			if _, err := c.GetObject(ctx, "b", "new/1"); tc.lostNewer != errors.Is(err, ErrNotFound) {
				t.Fatalf("record of the newer table: %v (lost expected: %v)", err, tc.lostNewer)
			}
			// The fresh catalog works and persists.
			if err := c.AddPin(ctx, Pin{Bucket: "b", Prefix: "after/"}); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			c = open(t, dir)
			if ok, _ := c.Pinned(ctx, "b", "after/x"); !ok {
				t.Fatal("pin written after the rebuild lost at restart")
			}
		})
	}
}

func garbleMiddle(b []byte) []byte {
	for i := len(b) / 4; i < 3*len(b)/4; i++ {
		b[i] = byte(i*131 + 7)
	}
	return b
}
