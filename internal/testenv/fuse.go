package testenv

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	fuseOnce sync.Once
	fuseErr  string // why FUSE cannot be used here; "" when it can
)

// RequireFUSE makes sure this machine can run FUSE mounts: /dev/fuse must
// exist, and fusermount3 (Debian package fuse3) is installed with apt-get
// when it is missing and the test runs as root. Without them the test is
// skipped, saying why.
func RequireFUSE(t testing.TB) {
	t.Helper()
	fuseOnce.Do(func() {
		if _, err := os.Stat("/dev/fuse"); err != nil {
			fuseErr = "no /dev/fuse on this machine: " + err.Error()
			return
		}
		if _, err := exec.LookPath("fusermount3"); err == nil {
			return
		}
		if os.Geteuid() != 0 {
			fuseErr = "fusermount3 is missing (Debian package fuse3) and the test is not root, so it cannot install it"
			return
		}
		out, err := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "fuse3").CombinedOutput()
		if err != nil {
			// The package lists may be missing on a fresh machine.
			if o2, err2 := exec.Command("apt-get", "update").CombinedOutput(); err2 != nil {
				fuseErr = "apt-get update: " + err2.Error() + ": " + tail(o2)
				return
			}
			out, err = exec.Command("apt-get", "install", "-y", "--no-install-recommends", "fuse3").CombinedOutput()
		}
		if err != nil {
			fuseErr = "apt-get install fuse3: " + err.Error() + ": " + tail(out)
		}
	})
	if fuseErr != "" {
		if os.Geteuid() == 0 && !strings.HasPrefix(fuseErr, "no /dev/fuse") {
			t.Fatalf("testenv: FUSE: %s", fuseErr)
		}
		t.Skipf("testenv: FUSE: %s", fuseErr)
	}
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 500 {
		s = s[len(s)-500:]
	}
	return s
}

// WaitMounted waits until dir is a FUSE mount of this mount namespace.
func WaitMounted(t testing.TB, dir string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if isFUSEMount(dir) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s not mounted within %v", dir, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IsFUSEMount reports whether dir is a FUSE mount point now.
func IsFUSEMount(dir string) bool { return isFUSEMount(dir) }

func isFUSEMount(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != dir {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) && strings.HasPrefix(f[i+1], "fuse") {
				return true
			}
		}
	}
	return false
}

// Unmount detaches a FUSE mount left behind by a failed test.
func Unmount(dir string) {
	if isFUSEMount(dir) {
		exec.Command("fusermount3", "-u", "-z", dir).Run()
	}
}
