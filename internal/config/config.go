package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-cache/shoal/internal/content"
)

// ErrInvalid: the configuration is not usable. Every validation error wraps it.
var ErrInvalid = errors.New("config: invalid")

// Config is the effective configuration of one `shoal node`. The yaml tags
// are the keys of the config file and of `shoal config` output.
type Config struct {
	DataDir string `yaml:"data-dir"`

	Origin        string `yaml:"origin"`
	S3Endpoint    string `yaml:"s3-endpoint"`
	S3Region      string `yaml:"s3-region"`
	S3PathStyle   bool   `yaml:"s3-path-style"`
	S3MaxInflight int    `yaml:"s3-max-inflight"`
	// S3HeaderTimeout bounds one attempt's wait for response headers,
	// S3MaxRetries the attempts after the first (0: none), S3RetryBudget a
	// whole call up to its response headers (see origin.S3Config).
	S3HeaderTimeout time.Duration `yaml:"s3-header-timeout"`
	S3MaxRetries    int           `yaml:"s3-max-retries"`
	S3RetryBudget   time.Duration `yaml:"s3-retry-budget"`

	GatewayListen    string `yaml:"gateway-listen"`
	GatewayAccessKey string `yaml:"gateway-access-key"`
	GatewaySecretKey string `yaml:"gateway-secret-key"`
	// GatewaySecretKeyFile holds the secret key (trailing white space is
	// ignored): a secret that is neither in argv nor in the environment.
	GatewaySecretKeyFile   string `yaml:"gateway-secret-key-file"`
	GatewayCredentialsFile string `yaml:"gateway-credentials-file"`
	GatewayDomain          string `yaml:"gateway-domain"`
	GatewayRegion          string `yaml:"gateway-region"`

	MemCache  Size `yaml:"mem-cache"`
	DiskCache Size `yaml:"disk-cache"`
	// DiskReserve: free space the SSD tier leaves on its filesystem.
	DiskReserve Size `yaml:"disk-reserve"`
	// ScrubRate: bytes per second the SSD tier's scrub re-verifies (0: off).
	ScrubRate Size `yaml:"scrub-rate"`
	// SSDDirectWrite: SSD-tier chunk files are written with O_DIRECT.
	SSDDirectWrite bool          `yaml:"ssd-direct-write"`
	ChunkSize      Size          `yaml:"chunk-size"`
	Hash           string        `yaml:"hash"`
	MetadataTTL    time.Duration `yaml:"metadata-ttl"`
	Immutable      []string      `yaml:"immutable"`
	ListTTL        time.Duration `yaml:"list-ttl"`
	// ReadAhead: chunks fetched ahead of a reader; 0 keeps the node's
	// default (4 alone, 16 in a cluster).
	ReadAhead int `yaml:"read-ahead"`
	// OriginWait: how long a client waits for an answer needing the origin
	// before a 503 with Retry-After.
	OriginWait time.Duration `yaml:"origin-wait"`
	// SpotCheckRate: the fraction of peer chunks re-read from the origin
	// by their auditor, for versions not verified yet (0: never).
	SpotCheckRate float64 `yaml:"spot-check-rate"`
	// Fetch tuning (0: the node's default; see docs/FETCH.md).
	OriginFetches int           `yaml:"origin-fetches"`
	OriginStall   time.Duration `yaml:"origin-stall"`
	OriginStreams int           `yaml:"origin-streams"`
	HomeReadAhead int           `yaml:"home-read-ahead"`
	ManifestWait  time.Duration `yaml:"manifest-wait"`

	P2PListen         []string      `yaml:"p2p-listen"`
	SwarmKey          string        `yaml:"swarm-key"`
	Bootstrap         []string      `yaml:"bootstrap"`
	MDNS              bool          `yaml:"mdns"`
	P2PMembership     string        `yaml:"p2p-membership"`
	P2PUploadLimit    Size          `yaml:"p2p-upload-limit"`
	P2PDownloadLimit  Size          `yaml:"p2p-download-limit"`
	P2PConnLow        int           `yaml:"p2p-conn-low"`
	P2PConnHigh       int           `yaml:"p2p-conn-high"`
	P2PMaxStreams     int           `yaml:"p2p-max-streams"`
	ProvideValidity   time.Duration `yaml:"provide-validity"`
	ReprovideInterval time.Duration `yaml:"reprovide-interval"`
	// BootstrapDNSServer: host:port of the DNS server that resolves the DNS
	// names of Bootstrap; empty means the system resolver.
	BootstrapDNSServer string `yaml:"bootstrap-dns-server"`

	AdminListen      string `yaml:"admin-listen"`
	AdminAllowRemote bool   `yaml:"admin-allow-remote"`

	// AllowedHosts are further Host names (name or name:port) the
	// anonymous gateway and the admin API answer to.
	AllowedHosts []string `yaml:"allowed-hosts"`
	// GatewayMaxConns caps the gateway's open connections; 0 derives the
	// cap from the file-descriptor limit (see HTTPConnLimit).
	GatewayMaxConns int           `yaml:"gateway-max-conns"`
	AdminMaxConns   int           `yaml:"admin-max-conns"`
	HTTPIdleTimeout time.Duration `yaml:"http-idle-timeout"`
	HTTPBodyTimeout time.Duration `yaml:"http-body-timeout"`
	Pprof           bool          `yaml:"pprof"`

	// Mount, when set, is a directory where the node also serves its
	// buckets as read-only files (FUSE); MountBucket puts one bucket at its
	// root; MountAllowOther lets other users read it.
	Mount           string `yaml:"mount"`
	MountBucket     string `yaml:"mount-bucket"`
	MountAllowOther bool   `yaml:"mount-allow-other"`

	LogLevel  string `yaml:"log-level"`
	LogFormat string `yaml:"log-format"`
}

