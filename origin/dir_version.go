package origin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// fingerprintSpan is how many bytes at each end of a file go into its
// version fingerprint. It covers the one change the kernel's timestamps can
// miss (a second write within the same timestamp tick, see the package
// documentation) for edits near either end, at a cost that does not grow
// with the file: a HEAD of a 1 GiB file reads 128 KiB and takes well under
// a millisecond from the page cache, where hashing the whole file takes
// seconds (docs/ARCHITECTURE.md, "The file origin").
const fingerprintSpan = 64 << 10

// versionReadTries bounds how often a version is re-read when the file
// changes while it is being fingerprinted.
const versionReadTries = 3

// fileVersion is one version of a file as the kernel reports it. CtimeNs is
// what makes it change-detecting: every change to a file's bytes (write,
// truncate) and to its inode (chmod, Chtimes, link) sets ctime to the
// current time, and no system call sets it back, so an in-place rewrite
// that restores size and mtime still shows.
type fileVersion struct {
	Size    int64
	MtimeNs int64
	CtimeNs int64
	Ino     uint64
}

func versionOf(fi fs.FileInfo) fileVersion {
	v := fileVersion{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v.Ino = uint64(st.Ino)
		v.CtimeNs = ctimeNs(st)
	}
	return v
}

// fileState is a version of an open file with its fingerprint: a hex
// SHA-256 of the first and last fingerprintSpan bytes (the whole file when
// it is smaller than two spans).
type fileState struct {
	fi fs.FileInfo
	v  fileVersion
	fp string
}

// errNotRegular: the key names something other than a regular file.
var errNotRegular = fmt.Errorf("not a regular file: %w", ErrNotFound)

// readState stats f, fingerprints it and stats it again, so the
// fingerprint belongs to the version returned. A file that keeps changing
// while it is read fails with ErrUnavailable: it has no version to offer.
func readState(f *os.File) (fileState, error) {
	for range versionReadTries {
		fi, err := f.Stat()
		if err != nil {
			return fileState{}, err
		}
		if !fi.Mode().IsRegular() {
			return fileState{}, errNotRegular
		}
		v := versionOf(fi)
		fp, ferr := fingerprint(f, v.Size)
		fi2, err := f.Stat()
		if err != nil {
			return fileState{}, err
		}
		if versionOf(fi2) == v && ferr == nil {
			return fileState{fi: fi, v: v, fp: fp}, nil
		}
		// Changed underneath (a short read is a truncation): look again.
	}
	return fileState{}, fmt.Errorf("the file changed while its version was read, %d times: %w", versionReadTries, ErrUnavailable)
}

func fingerprint(f *os.File, size int64) (string, error) {
	var r io.Reader = io.NewSectionReader(f, 0, size)
	want := size
	if size > 2*fingerprintSpan {
		r = io.MultiReader(io.NewSectionReader(f, 0, fingerprintSpan), io.NewSectionReader(f, size-fingerprintSpan, fingerprintSpan))
		want = 2 * fingerprintSpan
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if n != want { // the file shrank while it was read
		return "", io.ErrUnexpectedEOF
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// derivedETag is the ETag of a file Dir did not write (or whose sidecar no
// longer describes it): strong, and different for every version.
func derivedETag(st fileState) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "v2|%d|%d|%d|%d|%s", st.v.Size, st.v.MtimeNs, st.v.CtimeNs, st.v.Ino, st.fp))
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// fileBody streams a byte range of one version of a file. After every read
// it checks (fstat) that the file is still that version; if not, the read
// fails with ErrPreconditionFailed and its bytes are withheld, so a body
// that reaches io.EOF holds bytes of one version only.
type fileBody struct {
	f   *os.File
	r   *io.SectionReader
	v   fileVersion
	tgt string
}

func (b *fileBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n == 0 && err == nil {
		return 0, nil
	}
	fi, serr := b.f.Stat()
	if serr != nil {
		return 0, fmt.Errorf("origin: dir GetObject %s: %w", b.tgt, serr)
	}
	if versionOf(fi) != b.v {
		return 0, fmt.Errorf("origin: dir GetObject %s: the file changed while it was read: %w", b.tgt, ErrPreconditionFailed)
	}
	return n, err
}

func (b *fileBody) Close() error { return b.f.Close() }
