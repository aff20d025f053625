// Package badgerrepair opens a Badger v4 database that may be damaged on
// disk without letting the damage take the process down, moves a damaged
// directory aside, and salvages the records its readable tables still hold.
//
// Badger opens its tables in goroutines of its own, and a truncated or
// garbled table makes it panic there (table.initBiggestAndSmallest), where
// no recover of the caller can reach. Open therefore checks every table
// first, in the calling goroutine, with the same table code and full
// checksum verification, and treats a table that fails (or panics) as
// damage; it also recovers panics of badger.Open itself and counts any open
// error that is not about locks, permissions or space as damage. What to do
// with a damaged directory is the caller's choice: the block index is
// rebuilt from the chunk files, the catalog is moved aside and refilled
// from Salvage.
package badgerrepair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"
)

// ErrDamaged marks a database directory that Badger cannot open because of
// what is on disk (a bad table, manifest or value log), as opposed to a
// lock held by another process, a permission problem or a full disk.
var ErrDamaged = errors.New("badger database damaged")

// Open opens the database described by opts (opts.Dir), refusing damage
// with an error wrapping ErrDamaged instead of a panic. Errors that say
// nothing about the files' contents (another process holds the lock, no
// permission, no space) are returned as they are: the directory is not
// damaged and must not be moved aside.
func Open(opts badger.Options) (*badger.DB, error) {
	if err := check(opts); err != nil {
		return nil, err
	}
	return open(opts)
}

func open(opts badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: badger panicked while opening %s: %s", ErrDamaged, opts.Dir, firstLine(r))
		}
	}()
	db, err = badger.Open(opts)
	if err != nil && !environmental(err) {
		err = fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return db, err
}

// environmental reports errors that come from the machine, not from the
// database's files.
func environmental(err error) bool {
	for _, e := range []error{syscall.EWOULDBLOCK, syscall.EAGAIN, syscall.EACCES, syscall.EPERM,
		syscall.EROFS, syscall.ENOSPC, syscall.EDQUOT, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return strings.Contains(err.Error(), "Cannot acquire directory lock")
}

// check verifies every table of the directory in this goroutine. It takes
// the directory lock first (as Badger does), so a database in use by
// another process is reported as such and never judged.
func check(opts badger.Options) error {
	if opts.InMemory {
		return nil
	}
	unlock, err := lock(opts.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	tables, err := filepath.Glob(filepath.Join(opts.Dir, "*.sst"))
	if err != nil {
		return err
	}
	if err := checkManifest(opts, tables); err != nil {
		return fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	for _, path := range tables {
		if err := readTable(path, opts, nil); err != nil {
			return fmt.Errorf("%w: table %s: %w", ErrDamaged, filepath.Base(path), err)
		}
	}
	return nil
}

// checkManifest replays the MANIFEST as Badger will. Badger takes a torn
// last record for an interrupted append, truncates it and deletes every
// table the rest does not name: after a crash during a compaction those
// are copies of data still named, but a MANIFEST cut short by damage would
// lose live tables without a word. So a torn MANIFEST that leaves tables
// unnamed is damage (and the tables are still there for Salvage).
func checkManifest(opts badger.Options, tables []string) (err error) {
	f, err := os.Open(filepath.Join(opts.Dir, badger.ManifestFilename))
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new database, or one Badger will refuse itself
	}
	if err != nil {
		return err
	}
	defer f.Close()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("MANIFEST unreadable: %s", firstLine(r))
		}
	}()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	m, end, err := badger.ReplayManifestFile(f, opts.ExternalMagicVersion, opts)
	if err != nil {
		return fmt.Errorf("MANIFEST: %w", err)
	}
	if end >= info.Size() {
		return nil
	}
	var unnamed []string
	for _, path := range tables {
		if id, ok := table.ParseFileID(filepath.Base(path)); ok {
			if _, named := m.Tables[id]; !named {
				unnamed = append(unnamed, filepath.Base(path))
			}
		}
	}
	if len(unnamed) > 0 {
		return fmt.Errorf("MANIFEST torn at byte %d of %d does not name tables %v, which Badger would delete", end, info.Size(), unnamed)
	}
	return nil
}

