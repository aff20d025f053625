package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sync/errgroup"
)

// ErrInvalidConfig: a Config failed validation.
var ErrInvalidConfig = errors.New("bootstrap: invalid config")

// Defaults for Config.
const (
	// DefaultInterval: sources are re-resolved every 30 s while connected,
	// so new pods behind a DNS name are found within half a minute.
	DefaultInterval = 30 * time.Second
	// DefaultMinBackoff / DefaultMaxBackoff: with no peer at all, retry
	// after 1 s, doubling up to 1 min (a whole-cluster restart settles in
	// seconds without hammering DNS).
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultConnectTimeout bounds one connection attempt.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxConnect caps connections attempted per round: enough to join
	// the DHT; kad-dht finds the rest.
	DefaultMaxConnect = 16
	// connectParallelism: concurrent dials in a round.
	connectParallelism = 8
)

// Config configures a Bootstrapper. Zero fields take defaults.
type Config struct {
	Interval       time.Duration // default DefaultInterval
	MinBackoff     time.Duration // default DefaultMinBackoff
	MaxBackoff     time.Duration // default DefaultMaxBackoff
	ConnectTimeout time.Duration // default DefaultConnectTimeout
	MaxConnect     int           // default DefaultMaxConnect
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxConnect == 0 {
		c.MaxConnect = DefaultMaxConnect
	}
}

// Validate reports the first problem in c (after defaults are applied).
func (c Config) Validate() error {
	c.setDefaults()
	if c.Interval < 0 || c.MinBackoff < 0 || c.ConnectTimeout < 0 || c.MaxConnect < 0 {
		return fmt.Errorf("%w: negative value", ErrInvalidConfig)
	}
	if c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("%w: max backoff %v < min backoff %v", ErrInvalidConfig, c.MaxBackoff, c.MinBackoff)
	}
	return nil
}

// Bootstrapper keeps a host connected to the peers of its sources.
type Bootstrapper struct {
	host    host.Host
	cfg     Config
	sources []Source
	log     *slog.Logger
}

// Option injects collaborators.
type Option func(*Bootstrapper)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(b *Bootstrapper) { b.log = l } }

// New returns a Bootstrapper for h over sources.
func New(h host.Host, cfg Config, sources []Source, opts ...Option) (*Bootstrapper, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("%w: no peer source", ErrInvalidConfig)
	}
	b := &Bootstrapper{host: h, cfg: cfg, sources: sources, log: slog.Default()}
	for _, o := range opts {
		o(b)
	}
	b.log = b.log.With("component", "bootstrap")
	return b, nil
}

// runner is a source with its own lifecycle (MDNSSource).
type runner interface {
	Run(ctx context.Context) error
}

// Run connects to peers until ctx is done: a round at start, then every
// Interval while the host has peers; with no peers, rounds repeat with
// exponential backoff, and losing the last peer starts a round at once.
func (b *Bootstrapper) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	var runErrs []error
	var errMu sync.Mutex
	for _, s := range b.sources {
		if r, ok := s.(runner); ok {
			wg.Go(func() {
				if err := r.Run(ctx); err != nil {
					errMu.Lock()
					runErrs = append(runErrs, err)
					errMu.Unlock()
				}
			})
		}
	}

	lost := make(chan struct{}, 1)
	notifee := &network.NotifyBundle{DisconnectedF: func(n network.Network, _ network.Conn) {
		if len(n.Peers()) == 0 {
			select {
			case lost <- struct{}{}:
			default:
			}
		}
	}}
	b.host.Network().Notify(notifee)
	defer b.host.Network().StopNotify(notifee)

	backoff := b.cfg.MinBackoff
	for {
		b.round(ctx)
		wait := b.cfg.Interval
		if len(b.host.Network().Peers()) == 0 {
			wait = backoff
			backoff = min(backoff*2, b.cfg.MaxBackoff)
		} else {
			backoff = b.cfg.MinBackoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			cancel()
			wg.Wait()
			return errors.Join(runErrs...)
		case <-lost:
			b.log.Warn("lost all peers, re-bootstrapping")
		case <-t.C:
		}
		t.Stop()
	}
}

// round resolves all sources and connects to the peers not yet connected.
func (b *Bootstrapper) round(ctx context.Context) {
	self := b.host.ID()
	candidates := map[peer.ID]peer.AddrInfo{}
	for _, s := range b.sources {
		ais, err := s.Peers(ctx)
		if err != nil {
			b.log.Warn("peer source failed", "err", err)
		}
		for _, ai := range ais {
			if ai.ID == self || ai.ID == "" {
				continue
			}
			c := candidates[ai.ID]
			c.ID = ai.ID
			c.Addrs = mergeAddrs(c.Addrs, ai.Addrs)
			candidates[ai.ID] = c
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(connectParallelism)
	n := 0
	for _, ai := range candidates {
		if b.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		if n == b.cfg.MaxConnect {
			break
		}
		n++
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(gctx, b.cfg.ConnectTimeout)
			defer cancel()
			// Our own backoff paces retries; libp2p's per-peer dial backoff
			// would otherwise delay reaching a peer that came back.
			if sw, ok := b.host.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(ai.ID)
			}
			if err := b.host.Connect(cctx, ai); err != nil {
				b.log.Debug("connect failed", "peer", ai.ID, "err", err)
				for _, s := range b.sources {
					if f, ok := s.(interface{ Forget(peer.ID) }); ok {
						f.Forget(ai.ID)
					}
				}
			}
			return nil
		})
	}
	g.Wait()
}

func mergeAddrs(a, b []ma.Multiaddr) []ma.Multiaddr {
	out := a
	for _, x := range b {
		dup := false
		for _, y := range out {
			if x.Equal(y) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}
