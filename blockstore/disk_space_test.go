package blockstore_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/blockstore/storetest"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, unmounted
// when the test ends. It needs root: the test is skipped otherwise.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (a real filesystem that fills up)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount tmpfs: %v", err)
		}
	})
	return dir
}

func slogTo(w *logBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillTo grows the ballast file until the filesystem has about free bytes
// left.
func fillTo(t *testing.T, ballast string, free int64) {
	t.Helper()
	grow := freeBytes(t, filepath.Dir(ballast)) - free
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

func counter(t *testing.T, reg *prometheus.Registry, name, tier string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelIs(m, "tier", tier) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// A real filesystem that fills up under the SSD tier (issue: a full disk
// was silent and the tier stopped taking blocks for good). The budget in
// force shrinks to what the disk has, older blocks are evicted so new ones
// are stored, a write that cannot fit is counted as dropped, Space says
// "disk full" with the free bytes, and everything comes back with the
// space.
func TestDiskFullFilesystem(t *testing.T) {
	const (
		mib     = 1 << 20
		budget  = 32 * mib
		reserve = 4 * mib
	)
	root := mountTmpfs(t, 48*mib)
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	var logs logBuffer
	disk, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: filepath.Join(root, "store"), BudgetBytes: budget, ReserveBytes: reserve},
		blockstore.WithDiskRegisterer(reg), blockstore.WithDiskLogger(slogTo(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := blockstore.NewTiered(newMemory(t, 64*mib), disk, blockstore.TieredConfig{}, blockstore.WithTieredRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, tr)
	put := func(n int) []cid.Cid {
		t.Helper()
		var cids []cid.Cid
		for range n {
			c, data := storetest.Block(t, mib)
			if err := tr.Put(ctx, c, data); err != nil {
				t.Fatal(err)
			}
			if err := tr.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			cids = append(cids, c)
		}
		return cids
	}
	onDisk := func(cids []cid.Cid) (n int) {
		for _, c := range cids {
			if ok, _ := disk.Has(ctx, c); ok {
				n++
			}
		}
		return n
	}

	old := put(16)
	if sp := disk.Space(); sp.Full || sp.LimitBytes != budget || sp.FreeBytes < 20*mib {
		t.Fatalf("space with room: %+v", sp)
	}

	// Someone else fills the disk: 2 MiB left above the reserve.
	ballast := filepath.Join(root, "ballast")
	fillTo(t, ballast, reserve+2*mib)
	sp := disk.Space()
	t.Logf("after the ballast: %+v", sp)
	if !sp.Full || sp.State != "disk full" || sp.FreeBytes > reserve+3*mib || sp.LimitBytes >= budget-8*mib {
		t.Fatalf("space with the disk filled: %+v, want disk full with a shrunken limit", sp)
	}
	if counter(t, reg, "shoal_blockstore_disk_full", "disk") != 1 {
		t.Errorf("shoal_blockstore_disk_full{tier=disk} not 1")
	}
	if !strings.Contains(logs.String(), "disk full") {
		t.Errorf("no log line about the full disk:\n%s", logs.String())
	}

	// The tier keeps taking blocks within what the disk has.
	fresh := put(10)
	if got := onDisk(fresh); got != len(fresh) {
		t.Errorf("%d of %d new blocks on disk with the disk full", got, len(fresh))
	}
	if got := onDisk(old); got >= len(old) {
		t.Errorf("no older block evicted to make room (%d of %d left)", got, len(old))
	}
	t.Logf("after 10 new blocks: %+v, %+v", disk.Stats(), disk.Space())
	if st, sp := disk.Stats(), disk.Space(); st.Bytes > sp.LimitBytes || freeBytes(t, root) < reserve-mib {
		t.Errorf("tier holds %d bytes, limit %d, free %d: the reserve was eaten", st.Bytes, sp.LimitBytes, freeBytes(t, root))
	}

	// Everything held is pinned and the disk fills further: a new block
	// cannot fit, its write is dropped and counted, it stays in memory.
	tr.AllKeys(ctx, func(c cid.Cid) bool { _ = tr.Pin(ctx, c); return true })
	if err := tr.Flush(ctx); err != nil { // pinned blocks held in memory only are written now, or refused
		t.Fatal(err)
	}
	fillTo(t, ballast, reserve+mib/2)
	before := counter(t, reg, "shoal_blockstore_dropped_writes_total", "disk")
	c, data := storetest.Block(t, mib)
	if err := tr.Put(ctx, c, data); err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "shoal_blockstore_dropped_writes_total", "disk"); got != before+1 {
		t.Errorf("dropped_writes_total{tier=disk} = %v after a write that did not fit, want %v", got, before+1)
	}
	if ok, _ := disk.Has(ctx, c); ok {
		t.Error("a block that did not fit is on disk")
	}
	if got, err := tr.Get(ctx, c); err != nil || len(got) != mib {
		t.Errorf("dropped block not kept in memory: %v", err)
	}
	t.Logf("after a refused write: %+v", disk.Space())
	if sp := disk.Space(); !sp.Full || sp.FullWrites == 0 {
		t.Errorf("space after a refused write: %+v", sp)
	}

	// Space comes back.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if sp := disk.Space(); sp.Full || sp.State != "ok" || sp.LimitBytes != budget {
		t.Fatalf("space after the ballast went: %+v", sp)
	}
	tr.AllKeys(ctx, func(c cid.Cid) bool { _ = tr.Unpin(ctx, c); return true })
	more := put(12)
	t.Logf("after recovery: %+v, %+v", disk.Stats(), disk.Space())
	if got := onDisk(more); got != len(more) {
		t.Errorf("%d of %d blocks on disk after space came back", got, len(more))
	}
	if st, limitBefore := disk.Stats(), sp.LimitBytes; st.Bytes <= limitBefore {
		t.Errorf("tier holds %d bytes after recovery, no more than the shrunken limit %d", st.Bytes, limitBefore)
	}
	if counter(t, reg, "shoal_blockstore_disk_full", "disk") != 0 {
		t.Errorf("shoal_blockstore_disk_full{tier=disk} still set")
	}
}

// Run notices a disk that someone else fills and evicts to give the
// reserve back, without a write to trigger it.
func TestDiskRunEvictsWhenTheDiskShrinks(t *testing.T) {
	const mib = 1 << 20
	root := mountTmpfs(t, 40*mib)
	ctx, cancel := context.WithCancel(t.Context())
	d, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: filepath.Join(root, "store"), BudgetBytes: 32 * mib,
		ReserveBytes: 4 * mib, SpaceCheckInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, d)
	for range 20 {
		c, data := storetest.Block(t, mib)
		if err := d.Put(ctx, c, data); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	fillTo(t, filepath.Join(root, "ballast"), 2*mib) // below the reserve
	deadline := time.Now().Add(20 * time.Second)
	for freeBytes(t, root) < 4*mib {
		if time.Now().After(deadline) {
			t.Fatalf("reserve not given back: %d free, tier %+v, space %+v", freeBytes(t, root), d.Stats(), d.Space())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d.Stats().Evictions == 0 {
		t.Fatal("no eviction")
	}
}
