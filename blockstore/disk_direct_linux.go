package blockstore

// DirectFileCreator writes payload files with O_DIRECT where the filesystem
// allows it: the device reads the verified chunk straight from its buffer,
// instead of the kernel copying it into freshly allocated page-cache pages.
// Measured on this project's 2-core VM (ext4 on virtio, 4 MiB files):
// buffered writes cost 0.3-2.5 CPU-s per GiB (2.4 when the page cache has
// to grow into memory the VM never touched, as on a node filling its
// cache), O_DIRECT writes 0.1; a node receiving from a peer spent 3.6
// instead of 4.7-5.1 CPU-s per GiB. The cost: the blocks are not in the
// page cache after the write, and reading them back (buffered, coherent
// with the direct write) went to the device, which here also made later
// re-reads slower (S1's SSD hit: 1.0-1.1 instead of 0.66 CPU-s per GiB).
// Hence opt-in (--ssd-direct-write), see docs/PERFORMANCE.md.

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment O_DIRECT wants of buffer address, length and
// file offset: 4 KiB covers every logical block size up to 4Kn drives.
const directAlign = 4096

// createPayloadFile creates name exclusively for writing, with O_DIRECT if
// the filesystem supports it (tmpfs before Linux 6.6 refuses it: EINVAL).
func createPayloadFile(name string) (io.WriteCloser, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_DIRECT, 0o644)
	if err == nil {
		return &directFile{f: f, direct: true}, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return nil, err
	}
	_ = os.Remove(name) // some filesystems create the file before refusing the flag
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

// directFile writes the aligned part of each write with O_DIRECT and the
// rest (the unaligned tail of a last chunk, or a buffer the Go allocator
// did not align) through the page cache, clearing O_DIRECT first.
type directFile struct {
	f      *os.File
	direct bool  // O_DIRECT still set on f
	off    int64 // bytes written so far
}

func (w *directFile) Write(p []byte) (int, error) {
	n := 0
	if w.direct && w.off%directAlign == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0 {
		if k := len(p) &^ (directAlign - 1); k > 0 {
			m, err := w.f.Write(p[:k])
			n += m
			w.off += int64(m)
			if err != nil && !errors.Is(err, syscall.EINVAL) {
				return n, err
			}
		}
	}
	if n == len(p) {
		return n, nil
	}
	if err := w.buffered(); err != nil {
		return n, err
	}
	m, err := w.f.Write(p[n:])
	w.off += int64(m)
	return n + m, err
}

// buffered clears O_DIRECT on the file (once).
func (w *directFile) buffered() error {
	if !w.direct {
		return nil
	}
	raw, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		var fl int
		if fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0); ferr == nil {
			_, ferr = unix.FcntlInt(fd, unix.F_SETFL, fl&^unix.O_DIRECT)
		}
	}); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "fcntl", Path: w.f.Name(), Err: ferr}
	}
	w.direct = false
	return nil
}

func (w *directFile) Close() error { return w.f.Close() }
