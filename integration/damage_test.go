package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// A node whose Badger files were damaged while it was down (issue: a
// truncated SST panicked the node on every start with exit 2). It starts;
// a damaged block index is moved aside and rebuilt from the chunk files, so
// the cached object reads without the origin's chunks; a damaged catalog is
// moved aside and rebuilt; each is said in an ERROR line.
func TestDamagedBadgerFilesRepairedAtStart(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "dmg", testenv.NodeOptions{ChunkSize: "1MiB"})
	data := randomBytes(4*mib+123, 501)
	s.PutObject(t, "dmg", "obj.bin", data)
	mustGet(t, n.Client(t), "dmg", "obj.bin", data)
	if _, stderr, code := n.CLI(t, "pin", "s3://dmg/"); code != 0 {
		t.Fatalf("shoal pin: exit %d: %s", code, stderr)
	}
	waitDiskBlocks(t, n, 5) // the chunks (and the manifest)
	held := nested(n.Status(t), "Disk", "Blocks")
	waitUntil(t, "every block pinned on disk", func() bool { return nested(n.Status(t), "Disk", "Pinned") == held })
	store := filepath.Join(n.Opts.DataDir, "store")
	catalog := filepath.Join(n.Opts.DataDir, "catalog")

	// The block index: truncate every table.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	truncateTables(t, filepath.Join(store, "index"))
	n.StartAgain(t)
	if !strings.Contains(n.Log(), "level=ERROR") || !strings.Contains(n.Log(), "rebuilt the block index from the chunk files") {
		t.Fatalf("no ERROR line about the rebuilt block index:\n%s", n.Log())
	}
	if aside, _ := filepath.Glob(filepath.Join(store, "index.damaged-*")); len(aside) != 1 {
		t.Errorf("damaged block index not moved aside: %v", aside)
	}
	st := n.Status(t)
	if blocks := nested(st, "Disk", "Blocks"); blocks != held {
		t.Errorf("disk tier after the rebuild holds %v blocks, want the %v it held", blocks, held)
	}
	// The block pins were in the damaged index: the catalog's pinned
	// prefix takes them again, from the chunk files.
	waitUntil(t, "the pins taken again", func() bool { return nested(n.Status(t), "Disk", "Pinned") == held })
	mustGet(t, n.Client(t), "dmg", "obj.bin", data)
	if got := nested(n.Status(t), "ChunkOrigin"); got != 0 {
		t.Errorf("%v chunks read from the origin after the rebuild, want 0 (the chunk files are kept)", got)
	}

	// The catalog: truncate every table.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	truncateTables(t, catalog)
	n.StartAgain(t)
	if !strings.Contains(n.Log(), "catalog was damaged: moved it aside") {
		t.Fatalf("no ERROR line about the damaged catalog:\n%s", n.Log())
	}
	if aside, _ := filepath.Glob(catalog + ".damaged-*"); len(aside) != 1 {
		t.Errorf("damaged catalog not moved aside: %v", aside)
	}
	mustGet(t, n.Client(t), "dmg", "obj.bin", data)
}

// Exit codes stay meaningful around the data directory: a second node on a
// data directory in use exits 1 (a runtime error, not 2, the code for usage
// errors), says why, and takes nothing of the running node's for damage.
func TestDataDirInUseExitsOne(t *testing.T) {
	t.Parallel()
	origin := t.TempDir()
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + origin})
	_, stderr, code := testenv.RunShoal(t, nil, "node", "--origin", "file://"+origin, "--data-dir", n.Opts.DataDir,
		"--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	t.Logf("second node: exit %d: %s", code, strings.TrimSpace(stderr))
	if code != 1 || !strings.Contains(stderr, "lock") {
		t.Fatalf("second node on a data directory in use: exit %d, stderr %s; want exit 1 naming the lock", code, stderr)
	}
	for _, pattern := range []string{"store/index.damaged-*", "catalog.damaged-*"} {
		if aside, _ := filepath.Glob(filepath.Join(n.Opts.DataDir, pattern)); len(aside) != 0 {
			t.Errorf("a directory in use was taken for damaged: %v", aside)
		}
	}
	if !n.Running() {
		t.Fatal("the first node stopped")
	}
}

// truncateTables cuts every SST of a Badger directory to half its size.
func truncateTables(t *testing.T, dir string) {
	t.Helper()
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatalf("no table in %s", dir)
	}
	for _, p := range ssts {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, info.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
}

// nested returns the number at path in a decoded status (-1 if absent).
func nested(m map[string]any, path ...string) float64 {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return -1
		}
		v = mm[k]
	}
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return f
}

// waitDiskBlocks waits until the disk tier holds at least want blocks (the
// tiered store writes to disk behind the reader).
func waitDiskBlocks(t *testing.T, n *testenv.Node, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for nested(n.Status(t), "Disk", "Blocks") < want {
		if time.Now().After(deadline) {
			t.Fatalf("disk tier holds %v blocks after 20 s, want %v", nested(n.Status(t), "Disk", "Blocks"), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
