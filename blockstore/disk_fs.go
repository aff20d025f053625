package blockstore

import "io"

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

// OSFileCreator returns the default FileCreator: os.OpenFile with O_EXCL,
// and on Linux O_DIRECT for the aligned part of what is written (see
// disk_direct_linux.go).
func OSFileCreator() FileCreator {
	return FileCreatorFunc(createPayloadFile)
}