// Bounds of the chunk size: below 64 KiB the per-chunk overhead (index entry,
// hash, request) dominates; above 256 MiB a single chunk no longer streams
// through "a few MiB of memory".
const (
	MinChunkSize Size = 64 << 10
	MaxChunkSize Size = 256 << 20
)

// OriginDir returns the directory of a file:// origin, or "" for S3.
func (c *Config) OriginDir() string {
	if c.Origin == "s3" {
		return ""
	}
	u, err := url.Parse(c.Origin)
	if err != nil {
		return ""
	}
	return u.Path
}

// GatewayDomains returns the virtual-hosted-style domains (comma list).
func (c *Config) GatewayDomains() []string { return splitList(c.GatewayDomain) }

// SlogLevel returns the configured log level.
func (c *Config) SlogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel)) // validated before
	return l
}

// Validate checks every option and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(opt, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: --%s: %s", ErrInvalid, opt, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	switch {
	case c.Origin == "s3":
	case strings.HasPrefix(c.Origin, "file://"):
		u, err := url.Parse(c.Origin)
		switch {
		case err != nil:
			bad("origin", "%v", err)
		case u.Host != "" && u.Host != "localhost":
			bad("origin", "%q: a file origin has no host; use file:///absolute/path", c.Origin)
		case u.Path == "" || !filepath.IsAbs(u.Path):
			bad("origin", "%q: want file:///absolute/path", c.Origin)
		}
	default:
		bad("origin", "%q: want s3 or file:///absolute/path", c.Origin)
	}
	if c.S3Endpoint != "" {
		u, err := url.Parse(c.S3Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("s3-endpoint", "%q: want http(s)://host[:port]", c.S3Endpoint)
		}
	}
	if c.S3MaxInflight < 1 || c.S3MaxInflight > 4096 {
		bad("s3-max-inflight", "%d: want 1..4096", c.S3MaxInflight)
	}
	if c.S3HeaderTimeout <= 0 {
		bad("s3-header-timeout", "%s: want a positive duration", c.S3HeaderTimeout)
	}
	if c.S3MaxRetries < 0 || c.S3MaxRetries > 20 {
		bad("s3-max-retries", "%d: want 0 (no retries) .. 20", c.S3MaxRetries)
	}
	if c.S3RetryBudget <= 0 {
		bad("s3-retry-budget", "%s: want a positive duration", c.S3RetryBudget)
	}
	checkAddr := func(opt, addr string) {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			bad(opt, "%q: want host:port (port 0 picks a free one)", addr)
		}
	}
	checkAddr("gateway-listen", c.GatewayListen)
	checkAddr("admin-listen", c.AdminListen)
	switch {
	case c.GatewaySecretKey != "" && c.GatewaySecretKeyFile != "":
		bad("gateway-secret-key-file", "give the secret key once: --gateway-secret-key or --gateway-secret-key-file")
	case (c.GatewayAccessKey == "") != (c.GatewaySecretKey == "" && c.GatewaySecretKeyFile == ""):
		bad("gateway-access-key", "set both --gateway-access-key and --gateway-secret-key (or --gateway-secret-key-file), or neither")
	}
	for _, d := range c.GatewayDomains() {
		if strings.ContainsAny(d, "/: ") {
			bad("gateway-domain", "%q: want a host name such as s3.local", d)
		}
	}
	if c.GatewayRegion == "" {
		bad("gateway-region", "must not be empty")
	}
	if c.MemCache < c.ChunkSize {
		bad("mem-cache", "%s is smaller than one chunk (%s)", c.MemCache, c.ChunkSize)
	}
	if c.DiskCache < c.ChunkSize {
		bad("disk-cache", "%s is smaller than one chunk (%s)", c.DiskCache, c.ChunkSize)
	}
	if c.ChunkSize < MinChunkSize || c.ChunkSize > MaxChunkSize {
		bad("chunk-size", "%s: want %s..%s", c.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if _, err := content.ParseHash(c.Hash); err != nil {
		bad("hash", "%q: want sha2-256 or blake3", c.Hash)
	}
	if c.ReadAhead < 0 || c.ReadAhead > 256 {
		bad("read-ahead", "%d: want 0 (default) .. 256", c.ReadAhead)
	}
	if c.OriginWait < 0 {
		bad("origin-wait", "%s is negative", c.OriginWait)
	}
	if c.OriginFetches < 0 || c.OriginFetches > 4096 {
		bad("origin-fetches", "%d: want 0 (default) .. 4096", c.OriginFetches)
	}
	if c.OriginStall < 0 || (c.OriginStall > 0 && c.OriginStall < 10*time.Millisecond) {
		bad("origin-stall", "%s: want 0 (default) or at least 10ms", c.OriginStall)
	}
	if c.OriginStreams < 0 || c.OriginStreams > 4096 {
		bad("origin-streams", "%d: want 0 (default) .. 4096", c.OriginStreams)
	}
	if c.ManifestWait < 0 || c.ManifestWait > time.Minute {
		bad("manifest-wait", "%v: want 0 (default) .. 1m", c.ManifestWait)
	}
	if c.HomeReadAhead < -1 || c.HomeReadAhead > 64 {
		bad("home-read-ahead", "%d: want -1 (off), 0 (default) .. 64", c.HomeReadAhead)
	}
	if c.MetadataTTL < 0 {
		bad("metadata-ttl", "%s is negative", c.MetadataTTL)
	}
	if c.ListTTL < 0 {
		bad("list-ttl", "%s is negative", c.ListTTL)
	}
	for _, p := range c.Immutable {
		if p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "s3://") {
			bad("immutable", "%q: want bucket or bucket/prefix", p)
		}
	}
	if c.Mount == "" && (c.MountBucket != "" || c.MountAllowOther) {
		bad("mount", "--mount-bucket and --mount-allow-other need --mount DIR")
	}
	if strings.Contains(c.MountBucket, "/") {
		bad("mount-bucket", "%q: want a bucket name, no slash", c.MountBucket)
	}
	errs = append(errs, c.validateP2P()...)
	errs = append(errs, c.validateHTTP()...)
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log-level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "%q: want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether a listen address (host:port) binds only to a
// loopback interface. An empty host ("":port) binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
