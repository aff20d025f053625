package node

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shoal-cache/shoal/catalog"
)

// TestMetadataTTLSynctest runs the node on the real clock inside a synctest
// bubble: the TTL passes with time.Sleep, instantly.
func TestMetadataTTLSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cat, err := catalog.Open("", catalog.InMemory())
		if err != nil {
			t.Fatal(err)
		}
		defer cat.Close()
		org := newFakeOrigin()
		data := randBytes(cs+1, 40)
		org.set("b", "k", data)
		n, err := New(Config{ChunkSize: cs, MetadataTTL: 30 * time.Second}, newMemStore(), org, cat)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		ctx := t.Context()
		if got, err := get(ctx, n, "b", "k", 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatal(err)
		}
		time.Sleep(29 * time.Second)
		if _, err := n.HeadObject(ctx, "b", "k"); err != nil || org.count("HeadObject") != 1 {
			t.Fatalf("within TTL: %v, %d HEADs", err, org.count("HeadObject"))
		}
		time.Sleep(2 * time.Second)
		if _, err := n.HeadObject(ctx, "b", "k"); err != nil || org.count("HeadObject") != 2 {
			t.Fatalf("after TTL: %v, %d HEADs", err, org.count("HeadObject"))
		}
	})
}
