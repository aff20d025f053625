package integration

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// A node whose data directory is a small real filesystem that fills up
// (issue: on ENOSPC every write logged a warning, dropped_writes_total
// stayed 0, /readyz and /v1/status showed nothing, and the SSD tier stopped
// taking blocks for good). Needs root for the tmpfs.
func TestDiskFullNode(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the node's data directory")
	}
	dataDir := t.TempDir()
	if err := syscall.Mount("tmpfs", dataDir, "tmpfs", 0, "size="+strconv.Itoa(96*mib)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	// Registered before StartNode: runs after the node has stopped.
	t.Cleanup(func() {
		if err := syscall.Unmount(dataDir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	const reserve = 8 * mib
	s, n := startS3Node(t, "full", testenv.NodeOptions{DataDir: dataDir, ChunkSize: "1MiB", MemCache: "64MiB", DiskCache: "48MiB",
		ExtraArgs: []string{"--disk-reserve", strconv.Itoa(reserve)}})
	objects := map[string][]byte{}
	for i, key := range []string{"a.bin", "b.bin", "c.bin", "d.bin"} {
		objects[key] = randomBytes(8*mib, uint64(600+i))
		s.PutObject(t, "full", key, objects[key])
	}
	client := n.Client(t)
	mustGet(t, client, "full", "a.bin", objects["a.bin"])
	waitDiskBlocks(t, n, 8)
	if sp := diskSpace(t, n); sp["State"] != "ok" {
		t.Fatalf("DiskSpace with room: %v", sp)
	}

	// Someone else fills the filesystem: 2 MiB left above the reserve.
	ballast := filepath.Join(dataDir, "ballast")
	fillFS(t, ballast, reserve+2*mib)
	sp := diskSpace(t, n)
	t.Logf("status with the disk filled: %v", sp)
	if sp["State"] != "disk full" || sp["FreeBytes"].(float64) > reserve+3*mib || sp["LimitBytes"].(float64) >= 48*mib {
		t.Fatalf("DiskSpace with the disk filled: %v, want disk full with the free bytes and a shrunken limit", sp)
	}
	ready := readyz(t, n)
	if !strings.HasPrefix(ready, "ready\n") || !strings.Contains(ready, "disk: degraded: disk full: ") || !strings.Contains(ready, "bytes free") {
		t.Errorf("/readyz with the disk full: %q", ready)
	}
	if v := metricValue(t, n, "shoal_blockstore_disk_full", `tier="disk"`); v != 1 {
		t.Errorf("shoal_blockstore_disk_full = %v, want 1", v)
	}

	// The tier keeps storing within what the disk has: older chunks go.
	mustGet(t, client, "full", "b.bin", objects["b.bin"])
	waitUntil(t, "b.bin's chunks on disk with older ones evicted", func() bool {
		st := n.Status(t)
		return nested(st, "Disk", "Evictions") > 0 && nested(st, "Disk", "Blocks") >= 8
	})
	if st := n.Status(t); nested(st, "Disk", "Bytes") > nested(st, "DiskSpace", "LimitBytes") {
		t.Errorf("disk tier holds %v bytes over its limit %v", nested(st, "Disk", "Bytes"), nested(st, "DiskSpace", "LimitBytes"))
	}

	// What the disk holds is pinned and the disk fills further: new chunks
	// cannot be stored, their writes are dropped and counted, reads still
	// work.
	if _, stderr, code := n.CLI(t, "pin", "s3://full/b.bin"); code != 0 {
		t.Fatalf("shoal pin: exit %d: %s", code, stderr)
	}
	fillFS(t, ballast, reserve+mib/2)
	before := metricValue(t, n, "shoal_blockstore_dropped_writes_total", `tier="disk"`)
	mustGet(t, client, "full", "d.bin", objects["d.bin"])
	waitUntil(t, "dropped disk writes counted", func() bool {
		return metricValue(t, n, "shoal_blockstore_dropped_writes_total", `tier="disk"`) > before
	})
	if !strings.Contains(n.Log(), `msg="disk full: the SSD tier's budget shrank`) {
		t.Errorf("no log line about the full disk")
	}

	// Space comes back: the limit is the budget again, the state clears.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := n.CLI(t, "unpin", "s3://full/b.bin"); code != 0 {
		t.Fatalf("shoal unpin: exit %d: %s", code, stderr)
	}
	if sp := diskSpace(t, n); sp["State"] != "ok" || sp["LimitBytes"].(float64) != 48*mib {
		t.Fatalf("DiskSpace after the ballast went: %v", sp)
	}
	if ready := readyz(t, n); !strings.Contains(ready, "disk: ok") {
		t.Errorf("/readyz after recovery: %q", ready)
	}
	held := nested(n.Status(t), "Disk", "Bytes")
	mustGet(t, client, "full", "c.bin", objects["c.bin"])
	waitUntil(t, "c.bin stored after recovery", func() bool { return nested(n.Status(t), "Disk", "Bytes") >= held+8*mib })
	if v := metricValue(t, n, "shoal_blockstore_disk_full", `tier="disk"`); v != 0 {
		t.Errorf("shoal_blockstore_disk_full = %v after recovery, want 0", v)
	}
}

func diskSpace(t *testing.T, n *testenv.Node) map[string]any {
	t.Helper()
	sp, ok := n.Status(t)["DiskSpace"].(map[string]any)
	if !ok {
		t.Fatalf("/v1/status has no DiskSpace: %v", n.Status(t))
	}
	return sp
}

func readyz(t *testing.T, n *testenv.Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// fillFS grows the ballast file until the filesystem has about free bytes
// left.
func fillFS(t *testing.T, ballast string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(ballast), &st); err != nil {
		t.Fatal(err)
	}
	grow := int64(st.Bavail)*int64(st.Bsize) - free
	if grow <= 0 {
		return
	}
	f, err := os.OpenFile(ballast, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, grow)); err != nil {
		t.Fatalf("ballast: %v", err)
	}
}

// metricValue reads one series from the node's /metrics over HTTP: the
// first sample of name whose labels contain label.
func metricValue(t *testing.T, n *testenv.Node, name, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		metric, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(metric, "#") {
			continue
		}
		base, labels, _ := strings.Cut(metric, "{")
		if base == name && strings.Contains(labels, label) {
			v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return v
		}
	}
	return -1
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
