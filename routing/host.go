package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/pnet"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrInvalidConfig: a Config or HostConfig failed validation.
var ErrInvalidConfig = errors.New("routing: invalid config")

// Membership modes (HostConfig.Membership).
const (
	// MembershipAuth proves the swarm key once per connection after the
	// TLS/Noise handshake (see the package doc). Default.
	MembershipAuth = "auth"
	// MembershipPNet uses libp2p's private network (XSalsa20 over every byte).
	MembershipPNet = "pnet"
)

// Defaults for HostConfig.
const (
	DefaultListenAddr = "/ip4/0.0.0.0/tcp/4001"
	// DefaultConnLow/High: a cache cluster keeps connections to every peer it
	// exchanges chunks with; 100-400 is comfortable for clusters of a few
	// hundred nodes without holding thousands of idle connections.
	DefaultConnLow  = 100
	DefaultConnHigh = 400
	// DefaultConnGrace protects new connections from trimming long enough for
	// a DHT lookup and a first transfer.
	DefaultConnGrace = time.Minute
	// DefaultStreamsPerPeer: libp2p's autoscaled per-peer default (a few
	// dozen) is sized for the public network; bulk transfer opens many
	// parallel chunk streams to the same peer.
	DefaultStreamsPerPeer = 1024
)

// HostConfig configures the libp2p host. The zero value is not valid: a
// swarm key is required (the cluster is private). Call Validate after
// filling it; NewHost applies defaults and validates.
type HostConfig struct {
	// ListenAddrs are multiaddrs to listen on. Default: DefaultListenAddr.
	ListenAddrs []string
	// PrivKey is the node's identity (see LoadOrCreateIdentity). Required.
	PrivKey crypto.PrivKey
	// SwarmKey is the raw 32-byte cluster key (see LoadSwarmKey). Required.
	SwarmKey []byte
	// Membership is MembershipAuth (default) or MembershipPNet.
	Membership string
	// ConnLow, ConnHigh, ConnGrace configure the connection manager.
	// Defaults: DefaultConnLow, DefaultConnHigh, DefaultConnGrace.
	ConnLow, ConnHigh int
	ConnGrace         time.Duration
	// MaxMemoryBytes and MaxFDs scale libp2p's resource manager limits.
	// Zero autoscales from the machine (libp2p defaults).
	MaxMemoryBytes int64
	MaxFDs         int
	// StreamsPerPeer caps concurrent streams per peer and per protocol per
	// peer. Default DefaultStreamsPerPeer.
	StreamsPerPeer int
}

func (c *HostConfig) setDefaults() {
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{DefaultListenAddr}
	}
	if c.Membership == "" {
		c.Membership = MembershipAuth
	}
	if c.ConnLow == 0 {
		c.ConnLow = DefaultConnLow
	}
	if c.ConnHigh == 0 {
		c.ConnHigh = DefaultConnHigh
	}
	if c.ConnGrace == 0 {
		c.ConnGrace = DefaultConnGrace
	}
	if c.StreamsPerPeer == 0 {
		c.StreamsPerPeer = DefaultStreamsPerPeer
	}
}

// Validate reports the first problem in c (after defaults are applied).
func (c HostConfig) Validate() error {
	c.setDefaults()
	if c.PrivKey == nil {
		return fmt.Errorf("%w: no identity key", ErrInvalidConfig)
	}
	if len(c.SwarmKey) != SwarmKeySize {
		return fmt.Errorf("%w: swarm key is required and must be %d bytes (got %d)", ErrInvalidConfig, SwarmKeySize, len(c.SwarmKey))
	}
	if c.Membership != MembershipAuth && c.Membership != MembershipPNet {
		return fmt.Errorf("%w: membership %q (want %q or %q)", ErrInvalidConfig, c.Membership, MembershipAuth, MembershipPNet)
	}
	for _, a := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: listen address %q: %v", ErrInvalidConfig, a, err)
		}
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow {
		return fmt.Errorf("%w: connection manager low %d / high %d", ErrInvalidConfig, c.ConnLow, c.ConnHigh)
	}
	if c.ConnGrace < 0 || c.MaxMemoryBytes < 0 || c.MaxFDs < 0 || c.StreamsPerPeer < 0 {
		return fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	return nil
}

// HostOption injects collaborators into NewHost.
type HostOption func(*hostOptions)

