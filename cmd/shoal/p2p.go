package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/bootstrap"
	"github.com/shoal-cache/shoal/internal/config"
	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// cluster is the P2P side of a node: built before the node (which takes
// it through node.WithCluster), then completed by serve once the node
// exists.
type cluster struct {
	priv     crypto.PrivKey
	swarmKey []byte
	host     host.Host
	router   *routing.Router
	client   *transfer.Client
	members  *routing.Members
	// traffic is shared by the transfer client and server: bytes in and
	// out per peer, for shoal peers.
	traffic *transfer.Traffic
}

// newCluster loads the identity and swarm key and starts the libp2p host
// and the DHT. On error everything started is closed; otherwise the caller
// closes with close.
func newCluster(ctx context.Context, c *config.Config, log *slog.Logger, reg prometheus.Registerer) (_ *cluster, err error) {
	key, err := routing.LoadSwarmKey(c.SwarmKey)
	if err != nil {
		return nil, fmt.Errorf("%w: --swarm-key: %w", errUsage, err)
	}
	priv, err := routing.LoadOrCreateIdentity(c.DataDir)
	if err != nil {
		return nil, err
	}
	h, err := routing.NewHost(ctx, routing.HostConfig{
		ListenAddrs:    c.P2PListen,
		PrivKey:        priv,
		SwarmKey:       key,
		Membership:     c.P2PMembership,
		ConnLow:        c.P2PConnLow,
		ConnHigh:       c.P2PConnHigh,
		StreamsPerPeer: c.P2PMaxStreams,
	}, routing.WithHostLogger(log), routing.WithHostRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("p2p host: %w", err)
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	r, err := routing.NewDHT(ctx, h, routing.Config{
		ProvideValidity:   c.ProvideValidity,
		ReprovideInterval: c.ReprovideInterval,
		// A region's reprovide may run late by this much; interval + delay
		// must stay within the validity or records lapse.
		MaxReprovideDelay: min(routing.DefaultMaxReprovideDelay, c.ProvideValidity-c.ReprovideInterval),
	}, routing.WithLogger(log), routing.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("p2p dht: %w", err)
	}
	traffic := transfer.NewTraffic()
	client, err := transfer.NewClient(h, transfer.ClientConfig{DownloadBytesPerSec: int64(c.P2PDownloadLimit)},
		transfer.WithLogger(log), transfer.WithRegisterer(reg), transfer.WithTraffic(traffic))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("p2p transfer client: %w", err)
	}
	return &cluster{
		priv: priv, swarmKey: key, host: h, router: r, client: client, traffic: traffic,
		members: routing.NewMembers(h, transfer.ProtocolID),
	}, nil
}

// nodeCluster is what node.WithCluster takes.
func (cl *cluster) nodeCluster() node.Cluster {
	return node.Cluster{Router: cl.router, Transfer: cl.client, Members: cl.members}
}

// close stops the DHT, then the host.
func (cl *cluster) close() error {
	return errors.Join(cl.router.Close(), cl.host.Close())
}

