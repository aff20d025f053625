//go:build !linux

package blockstore

import (
	"io"
	"os"
)

// createPayloadFile creates name exclusively for writing (O_DIRECT is used
// on Linux only; see disk_direct_linux.go).
func createPayloadFile(name string) (io.WriteCloser, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}
