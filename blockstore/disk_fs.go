package blockstore

import (
	"io"
	"os"
)

// FileCreator creates the temporary files that chunk payloads are written
// to before they are renamed into place. The default creates OS files;
// WithFileCreator wraps or replaces it (quota accounting, fault injection).
type FileCreator interface {
	// Create creates name exclusively for writing.
	Create(name string) (io.WriteCloser, error)
}

// FileCreatorFunc adapts a function to FileCreator.
type FileCreatorFunc func(name string) (io.WriteCloser, error)

// Create calls f.
func (f FileCreatorFunc) Create(name string) (io.WriteCloser, error) { return f(name) }

// OSFileCreator returns the default FileCreator: os.OpenFile with O_EXCL.
func OSFileCreator() FileCreator {
	return FileCreatorFunc(func(name string) (io.WriteCloser, error) {
		return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	})
}

// DirectFileCreator is OSFileCreator writing with O_DIRECT where it can:
// on Linux, the aligned part of each write goes from the caller's buffer to
// the device without a copy into the page cache (see disk_direct_linux.go
// for what that saves and costs); elsewhere it is OSFileCreator.
func DirectFileCreator() FileCreator {
	return FileCreatorFunc(createPayloadFile)
}
