package routing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// IdentityFile is the name of the node's private key file inside its data
// directory.
const IdentityFile = "identity.key"

// ErrBadIdentity: the identity file exists but does not hold a usable key.
var ErrBadIdentity = errors.New("routing: bad identity key file")

// LoadOrCreateIdentity returns the node's Ed25519 identity stored in
// <dataDir>/identity.key, creating it (mode 0600, written atomically via a
// temporary file and rename) on first use. The peer ID therefore survives
// restarts.
func LoadOrCreateIdentity(dataDir string) (crypto.PrivKey, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("routing: identity: %w: empty data directory", ErrInvalidConfig)
	}
	path := filepath.Join(dataDir, IdentityFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("routing: identity %s: %w: %v", path, ErrBadIdentity, err)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("routing: identity: %w", err)
	}

	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("routing: identity: generate: %w", err)
	}
	raw, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("routing: identity: marshal: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("routing: identity: %w", err)
	}
	if err := writeFileAtomic(path, raw, 0o600); err != nil {
		return nil, fmt.Errorf("routing: identity: %w", err)
	}
	return key, nil
}

// writeFileAtomic writes data to a temporary file in path's directory, syncs
// it and renames it over path, so a crash never leaves a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
