package blockstore_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// logBuffer collects log lines from concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// damage spoils an index file the way a bad disk or an interrupted copy
// does.
var damage = map[string]struct {
	file string // glob under the index directory
	do   func(t *testing.T, path string)
	// detected: the damage is seen as such (moved aside, loud log).
	detected bool
}{
	"sst truncated": {"*.sst", func(t *testing.T, p string) { truncateHalf(t, p) }, true},
	"sst garbled":   {"*.sst", func(t *testing.T, p string) { garble(t, p) }, true},
	"sst tail zeroed": {"*.sst", func(t *testing.T, p string) {
		data := readFile(t, p)
		clear(data[len(data)-64:])
		writeFile(t, p, data)
	}, true},
	"manifest garbled":   {"MANIFEST", func(t *testing.T, p string) { garble(t, p) }, true},
	"manifest truncated": {"MANIFEST", func(t *testing.T, p string) { truncateHalf(t, p) }, true},
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncateHalf(t *testing.T, p string) {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, info.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// garble overwrites the middle half of the file with a fixed pattern.
func garble(t *testing.T, p string) {
	t.Helper()
	data := readFile(t, p)
	for i := len(data) / 4; i < 3*len(data)/4; i++ {
		data[i] = byte(i*131 + 7)
	}
	writeFile(t, p, data)
}

func TestDiskRebuildsDamagedIndex(t *testing.T) {
	for name, dmg := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := t.Context()
			d := newDisk(t, dir, 1<<20)
			blocks := map[cid.Cid][]byte{}
			for range 20 {
				c, data := storetest.Block(t, 3000)
				if err := d.Put(ctx, c, data); err != nil {
					t.Fatal(err)
				}
				blocks[c] = data
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "index", dmg.file))
			if len(files) == 0 {
				t.Fatalf("no %s in the index after close", dmg.file)
			}
			for _, f := range files {
				dmg.do(t, f)
			}

			var logs logBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: dir, BudgetBytes: 1 << 20}, blockstore.WithDiskLogger(log))
			if err != nil {
				t.Fatalf("open with a damaged index: %v", err)
			}
			closeLater(t, d)
			for c, want := range blocks {
				got, err := d.Get(ctx, c)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("block %s after the index was rebuilt: %v", c, err)
				}
			}
			if st := d.Stats(); st.Blocks != int64(len(blocks)) || st.Bytes != int64(len(blocks))*3000 {
				t.Fatalf("stats after rebuild: %+v", st)
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "index.damaged-*"))
			switch {
			case dmg.detected && (!strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "rebuilt the block index")):
				t.Fatalf("no loud log line about the rebuild:\n%s", logs.String())
			case dmg.detected && len(aside) != 1:
				t.Fatalf("damaged index not moved aside: %v", aside)
			case !dmg.detected && !strings.Contains(logs.String(), "indexed_files=20"):
				t.Fatalf("files the index lost were not indexed again:\n%s", logs.String())
			}
			// The rebuilt index is a working one: a new block survives a restart.
			c, data := storetest.Block(t, 3000)
			if err := d.Put(ctx, c, data); err != nil {
				d.Close()
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d = newDisk(t, dir, 1<<20)
			closeLater(t, d)
			if st := d.Stats(); st.Blocks != int64(len(blocks))+1 {
				t.Fatalf("stats after a restart of the rebuilt index: %+v", st)
			}
		})
	}
}
