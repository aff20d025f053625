package blockstore_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// TestDirectFileCreatorWritesEveryShape: payload files hold exactly what
// was written whatever its alignment (O_DIRECT for the aligned part on
// Linux, the page cache for the rest), in one write or several.
func TestDirectFileCreatorWritesEveryShape(t *testing.T) {
	big := make([]byte, 4<<20+8192) // a large allocation: page-aligned
	rand.Read(big)
	for name, writes := range map[string][][]byte{
		"aligned chunk":     {big[:4<<20]},
		"chunk with a tail": {big[:4<<20+123]},
		"small":             {big[:100]},
		"unaligned buffer":  {big[1 : 1+1<<20]},
		"aligned then tail": {big[:8192], big[8192 : 8192+5000]},
		"tail then more":    {big[:5000], big[5000:20000]},
		"empty":             {big[:0]},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			w, err := blockstore.DirectFileCreator().Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for _, p := range writes {
				if n, err := w.Write(p); err != nil || n != len(p) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
				}
				want = append(want, p...)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("file holds %d bytes (err %v), want the %d written", len(got), err, len(want))
			}
			if _, err := blockstore.DirectFileCreator().Create(path); !os.IsExist(err) {
				t.Fatalf("second Create of %s: %v, want exists", path, err)
			}
		})
	}
}

// TestDiskWithDirectWrites: the SSD tier works the same on direct writes.
func TestDiskWithDirectWrites(t *testing.T) {
	ctx := t.Context()
	d := newDisk(t, t.TempDir(), 16<<20, blockstore.WithFileCreator(blockstore.DirectFileCreator()))
	defer d.Close()
	for _, n := range []int{4 << 20, 4<<20 - 100, 4096, 1} {
		c, data := storetest.Block(t, n)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Get(ctx, c); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get of a %d-byte block written directly: %v", n, err)
		}
	}
}
