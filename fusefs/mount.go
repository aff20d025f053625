package fusefs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ErrMountpoint: the mount point cannot be used (missing, not a
// directory, not empty, or mounted already).
var ErrMountpoint = errors.New("unusable mount point")

// ErrNoFUSE: this machine cannot mount FUSE file systems (no /dev/fuse, or
// no fusermount3 for a user other than root).
var ErrNoFUSE = errors.New("FUSE not available")

// CheckMountpoint says why dir cannot be mounted on, or nil: it must be an
// existing, empty directory that is not a mount point already.
func CheckMountpoint(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMountpoint, dir, err)
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return fmt.Errorf("%w: %s is a FUSE mount whose server is gone; unmount it first (fusermount3 -u %s)", ErrMountpoint, abs, abs)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist; create an empty directory first", ErrMountpoint, abs)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrMountpoint, err)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrMountpoint, abs)
	}
	if m, err := IsMounted(abs); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMountpoint, abs, err)
	} else if m {
		return fmt.Errorf("%w: %s is already a mount point; unmount it first or choose another directory", ErrMountpoint, abs)
	}
	d, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMountpoint, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %w", ErrMountpoint, abs, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s is not empty (it holds %q); a mount would hide its files: use an empty directory", ErrMountpoint, abs, names[0])
	}
	return nil
}

// IsMounted reports whether dir (an absolute, clean path) is a mount point
// of this process's mount namespace.
func IsMounted(dir string) (bool, error) {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID parent major:minor root mount-point options ...
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountWait: how long Run waits for a clean unmount (files still open
// make it busy) before it detaches the mount lazily.
const unmountWait = 2 * time.Second

// Run mounts the file system on Config.Dir, serves it until ctx ends (or
// someone unmounts it: fusermount3 -u), then unmounts. ready, if not nil,
// is called once the mount answers.
func (m *FS) Run(ctx context.Context, ready func()) error {
	mnt, err := filepath.Abs(m.cfg.Dir)
	if err != nil {
		return err
	}
	if err := CheckMountpoint(mnt); err != nil {
		return err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: %w", ErrNoFUSE, err)
	}
	root := &dir{m: m, bucket: m.cfg.Bucket}
	neg := m.cfg.NegativeTTL
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:       "shoal",
			Name:         "shoal",
			AllowOther:   m.cfg.AllowOther,
			MaxWrite:     m.cfg.MaxRead, // go-fuse derives max_read and max_pages from it
			MaxReadAhead: m.cfg.MaxRead,
			// Extended attributes: none to show, and the kernel asks
			// for security labels on every access otherwise.
			DisableXAttrs: true,
			// Read replies come from memory: splicing them through a pipe
			// only adds a copy (and fails for 1 MiB replies).
			DisableSplice: true,
			Logger:        slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
		},
		NegativeTimeout: &neg,
		UID:             m.uid,
		GID:             m.gid,
	}
	if os.Geteuid() == 0 {
		// root mounts with mount(2) itself (no fusermount3 needed); "ro"
		// is then a flag, not an option string.
		opts.DirectMountStrict = true
		opts.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	} else {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			if _, err2 := exec.LookPath("fusermount"); err2 != nil {
				return fmt.Errorf("%w: mounting as a user other than root needs fusermount3 (package fuse3): %w", ErrNoFUSE, err)
			}
		}
		opts.Options = []string{"ro", "nosuid", "nodev"}
	}
	srv, err := fs.Mount(mnt, root, opts)
	if err != nil {
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	m.tuneReadAhead(mnt)
	m.log.Info("mounted", "dir", mnt, "bucket", m.cfg.Bucket, "allow_other", m.cfg.AllowOther, "max_read", m.cfg.MaxRead)
	if ready != nil {
		ready()
	}
	served := make(chan struct{})
	go func() {
		srv.Wait()
		close(served)
	}()
	select {
	case <-served:
		m.log.Info("unmounted from outside", "dir", mnt)
		return nil
	case <-ctx.Done():
	}
	return m.unmount(srv, mnt, served)
}

// unmount unmounts cleanly, or detaches the mount once it stays busy
// (files open) so that the process can exit and the kernel lets go when
// the last file closes.
func (m *FS) unmount(srv *fuse.Server, dir string, served <-chan struct{}) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Unmount() }()
	select {
	case err := <-errc:
		if err == nil {
			m.log.Info("unmounted", "dir", dir)
			return nil
		}
		m.log.Warn("unmount busy, detaching", "dir", dir, "err", err)
	case <-time.After(unmountWait):
		m.log.Warn("unmount busy, detaching", "dir", dir)
	}
	var err error
	if os.Geteuid() == 0 {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	} else {
		bin := "fusermount3"
		if _, lerr := exec.LookPath(bin); lerr != nil {
			bin = "fusermount"
		}
		err = exec.Command(bin, "-u", "-z", dir).Run()
	}
	if err != nil {
		// The clean unmount may have got through meanwhile.
		if m, merr := IsMounted(dir); merr != nil || m {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	select {
	case <-served:
	case <-time.After(unmountWait):
	}
	m.log.Info("unmounted (detached)", "dir", dir)
	return nil
}

// tuneReadAhead raises the kernel's read-ahead of this mount (its backing
// device's read_ahead_kb, 128 KiB by default, which caps FUSE's
// max_readahead) to MaxRead, where the process may (root). Best effort.
func (m *FS) tuneReadAhead(dir string) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", uint64(st.Dev)>>8&0xfff, uint64(st.Dev)&0xff|(uint64(st.Dev)>>12)&0xfff00)
	if err := os.WriteFile(p, []byte(strconv.Itoa(m.cfg.MaxRead>>10)), 0o644); err != nil {
		m.log.Debug("kernel read-ahead left at its default", "path", p, "err", err)
	}
}