// lock takes Badger's directory lock (flock on the directory) for the
// duration of a check. A missing directory needs no lock.
func lock(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot acquire directory lock on %q (another process is using this database): %w", dir, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// readTable opens one table read-only with full checksum verification and,
// if fn is not nil, hands it every entry. A panic in Badger's table code is
// returned as an error.
func readTable(path string, opts badger.Options, fn func(key []byte, vs y.ValueStruct)) (err error) {
	if _, ok := table.ParseFileID(filepath.Base(path)); !ok {
		return fmt.Errorf("not a table file name")
	}
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	// With a valid name and no verification at open, OpenTable leaves mf
	// open on every error (and on a panic), so it is closed once, here.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable: %s", firstLine(r))
		}
		_ = mf.Close(-1) // never DecrRef the table: at zero Badger deletes the file
	}()
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly:           true,
		ChkMode:            options.NoVerification,
		BlockSize:          opts.BlockSize,
		BloomFalsePositive: opts.BloomFalsePositive,
		Compression:        opts.Compression,
	})
	if err != nil {
		return err
	}
	if err := t.VerifyChecksum(); err != nil {
		return err
	}
	if fn == nil {
		return nil
	}
	it := t.NewIterator(0)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		fn(it.Key(), it.ValueCopy())
	}
	return nil
}

// firstLine condenses a panic value (Badger's are multi-line dumps) to one
// line of at most 200 characters.
func firstLine(r any) string {
	s := strings.Join(strings.Fields(fmt.Sprint(r)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return "panic: " + s
}

// MoveAside renames a damaged directory to <dir>.damaged-<UTC time> and
// returns the new name. The caller then opens a fresh database at dir.
func MoveAside(dir string, now time.Time) (string, error) {
	aside := dir + ".damaged-" + now.UTC().Format("20060102T150405.000Z")
	if err := os.Rename(dir, aside); err != nil {
		return "", fmt.Errorf("move damaged database aside: %w", err)
	}
	return aside, nil
}

// Badger entry flags (value.go of badger v4, unexported there).
const (
	bitDelete       byte = 1 << 0
	bitValuePointer byte = 1 << 1
)

// SalvageStats says what Salvage found.
type SalvageStats struct {
	Tables, BadTables int // tables read, tables that could not be read
	Keys              int // live keys handed to fn
	LostValues        int // live keys whose value was in the value log (not salvaged)
}

// Salvage reads every table of the damaged directory dir that still opens
// and verifies, and calls fn, in key order, with the newest live version of
// each key (deleted and expired keys and Badger's own keys skipped). Values
// kept in the value log rather than in the table are not salvaged (counted
// in LostValues); nor are writes still only in the memtable log (.mem) of a
// process that died. opts must be the options the database was written with.
func Salvage(dir string, opts badger.Options, fn func(key, value []byte) error) (SalvageStats, error) {
	var st SalvageStats
	paths, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return st, err
	}
	type entry struct {
		ts        uint64
		meta      byte
		expiresAt uint64
		value     []byte
	}
	newest := make(map[string]entry)
	for _, path := range paths {
		err := readTable(path, opts, func(k []byte, vs y.ValueStruct) {
			key, ts := y.ParseKey(k), y.ParseTs(k)
			if e, ok := newest[string(key)]; ok && e.ts >= ts {
				return
			}
			newest[string(key)] = entry{ts: ts, meta: vs.Meta, expiresAt: vs.ExpiresAt, value: vs.Value}
		})
		if err != nil {
			st.BadTables++
			continue
		}
		st.Tables++
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	now := uint64(time.Now().Unix())
	for _, k := range keys {
		e := newest[k]
		switch {
		case strings.HasPrefix(k, "!badger!"):
			continue
		case e.meta&bitDelete != 0, e.expiresAt != 0 && e.expiresAt <= now:
			continue
		case e.meta&bitValuePointer != 0:
			st.LostValues++
			continue
		}
		if err := fn([]byte(k), e.value); err != nil {
			return st, err
		}
		st.Keys++
	}
	return st, nil
}
