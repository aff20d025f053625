package routing

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// SwarmKeySize is the size of a swarm key in bytes (the libp2p PSK v1 size).
const SwarmKeySize = 32

// swarmKeyHeader is the standard libp2p PSK v1 file header, so the same file
// works for both membership modes and for other libp2p tooling.
const swarmKeyHeader = "/key/swarm/psk/1.0.0/\n/base16/\n"

// ErrBadSwarmKey: the swarm key file is missing, malformed or of the wrong size.
var ErrBadSwarmKey = errors.New("routing: bad swarm key")

// GenerateSwarmKey returns a new random swarm key in the standard libp2p file
// format (header, "/base16/", 64 hex characters, newline).
func GenerateSwarmKey() []byte {
	key := make([]byte, SwarmKeySize)
	if _, err := rand.Read(key); err != nil {
		// crypto/rand.Read never fails on supported platforms.
		panic(fmt.Sprintf("routing: crypto/rand: %v", err))
	}
	return EncodeSwarmKey(key)
}

// EncodeSwarmKey renders a raw 32-byte key in the swarm key file format.
func EncodeSwarmKey(key []byte) []byte {
	return []byte(swarmKeyHeader + hex.EncodeToString(key) + "\n")
}

// ParseSwarmKey decodes a swarm key file's contents (base16, base64 or bin
// encodings of the libp2p PSK v1 format) and returns the raw 32-byte key.
func ParseSwarmKey(data []byte) ([]byte, error) {
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSwarmKey, err)
	}
	if len(psk) != SwarmKeySize {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d", ErrBadSwarmKey, len(psk), SwarmKeySize)
	}
	return psk, nil
}

// LoadSwarmKey reads and parses the swarm key file at path.
func LoadSwarmKey(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no swarm key file configured (the cluster is private)", ErrBadSwarmKey)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSwarmKey, err)
	}
	key, err := ParseSwarmKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}