// runners returns the cluster's long-lived parts once the node exists: the
// transfer server answering peers from the node, and the bootstrapper when
// any peer source is configured.
func (cl *cluster) runners(c *config.Config, n *node.Node, log *slog.Logger, reg prometheus.Registerer) ([]runner, error) {
	srv, err := transfer.NewServer(cl.host, n.PeerHandler(), transfer.ServerConfig{UploadBytesPerSec: int64(c.P2PUploadLimit)},
		transfer.WithLogger(log), transfer.WithRegisterer(reg), transfer.WithTraffic(cl.traffic))
	if err != nil {
		return nil, fmt.Errorf("p2p transfer server: %w", err)
	}
	rs := []runner{{"transfer server", srv.Run}}
	sources, err := cl.sources(c)
	if err != nil {
		return nil, err
	}
	if len(sources) > 0 {
		b, err := bootstrap.New(cl.host, bootstrap.Config{}, sources, bootstrap.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		rs = append(rs, runner{"bootstrap", b.Run})
	}
	return rs, nil
}

// sources turns --bootstrap (resolving DNS names with
// --bootstrap-dns-server when given) and --mdns into peer sources.
func (cl *cluster) sources(c *config.Config) ([]bootstrap.Source, error) {
	var static []string
	var out []bootstrap.Source
	identify := func(ctx context.Context, a ma.Multiaddr) (peer.ID, error) {
		return routing.IdentifyPeer(ctx, a, cl.priv, cl.swarmKey)
	}
	var resolver bootstrap.Resolver // nil: the system resolver
	if c.BootstrapDNSServer != "" {
		r, err := bootstrap.ServerResolver(c.BootstrapDNSServer)
		if err != nil {
			return nil, fmt.Errorf("%w: --bootstrap-dns-server %w", errUsage, err)
		}
		resolver = r
	}
	for _, s := range c.Bootstrap {
		b, err := config.ParseBootstrap(s)
		if err != nil {
			return nil, fmt.Errorf("%w: --bootstrap %w", errUsage, err)
		}
		if b.Static != "" {
			static = append(static, b.Static)
			continue
		}
		d, err := bootstrap.DNS(b.Name, b.Port, resolver, identify)
		if err != nil {
			return nil, fmt.Errorf("%w: --bootstrap %w", errUsage, err)
		}
		out = append(out, d)
	}
	if len(static) > 0 {
		s, err := bootstrap.Static(static)
		if err != nil {
			return nil, fmt.Errorf("%w: --bootstrap %w", errUsage, err)
		}
		out = append(out, s)
	}
	if c.MDNS {
		out = append(out, bootstrap.MDNS(cl.host, ""))
	}
	return out, nil
}

// fullAddrs returns the host's listen addresses with /p2p/<id> appended.
func fullAddrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String()+"/p2p/"+h.ID().String())
	}
	return out
}

// logListening writes the parseable start-up line of the P2P side.
func (cl *cluster) logListening(log *slog.Logger) {
	log.Info("p2p listening", "peer", cl.host.ID().String(), "addrs", strings.Join(fullAddrs(cl.host), ","))
}

// p2pStatus is the P2P part of /v1/status.
type p2pStatus struct {
	PeerID           string
	Addrs            []string
	ConnectedPeers   []string
	Members          []string
	RoutingTableSize int
}

func (cl *cluster) status() *p2pStatus {
	st := &p2pStatus{PeerID: cl.host.ID().String(), Addrs: fullAddrs(cl.host), RoutingTableSize: cl.router.RoutingTableSize()}
	for _, p := range cl.host.Network().Peers() {
		if cl.host.Network().Connectedness(p) == network.Connected {
			st.ConnectedPeers = append(st.ConnectedPeers, p.String())
		}
	}
	slices.Sort(st.ConnectedPeers)
	for _, p := range cl.members.Members() {
		st.Members = append(st.Members, p.String())
	}
	return st
}

// cmdSwarmKey writes a new swarm key (libp2p PSK v1 format) to stdout.
func cmdSwarmKey(e env, args []string) error {
	if len(args) > 0 {
		if args[0] == "--help" || args[0] == "-h" || args[0] == "-help" {
			fmt.Fprintln(e.stdout, "Usage: shoal swarm-key > swarm.key\n\nWrites a new random cluster key (libp2p PSK v1 format) to stdout.\nEvery node of a cluster needs the same file (--swarm-key).")
			return errHelp
		}
		return fmt.Errorf("%w: swarm-key takes no arguments", errUsage)
	}
	_, err := e.stdout.Write(routing.GenerateSwarmKey())
	return err
}

// cmdID prints the node's peer ID, creating its identity if needed.
func cmdID(e env, args []string) error {
	fs := flag.NewFlagSet("id", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := config.Defaults().DataDir
	dataDirEnv := "SHOAL_DATA_DIR"
	if v, ok := e.lookupEnv(dataDirEnv); ok && v != "" {
		def = v
	}
	dir := fs.String("data-dir", def, "")
	asJSON := fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "Usage: shoal id [--data-dir DIR] [--json]\n\nPrints the node's peer ID, creating its identity (DIR/%s) if needed.\n\n  --data-dir DIR\n        the node's data directory (env %s, default %s)\n  --json\n        print {\"peer_id\": ...}\n",
				routing.IdentityFile, dataDirEnv, config.Defaults().DataDir)
			return errHelp
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: id takes no arguments", errUsage)
	}
	priv, err := routing.LoadOrCreateIdentity(*dir)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if *asJSON {
		_, err = fmt.Fprintf(e.stdout, "{\"peer_id\": %q}\n", id.String())
		return err
	}
	_, err = fmt.Fprintln(e.stdout, id)
	return err
}
