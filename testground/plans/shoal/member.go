package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// member is one Shoal cluster node built in-process the way `shoal node`
// assembles it (cmd/shoal build and newCluster): libp2p host with the swarm
// key, private DHT, transfer client and server, member list, tiered block
// store (memory + disk) whose removals reach the node, catalog, node.
type member struct {
	host    host.Host
	router  *routing.Router
	members *routing.Members
	store   *blockstore.Tiered
	cat     *catalog.Catalog
	node    *node.Node
	origin  *countingOrigin

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
	once   sync.Once
}

// swarmKeyFor derives the run's 32-byte swarm key from its run ID, so every
// instance of a run holds the same key without exchanging it, and two runs
// never join each other.
func swarmKeyFor(runID string) []byte {
	k := sha256.Sum256([]byte("shoal-testground swarm key\x00" + runID))
	return k[:]
}

// memberConfig is what newMember needs besides the origin.
type memberConfig struct {
	ListenAddr string // multiaddr, e.g. /ip4/127.0.0.1/tcp/0
	SwarmKey   []byte
	Membership string
	DataDir    string // disk tier and nothing else (catalog in memory)
	ChunkSize  int64
	MemCache   int64
	DiskCache  int64
	// UploadLimit and DownloadLimit cap transfer bytes/s (0 = unlimited),
	// as --p2p-upload-limit / --p2p-download-limit do.
	UploadLimit, DownloadLimit int64
}

// newMember builds and starts a node. Close stops it.
func newMember(ctx context.Context, cfg memberConfig, org node.Origin, log *slog.Logger) (_ *member, err error) {
	m := &member{origin: &countingOrigin{Origin: org}, errs: make(chan error, 8)}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	reg := prometheus.NewRegistry()

	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	m.host, err = routing.NewHost(ctx, routing.HostConfig{
		ListenAddrs: []string{cfg.ListenAddr},
		PrivKey:     priv,
		SwarmKey:    cfg.SwarmKey,
		Membership:  cfg.Membership,
	}, routing.WithHostLogger(log), routing.WithHostRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("p2p host: %w", err)
	}
	closers = append(closers, m.host.Close)
	m.router, err = routing.NewDHT(ctx, m.host, routing.Config{}, routing.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("p2p dht: %w", err)
	}
	closers = append(closers, m.router.Close)
	client, err := transfer.NewClient(m.host, transfer.ClientConfig{DownloadBytesPerSec: cfg.DownloadLimit},
		transfer.WithLogger(log), transfer.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("p2p transfer client: %w", err)
	}
	m.members = routing.NewMembers(m.host, transfer.ProtocolID)

	mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: cfg.MemCache},
		blockstore.WithMemoryLogger(log), blockstore.WithMemoryRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("memory tier: %w", err)
	}
	disk, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: filepath.Join(cfg.DataDir, "store"), BudgetBytes: cfg.DiskCache},
		blockstore.WithDiskLogger(log), blockstore.WithDiskRegisterer(reg))
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("disk tier: %w", err)
	}
	m.store, err = blockstore.NewTiered(mem, disk, blockstore.TieredConfig{},
		blockstore.WithTieredLogger(log), blockstore.WithTieredRegisterer(reg))
	if err != nil {
		mem.Close()
		disk.Close()
		return nil, fmt.Errorf("tiered store: %w", err)
	}
	closers = append(closers, m.store.Close)
	m.cat, err = catalog.Open("", catalog.InMemory(), catalog.WithLogger(log))
	if err != nil {
		return nil, err
	}
	closers = append(closers, m.cat.Close)
	m.node, err = node.New(node.Config{ChunkSize: cfg.ChunkSize}, m.store, m.origin, m.cat,
		node.WithLogger(log), node.WithRegisterer(reg),
		node.WithCluster(node.Cluster{Router: m.router, Transfer: client, Members: m.members}))
	if err != nil {
		return nil, err
	}
	closers = append(closers, m.node.Close)
	srv, err := transfer.NewServer(m.host, m.node.PeerHandler(), transfer.ServerConfig{UploadBytesPerSec: cfg.UploadLimit},
		transfer.WithLogger(log), transfer.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("p2p transfer server: %w", err)
	}

	rctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, run := range []func(context.Context) error{disk.Run, srv.Run, m.node.Run} {
		m.wg.Go(func() {
			if err := run(rctx); err != nil && rctx.Err() == nil {
				m.errs <- err
			}
		})
	}
	select {
	case <-srv.Ready():
	case <-ctx.Done():
		cancel()
		m.wg.Wait()
		return nil, ctx.Err()
	}
	return m, nil
}

// failed returns the first background error, if any part stopped early.
func (m *member) failed() error {
	select {
	case err := <-m.errs:
		return err
	default:
		return nil
	}
}

// Close stops the node and releases everything, in reverse order of
// construction.
func (m *member) Close() error {
	var err error
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
		err = errors.Join(m.node.Close(), m.cat.Close(), m.store.Close(), m.router.Close(), m.host.Close())
	})
	return err
}
