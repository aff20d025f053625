package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/blockstore"
	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/fusefs"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/internal/admin"
	"github.com/shoal-cache/shoal/internal/config"
	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/node/originfetch"
	"github.com/shoal-cache/shoal/origin"
)

// Subdirectories of --data-dir.
const (
	storeSubdir   = "store"
	catalogSubdir = "catalog"
)

// parts is a constructed, not yet running node.
type parts struct {
	gateway http.Handler
	admin   admin.Backend
	runners []runner     // background work, each until ctx ends
	cluster *cluster     // nil in single-node mode
	close   func() error // releases everything, in reverse order
}

// runner is one long-lived part: Run(ctx) until ctx ends, nil on a normal
// stop.
type runner struct {
	name string
	run  func(ctx context.Context) error
}

// gatewayCredentials merges the key pair flags and the credentials file.
func gatewayCredentials(c *config.Config) ([]gateway.Credential, error) {
	var creds []gateway.Credential
	if c.GatewayAccessKey != "" {
		secret := c.GatewaySecretKey
		if c.GatewaySecretKeyFile != "" {
			s, err := readSecretFile(c.GatewaySecretKeyFile)
			if err != nil {
				return nil, err
			}
			secret = s
		}
		creds = append(creds, gateway.Credential{AccessKey: c.GatewayAccessKey, SecretKey: secret})
	}
	if c.GatewayCredentialsFile != "" {
		fc, err := gateway.LoadCredentialsFile(c.GatewayCredentialsFile)
		if err != nil {
			return nil, err
		}
		if len(fc) == 0 {
			return nil, fmt.Errorf("--gateway-credentials-file %s holds no credentials", c.GatewayCredentialsFile)
		}
		creds = append(creds, fc...)
	}
	return creds, nil
}

// readSecretFile reads a --gateway-secret-key-file: one line, surrounding
// white space (the trailing newline editors add) ignored.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--gateway-secret-key-file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("--gateway-secret-key-file %s: want the secret key alone on one line", path)
	}
	return s, nil
}

// originAPI is the method set both origins share (what node.New takes).
type originAPI = node.Origin

// newOrigin builds the configured origin inside a health tracker (for
// /readyz and the origin metrics).
func newOrigin(ctx context.Context, c *config.Config, log *slog.Logger, reg prometheus.Registerer) (*origin.Health, error) {
	o, err := newInnerOrigin(ctx, c, log, reg)
	if err != nil {
		return nil, err
	}
	h, err := origin.NewHealth(o, origin.HealthConfig{}, origin.WithHealthLogger(log), origin.WithHealthRegisterer(reg))
	if err != nil {
		if cl, ok := o.(io.Closer); ok {
			cl.Close()
		}
		return nil, fmt.Errorf("origin health: %w", err)
	}
	return h, nil
}

func newInnerOrigin(ctx context.Context, c *config.Config, log *slog.Logger, reg prometheus.Registerer) (originAPI, error) {
	if dir := c.OriginDir(); dir != "" {
		o, err := origin.NewDir(origin.DirConfig{Root: dir})
		if err != nil {
			return nil, fmt.Errorf("origin %s: %w", c.Origin, err)
		}
		return o, nil
	}
	o, err := origin.NewS3(ctx, origin.S3Config{
		Endpoint:      c.S3Endpoint,
		Region:        c.S3Region,
		PathStyle:     c.S3PathStyle,
		MaxInFlight:   c.S3MaxInflight,
		HeaderTimeout: c.S3HeaderTimeout,
		MaxRetries:    s3MaxRetries(c.S3MaxRetries),
		RetryBudget:   c.S3RetryBudget,
	}, origin.WithLogger(log), origin.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("origin s3: %w", err)
	}
	return o, nil
}