type hostOptions struct {
	log   *slog.Logger
	reg   prometheus.Registerer
	extra []libp2p.Option
}

// WithHostLogger sets the logger (default slog.Default()).
func WithHostLogger(l *slog.Logger) HostOption { return func(o *hostOptions) { o.log = l } }

// WithHostRegisterer registers libp2p's metrics with reg. Without it libp2p
// metrics are disabled (libp2p would otherwise use the global registry).
func WithHostRegisterer(reg prometheus.Registerer) HostOption {
	return func(o *hostOptions) { o.reg = reg }
}

// WithLibp2pOptions appends raw libp2p options, for example an extra
// transport (RDMA-capable fabrics plug in here with libp2p.Transport).
func WithLibp2pOptions(opts ...libp2p.Option) HostOption {
	return func(o *hostOptions) { o.extra = append(o.extra, opts...) }
}

// NewHost builds and starts the libp2p host described by cfg: TCP, yamux,
// swarm-key membership, connection manager and resource limits. The caller
// closes the host. ctx is unused by libp2p's constructor but kept for
// symmetry with other I/O constructors.
func NewHost(ctx context.Context, cfg HostConfig, opts ...HostOption) (host.Host, error) {
	_ = ctx
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := hostOptions{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}

	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace))
	if err != nil {
		return nil, fmt.Errorf("routing: connection manager: %w", err)
	}
	rm, err := newResourceManager(cfg)
	if err != nil {
		cm.Close()
		return nil, err
	}

	lopts := []libp2p.Option{
		libp2p.Identity(cfg.PrivKey),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.Ping(true),
	}
	if o.reg != nil {
		lopts = append(lopts, libp2p.PrometheusRegisterer(o.reg))
	} else {
		lopts = append(lopts, libp2p.DisableMetrics())
	}
	lopts = append(lopts, membershipOptions(cfg)...)
	lopts = append(lopts, o.extra...)

	h, err := libp2p.New(lopts...)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("routing: new host: %w", err)
	}
	o.log.With("component", "routing").Info("libp2p host started",
		"peer", h.ID(), "addrs", h.Addrs(), "membership", cfg.Membership)
	return h, nil
}

// membershipOptions returns the security options for cfg.Membership: our
// authenticated TLS then Noise, or libp2p's TLS then Noise under pnet.
func membershipOptions(cfg HostConfig) []libp2p.Option {
	psk := append([]byte(nil), cfg.SwarmKey...)
	if cfg.Membership == MembershipPNet {
		return []libp2p.Option{
			libp2p.PrivateNetwork(pnet.PSK(psk)),
			libp2p.Security(libp2ptls.ID, libp2ptls.New),
			libp2p.Security(noise.ID, noise.New),
		}
	}
	return []libp2p.Option{
		libp2p.Security(AuthTLSID, authTLSConstructor(psk)),
		libp2p.Security(AuthNoiseID, authNoiseConstructor(psk)),
	}
}

func newResourceManager(cfg HostConfig) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	var base rcmgr.ConcreteLimitConfig
	if cfg.MaxMemoryBytes > 0 || cfg.MaxFDs > 0 {
		mem, fds := cfg.MaxMemoryBytes, cfg.MaxFDs
		auto := scaling.AutoScale().ToPartialLimitConfig()
		if mem == 0 {
			mem = int64(auto.System.Memory)
		}
		if fds == 0 {
			fds = int(auto.System.FD)
		}
		base = scaling.Scale(mem, fds)
	} else {
		base = scaling.AutoScale()
	}
	sys := base.ToPartialLimitConfig().System
	streams := rcmgr.LimitVal(cfg.StreamsPerPeer)
	peerLimits := rcmgr.ResourceLimits{
		Streams:         streams,
		StreamsInbound:  streams,
		StreamsOutbound: streams,
	}
	// Half the system memory per peer: one fast peer may take most of the
	// stream windows during a bulk pull.
	peerLimits.Memory = rcmgr.Unlimited64
	if sys.Memory > 0 {
		peerLimits.Memory = sys.Memory / 2
	}
	partial := rcmgr.PartialLimitConfig{
		PeerDefault:         peerLimits,
		ProtocolPeerDefault: peerLimits,
		ServicePeerDefault:  peerLimits,
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(base)))
	if err != nil {
		return nil, fmt.Errorf("routing: resource manager: %w", err)
	}
	return rm, nil
}
