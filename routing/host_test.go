package routing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const testProto = "/shoal/test-echo/1.0.0"

func testKey(t testing.TB, b byte) []byte {
	t.Helper()
	return bytes.Repeat([]byte{b}, SwarmKeySize)
}

func newTestHost(t testing.TB, swarmKey []byte, membership string) host.Host {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(context.Background(), HostConfig{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		PrivKey:     priv,
		SwarmKey:    swarmKey,
		Membership:  membership,
		ConnLow:     50,
		ConnHigh:    100,
	}, WithHostLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newPlainHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// echo registers an echo handler on h.
func echo(h host.Host) {
	h.SetStreamHandler(testProto, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
}

func roundTrip(ctx context.Context, from, to host.Host) error {
	s, err := from.NewStream(ctx, to.ID(), testProto)
	if err != nil {
		return err
	}
	defer s.Close()
	msg := []byte("hello member")
	if _, err := s.Write(msg); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo mismatch")
	}
	return nil
}

// TestMembership: a refused pnet handshake can take seconds to fail, so the
// cases run in parallel.
func TestMembership(t *testing.T) {
	key := testKey(t, 1)
	for _, mode := range []string{MembershipAuth, MembershipPNet} {
		t.Run(mode+"/same key connects", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a, b := newTestHost(t, key, mode), newTestHost(t, key, mode)
			echo(b)
			if err := a.Connect(ctx, info(b)); err != nil {
				t.Fatalf("connect: %v", err)
			}
			if err := roundTrip(ctx, a, b); err != nil {
				t.Fatalf("stream: %v", err)
			}
			// And the other way round over the same connection.
			echo(a)
			if err := roundTrip(ctx, b, a); err != nil {
				t.Fatalf("reverse stream: %v", err)
			}
		})
		t.Run(mode+"/wrong key refused", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a, b := newTestHost(t, key, mode), newTestHost(t, testKey(t, 2), mode)
			echo(a)
			echo(b)
			if err := a.Connect(ctx, info(b)); err == nil {
				// With TLS 1.3 the dialer may finish its side first; the
				// connection must still be unusable.
				if err := roundTrip(ctx, a, b); err == nil {
					t.Fatal("host with a different swarm key could open a stream")
				}
			}
			if err := roundTrip(ctx, b, a); err == nil {
				t.Fatal("host with a different swarm key could open a stream (reverse)")
			}
			if n := len(a.Network().ConnsToPeer(b.ID())); n != 0 {
				t.Fatalf("%d connections left open to a non-member", n)
			}
		})
		t.Run(mode+"/plain libp2p host refused", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			member, outsider := newTestHost(t, key, mode), newPlainHost(t)
			echo(member)
			echo(outsider)
			if err := outsider.Connect(ctx, info(member)); err == nil {
				if err := roundTrip(ctx, outsider, member); err == nil {
					t.Fatal("plain libp2p host reached a member's protocol")
				}
			}
			if err := member.Connect(ctx, info(outsider)); err == nil {
				if err := roundTrip(ctx, member, outsider); err == nil {
					t.Fatal("member connected to a plain libp2p host")
				}
			}
		})
	}
}

func TestAuthConnectionUsesTLSWithEarlyMuxer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := testKey(t, 3)
	a, b := newTestHost(t, key, MembershipAuth), newTestHost(t, key, MembershipAuth)
	if err := a.Connect(ctx, info(b)); err != nil {
		t.Fatal(err)
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) == 0 {
		t.Fatal("no connection")
	}
	st := conns[0].ConnState()
	if st.Security != AuthTLSID {
		t.Errorf("security = %q, want %q", st.Security, AuthTLSID)
	}
	if !st.UsedEarlyMuxerNegotiation {
		t.Errorf("early muxer negotiation lost by the auth wrapper: %+v", st)
	}
}

func TestNewHostValidation(t *testing.T) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	for name, cfg := range map[string]HostConfig{
		"no swarm key":   {PrivKey: priv},
		"short key":      {PrivKey: priv, SwarmKey: []byte("short")},
		"no identity":    {SwarmKey: testKey(t, 1)},
		"bad membership": {PrivKey: priv, SwarmKey: testKey(t, 1), Membership: "open"},
		"bad addr":       {PrivKey: priv, SwarmKey: testKey(t, 1), ListenAddrs: []string{"127.0.0.1:4001"}},
		"low > high":     {PrivKey: priv, SwarmKey: testKey(t, 1), ConnLow: 10, ConnHigh: 5},
	} {
		t.Run(name, func(t *testing.T) {
			h, err := NewHost(context.Background(), cfg)
			if err == nil {
				h.Close()
				t.Fatal("expected an error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v is not ErrInvalidConfig", err)
			}
		})
	}
}

func TestIdentityPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("identity changed between loads")
	}
	if k1.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v, want Ed25519", k1.Type())
	}
	st, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, want 0600", st.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(dir, IdentityFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(dir); !errors.Is(err, ErrBadIdentity) {
		t.Fatalf("corrupt identity: got %v, want ErrBadIdentity", err)
	}
}

func TestSwarmKeyFile(t *testing.T) {
	data := GenerateSwarmKey()
	if !bytes.HasPrefix(data, []byte("/key/swarm/psk/1.0.0/\n/base16/\n")) {
		t.Fatalf("unexpected header: %q", data)
	}
	path := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := LoadSwarmKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != SwarmKeySize {
		t.Fatalf("key length %d", len(key))
	}
	if !bytes.Equal(EncodeSwarmKey(key), data) {
		t.Fatal("encode(load(file)) != file")
	}
	if bytes.Equal(GenerateSwarmKey(), data) {
		t.Fatal("two generated keys are equal")
	}
	for name, bad := range map[string]string{
		"empty":      "",
		"no header":  "00112233",
		"short hex":  "/key/swarm/psk/1.0.0/\n/base16/\n0011\n",
		"not hex":    "/key/swarm/psk/1.0.0/\n/base16/\nzz" + string(bytes.Repeat([]byte("0"), 62)) + "\n",
		"bad encode": "/key/swarm/psk/1.0.0/\n/base99/\n00\n",
	} {
		if _, err := ParseSwarmKey([]byte(bad)); !errors.Is(err, ErrBadSwarmKey) {
			t.Errorf("%s: got %v, want ErrBadSwarmKey", name, err)
		}
	}
	if _, err := LoadSwarmKey(""); !errors.Is(err, ErrBadSwarmKey) {
		t.Errorf("missing path: got %v", err)
	}
	if _, err := LoadSwarmKey(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, ErrBadSwarmKey) {
		t.Errorf("missing file: got %v", err)
	}
}

func TestIdentifyPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := testKey(t, 4)
	member := newTestHost(t, key, MembershipAuth)
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	addr := member.Addrs()[0]
	id, err := IdentifyPeer(ctx, addr, priv, key)
	if err != nil {
		t.Fatal(err)
	}
	if id != member.ID() {
		t.Fatalf("identified %s, want %s", id, member.ID())
	}
	if _, err := IdentifyPeer(ctx, addr, priv, testKey(t, 5)); err == nil {
		t.Fatal("identified a peer with the wrong swarm key")
	}
	if _, err := IdentifyPeer(ctx, newPlainHost(t).Addrs()[0], priv, key); err == nil {
		t.Fatal("identified a plain libp2p host")
	}
}