// s3MaxRetries maps --s3-max-retries (0: none) to origin.S3Config, where 0
// selects the default and -1 disables retries.
func s3MaxRetries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// build constructs origin, block store, catalog, node and gateway. On error
// everything built so far is closed.
func build(ctx context.Context, c *config.Config, creds []gateway.Credential, log *slog.Logger, reg prometheus.Registerer) (_ *parts, err error) {
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, closeAll())
		}
	}()

	org, err := newOrigin(ctx, c, log, reg)
	if err != nil {
		return nil, err
	}
	closers = append(closers, org.Close)

	mem, err := blockstore.NewMemory(blockstore.MemoryConfig{BudgetBytes: int64(c.MemCache)},
		blockstore.WithMemoryLogger(log), blockstore.WithMemoryRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("memory tier: %w", err)
	}
	disk, err := blockstore.OpenDisk(blockstore.DiskConfig{Dir: filepath.Join(c.DataDir, storeSubdir), BudgetBytes: int64(c.DiskCache),
		ReserveBytes: int64(c.DiskReserve), ScrubRate: scrubRate(c.ScrubRate)},
		append(diskOptions(c), blockstore.WithDiskLogger(log), blockstore.WithDiskRegisterer(reg))...)
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("disk tier: %w", err)
	}
	store, err := blockstore.NewTiered(mem, disk, blockstore.TieredConfig{},
		blockstore.WithTieredLogger(log), blockstore.WithTieredRegisterer(reg))
	if err != nil {
		mem.Close()
		disk.Close()
		return nil, fmt.Errorf("tiered store: %w", err)
	}
	closers = append(closers, store.Close)

	cat, err := catalog.Open(filepath.Join(c.DataDir, catalogSubdir), catalog.WithLogger(log))
	if err != nil {
		return nil, err
	}
	closers = append(closers, cat.Close)

	var cl *cluster
	nodeOpts := []node.Option{node.WithLogger(log), node.WithRegisterer(reg)}
	if c.P2PEnabled() {
		cl, err = newCluster(ctx, c, log, reg)
		if err != nil {
			return nil, err
		}
		closers = append(closers, cl.close)
		nodeOpts = append(nodeOpts, node.WithCluster(cl.nodeCluster()))
	}

	n, err := node.New(node.Config{
		ChunkSize:     int64(c.ChunkSize),
		Hash:          content.Hash(c.Hash),
		MetadataTTL:   c.MetadataTTL,
		Immutable:     c.Immutable,
		ListTTL:       c.ListTTL,
		ReadAhead:     c.ReadAhead,
		OriginWait:    c.OriginWait,
		SpotCheckRate: spotCheckRate(c.SpotCheckRate),
		Fetch: node.FetchPolicy{
			Origin:        originfetch.Policy{Slots: c.OriginFetches, Stall: c.OriginStall},
			OriginStreams: c.OriginStreams,
			HomeReadAhead: c.HomeReadAhead,
			ManifestWait:  c.ManifestWait,
		},
	}, store, org, cat, nodeOpts...)
	if err != nil {
		return nil, err
	}
	closers = append(closers, n.Close)

	// Index maintenance of the disk tier (the tiered writer runs until
	// Close) and the node's background work.
	runners := []runner{{"disk tier", disk.Run}, {"node", n.Run}}
	if disk.IndexRebuilt() {
		// The rebuilt index lost the block pins; the catalog's pinned
		// prefixes say what to pin again. Failures are logged, not fatal.
		runners = append(runners, runner{"repin", func(ctx context.Context) error {
			res, err := n.Repin(ctx)
			log.Info("pinned prefixes again after the block index was rebuilt",
				"objects", res.Objects, "chunks", res.Chunks, "failed_objects", len(res.Errors), "err", err)
			return nil
		}})
	}
	if cl != nil {
		rs, err := cl.runners(c, n, log, reg)
		if err != nil {
			return nil, err
		}
		runners = append(runners, rs...)
	}

	if c.Mount != "" {
		m, err := newMount(c, n, log)
		if err != nil {
			return nil, err
		}
		runners = append(runners, runner{"mount", func(ctx context.Context) error { return m.Run(ctx, nil) }})
	}

	gw, err := gateway.New(gateway.Config{
		Region:         c.GatewayRegion,
		Domains:        c.GatewayDomains(),
		Credentials:    creds,
		AllowAnonymous: len(creds) == 0 && config.IsLoopback(c.GatewayListen),
		AllowedHosts:   c.AllowedHosts,
	}, n, gateway.WithLogger(log), gateway.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}

	return &parts{
		gateway: gw,
		admin:   adminBackend{n: n, cluster: cl, origin: org, disk: disk, info: &nodeInfo{MetadataTTL: c.MetadataTTL.String(), ListTTL: c.ListTTL.String(), OriginWait: c.OriginWait.String(), Immutable: c.Immutable, Region: c.GatewayRegion, Mount: c.Mount}},
		runners: runners,
		cluster: cl,
		close:   closeAll,
	}, nil
}

// adminBackend adapts *node.Node (and the P2P side, if any) to the admin API.
type adminBackend struct {
	n       *node.Node
	cluster *cluster // nil in single-node mode
	origin  *origin.Health
	disk    *blockstore.Disk
	info    *nodeInfo // filled in once the listeners are bound
}

