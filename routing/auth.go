package routing

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// Security protocol IDs of the swarm-key-authenticated transports. They differ
// from libp2p's own IDs on purpose: a peer that does not speak Shoal's
// membership protocol fails security negotiation instead of reaching it.
const (
	AuthTLSID   = "/shoal/tls-psk/1.0.0"
	AuthNoiseID = "/shoal/noise-psk/1.0.0"
)

const (
	// authLabel domain-separates the membership MAC from any other use of
	// the swarm key.
	authLabel = "shoal-auth-v1"
	// authNonceSize: 32 random bytes per side make replaying a recorded
	// exchange into a new connection hopeless.
	authNonceSize = 32
	// authTimeout bounds the exchange (one round trip after the handshake);
	// a peer that says nothing is dropped quickly.
	authTimeout = 10 * time.Second
)

// ErrNotMember: the remote peer did not prove knowledge of the swarm key.
var ErrNotMember = errors.New("routing: peer is not a cluster member (swarm key mismatch)")

// authTransport wraps a libp2p secure transport with the swarm-key proof.
type authTransport struct {
	id    protocol.ID
	psk   []byte
	inner sec.SecureTransport
}

var _ sec.SecureTransport = (*authTransport)(nil)

// authTLSConstructor returns a libp2p.Security constructor for TLS + proof.
// Its parameters are filled by libp2p's dependency injection.
func authTLSConstructor(psk []byte) func(protocol.ID, crypto.PrivKey, []tptu.StreamMuxer) (*authTransport, error) {
	return func(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*authTransport, error) {
		inner, err := libp2ptls.New(libp2ptls.ID, key, muxers)
		if err != nil {
			return nil, err
		}
		return &authTransport{id: id, psk: psk, inner: inner}, nil
	}
}

// authNoiseConstructor returns a libp2p.Security constructor for Noise + proof.
func authNoiseConstructor(psk []byte) func(protocol.ID, crypto.PrivKey, []tptu.StreamMuxer) (*authTransport, error) {
	return func(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*authTransport, error) {
		inner, err := noise.New(noise.ID, key, muxers)
		if err != nil {
			return nil, err
		}
		return &authTransport{id: id, psk: psk, inner: inner}, nil
	}
}

func (t *authTransport) ID() protocol.ID { return t.id }

func (t *authTransport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.inner.SecureInbound(ctx, insecure, p)
	if err != nil {
		return nil, err
	}
	return t.prove(ctx, c, false)
}

func (t *authTransport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.inner.SecureOutbound(ctx, insecure, p)
	if err != nil {
		return nil, err
	}
	return t.prove(ctx, c, true)
}

// prove runs the membership exchange over the already-secured conn. Both
// sides send a fresh nonce, then HMAC(psk, label || initiatorNonce ||
// responderNonce || senderID || receiverID), and check the other side's MAC
// in constant time. The returned conn is the inner one, unchanged (so its
// ConnState, including TLS early muxer negotiation, is preserved).
func (t *authTransport) prove(ctx context.Context, c sec.SecureConn, initiator bool) (sec.SecureConn, error) {
	deadline := time.Now().Add(authTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, err
	}
	if err := t.exchange(c, initiator); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (t *authTransport) exchange(c sec.SecureConn, initiator bool) error {
	local := make([]byte, authNonceSize)
	if _, err := rand.Read(local); err != nil {
		return err
	}
	// Writes are tiny and go out without waiting for the peer, so both sides
	// can write first and then read without deadlocking.
	if _, err := c.Write(local); err != nil {
		return fmt.Errorf("routing: auth: send nonce: %w", err)
	}
	remote := make([]byte, authNonceSize)
	if _, err := io.ReadFull(c, remote); err != nil {
		return fmt.Errorf("routing: auth: read nonce: %w: %w", ErrNotMember, err)
	}
	iNonce, rNonce := local, remote
	if !initiator {
		iNonce, rNonce = remote, local
	}
	self, other := c.LocalPeer(), c.RemotePeer()
	mine := authMAC(t.psk, iNonce, rNonce, self, other)
	if _, err := c.Write(mine); err != nil {
		return fmt.Errorf("routing: auth: send proof: %w", err)
	}
	theirs := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, theirs); err != nil {
		return fmt.Errorf("routing: auth: read proof: %w: %w", ErrNotMember, err)
	}
	want := authMAC(t.psk, iNonce, rNonce, other, self)
	if !hmac.Equal(theirs, want) {
		return fmt.Errorf("routing: auth: %w: remote %s", ErrNotMember, other)
	}
	return nil
}

func authMAC(psk, iNonce, rNonce []byte, sender, receiver peer.ID) []byte {
	m := hmac.New(sha256.New, psk)
	m.Write([]byte(authLabel))
	m.Write(iNonce)
	m.Write(rNonce)
	m.Write([]byte(sender))
	m.Write([]byte(receiver))
	return m.Sum(nil)
}