// nodeInfo is what /v1/status tells a client about the node's API: where
// its gateway listens and how long metadata is trusted (`shoal mount`
// reads through the gateway and follows the node's metadata TTL).
type nodeInfo struct {
	GatewayAddr string
	Anonymous   bool
	Region      string
	MetadataTTL string
	ListTTL     string
	OriginWait  string
	Immutable   []string `json:",omitempty"`
	Mount       string   `json:",omitempty"` // the node's own --mount
}

// newMount builds the node's FUSE mount (--mount): the node is its
// backend, the kernel's timeouts follow the node's metadata settings.
func newMount(c *config.Config, n *node.Node, log *slog.Logger) (*fusefs.FS, error) {
	m, err := fusefs.New(mountConfig(c.Mount, c.MountBucket, c.MountAllowOther, c.MetadataTTL, c.Immutable, c.ListTTL, c.OriginWait),
		n, fusefs.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	return m, nil
}

// mountConfig maps the node's settings to the mount's. A lookup or
// listing page waits at least as long as the node's own --origin-wait.
func mountConfig(dir, bucket string, allowOther bool, metaTTL time.Duration, immutable []string, listTTL, originWait time.Duration) fusefs.Config {
	cfg := fusefs.Config{Dir: dir, Bucket: bucket, AllowOther: allowOther, MetadataTTL: metaTTL,
		Immutable: immutable, NegativeTTL: listTTL}
	// A zero TTL at the node (revalidate every time) is the kernel's
	// shortest, not the mount's default.
	if metaTTL == 0 {
		cfg.MetadataTTL = time.Nanosecond
	}
	if listTTL == 0 {
		cfg.NegativeTTL = time.Nanosecond
	}
	if t := originWait + 5*time.Second; t > fusefs.DefaultOpTimeout {
		cfg.OpTimeout = t
	}
	return cfg
}

// Checks is /readyz's detail: the origin's health (not critical: a node
// whose origin is down still serves what it holds).
func (a adminBackend) Checks(context.Context) []admin.Check {
	ok, why := a.origin.State()
	return []admin.Check{{Name: "origin", OK: ok, Detail: why}, diskCheck(a.disk.Space())}
}

// diskCheck reports a full disk (not critical either: the node serves from
// memory, peers and the origin, and the SSD tier keeps working within what
// the disk has).
func diskCheck(s blockstore.Space) admin.Check {
	if !s.Full {
		return admin.Check{Name: "disk", OK: true}
	}
	return admin.Check{Name: "disk", Detail: fmt.Sprintf("%s: %d bytes free (%d kept in reserve); SSD tier budget shrunk to %d of %d bytes",
		s.State, s.FreeBytes, s.ReserveBytes, s.LimitBytes, s.BudgetBytes)}
}

// status is /v1/status: the node's figures, the SSD tier's filesystem,
// plus P2P when it is on.
type status struct {
	node.Status
	DiskSpace blockstore.Space
	Node      *nodeInfo  `json:",omitempty"`
	P2P       *p2pStatus `json:",omitempty"`
}

func (a adminBackend) Status(ctx context.Context) (any, error) {
	st, err := a.n.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := status{Status: st, DiskSpace: a.disk.Space(), Node: a.info}
	if a.cluster != nil {
		out.P2P = a.cluster.status()
	}
	return out, nil
}

func (a adminBackend) Pin(ctx context.Context, bucket, prefix string) (any, error) {
	return a.n.Pin(ctx, bucket, prefix)
}

func (a adminBackend) Unpin(ctx context.Context, bucket, prefix string) (any, error) {
	return a.n.Unpin(ctx, bucket, prefix)
}

func (a adminBackend) Prefetch(ctx context.Context, bucket, prefix string) (any, error) {
	return a.n.Prefetch(ctx, bucket, prefix)
}

// diskOptions are the SSD tier's collaborators chosen by flags.
func diskOptions(c *config.Config) []blockstore.DiskOption {
	if c.SSDDirectWrite {
		return []blockstore.DiskOption{blockstore.WithFileCreator(blockstore.DirectFileCreator())}
	}
	return nil
}

// scrubRate maps the flag's 0 (no scrub) to the disk tier's "off".
func scrubRate(r config.Size) int64 {
	if r == 0 {
		return -1
	}
	return int64(r)
}

// spotCheckRate maps the option (0: never) to node.Config's (0: the
// default, negative: never).
func spotCheckRate(r float64) float64 {
	if r == 0 {
		return -1
	}
	return r
}
