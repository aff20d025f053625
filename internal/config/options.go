package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Option describes one node option: its flag/YAML name, its environment
// variable (SHOAL_ + upper-case name with '_' for '-'), its default, and
// how to set it from a string.
type Option struct {
	Name    string // flag name and YAML key, e.g. "mem-cache"
	Arg     string // placeholder in help, e.g. "SIZE"
	Default string
	Help    string
	// List options accumulate repeated flags and accept YAML sequences or
	// comma lists.
	List bool
	Bool bool
	// Secret options never appear in output: `shoal config`, and the
	// command line as the node shows it (RedactArgs).
	Secret bool
	set    func(c *Config, v string) error
	// field is the list a List option accumulates into; a layer that sets
	// the option (file, environment, flags) replaces the lower layers' list.
	field func(c *Config) *[]string
}

// reset clears a list option before a layer sets it.
func (o Option) reset(c *Config) {
	if o.field != nil {
		*o.field(c) = nil
	}
}

// Env returns the option's environment variable.
func (o Option) Env() string {
	return "SHOAL_" + strings.ToUpper(strings.ReplaceAll(o.Name, "-", "_"))
}

// list returns the setter of a List option and its field accessor.
func list(f func(c *Config) *[]string) (func(*Config, string) error, func(*Config) *[]string) {
	return func(c *Config, v string) error {
		*f(c) = append(*f(c), splitList(v)...)
		return nil
	}, f
}

func str(f func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func size(f func(c *Config) *Size) func(*Config, string) error {
	return func(c *Config, v string) error {
		s, err := ParseSize(v)
		if err != nil {
			return err
		}
		*f(c) = s
		return nil
	}
}

func duration(f func(c *Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("bad duration %q (want Go syntax such as 30s, 5m, 1h30m)", v)
		}
		*f(c) = d
		return nil
	}
}

func boolean(f func(c *Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("bad boolean %q (want true or false)", v)
		}
		*f(c) = b
		return nil
	}
}

func integer(f func(c *Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("bad integer %q", v)
		}
		*f(c) = n
		return nil
	}
}

func fraction(f func(c *Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || x < 0 || x > 1 {
			return fmt.Errorf("bad fraction %q (want 0 .. 1, such as 0.01)", v)
		}
		*f(c) = x
		return nil
	}
}

// listOption completes a List option accumulating into field.
func listOption(o Option, field func(c *Config) *[]string) Option {
	o.List = true
	o.set, o.field = list(field)
	return o
}

// Options returns the table of node options, in help order. Defaults are
// chosen for one node on a developer machine; docs/CONFIG.md explains them.
func Options() []Option {
	return []Option{
		{Name: "data-dir", Arg: "DIR", Default: "shoal-data",
			Help: "directory for the SSD tier and the metadata catalog",
			set:  str(func(c *Config) *string { return &c.DataDir })},
		{Name: "origin", Arg: "ORIGIN", Default: "s3",
			Help: "system of record: s3 (AWS or --s3-endpoint) or file:///absolute/path (each top-level folder is a bucket)",
			set:  str(func(c *Config) *string { return &c.Origin })},
		{Name: "s3-endpoint", Arg: "URL", Default: "",
			Help: "S3-compatible endpoint, e.g. http://127.0.0.1:9000 (empty: AWS); credentials come from the standard AWS chain",
			set:  str(func(c *Config) *string { return &c.S3Endpoint })},
		{Name: "s3-region", Arg: "REGION", Default: "",
			Help: "origin region (empty: from AWS_REGION / the AWS profile, else us-east-1)",
			set:  str(func(c *Config) *string { return &c.S3Region })},
		{Name: "s3-path-style", Bool: true, Default: "false",
			Help: "address the origin path-style (needed by most S3-compatible servers)",
			set:  boolean(func(c *Config) *bool { return &c.S3PathStyle })},
		// 64 ranged GETs keep a 10 Gbit/s link busy at ~50 ms per 4 MiB chunk
		// while staying far below S3's per-prefix request rate.
		{Name: "s3-max-inflight", Arg: "N", Default: "64",
			Help: "maximum concurrent ranged GETs to the origin",
			set:  integer(func(c *Config) *int { return &c.S3MaxInflight })},
		// The three below are origin.DefaultHeaderTimeout, DefaultMaxRetries
		// and DefaultRetryBudget; origin/s3_config.go says why.
		{Name: "s3-header-timeout", Arg: "DURATION", Default: "10s",
			Help: "how long one origin request may wait for response headers before it is retried",
			set:  duration(func(c *Config) *time.Duration { return &c.S3HeaderTimeout })},
		{Name: "s3-max-retries", Arg: "N", Default: "5",
			Help: "origin retries after the first attempt (0: none)",
			set:  integer(func(c *Config) *int { return &c.S3MaxRetries })},
		{Name: "s3-retry-budget", Arg: "DURATION", Default: "30s",
			Help: "longest one origin call (HEAD, ranged GET, listing) may take up to its response headers, retries included, before it fails as unavailable; bodies and uploads are not limited",
			set:  duration(func(c *Config) *time.Duration { return &c.S3RetryBudget })},
		{Name: "gateway-listen", Arg: "ADDR", Default: "127.0.0.1:7070",
			Help: "S3 gateway listen address (port 0 picks a free port; the actual address is logged)",
			set:  str(func(c *Config) *string { return &c.GatewayListen })},
		{Name: "gateway-access-key", Arg: "KEY", Default: "",
			Help: "access key clients must sign with (SigV4); with no keys, anonymous access is allowed on loopback only",
			set:  str(func(c *Config) *string { return &c.GatewayAccessKey })},
		{Name: "gateway-secret-key", Arg: "SECRET", Default: "", Secret: true,
			Help: "secret key for --gateway-access-key; on the command line every local user can read it (ps): prefer SHOAL_GATEWAY_SECRET_KEY or --gateway-secret-key-file",
			set:  str(func(c *Config) *string { return &c.GatewaySecretKey })},
		{Name: "gateway-secret-key-file", Arg: "FILE", Default: "",
			Help: "file holding the secret key for --gateway-access-key (trailing newline ignored)",
			set:  str(func(c *Config) *string { return &c.GatewaySecretKeyFile })},
		{Name: "gateway-credentials-file", Arg: "FILE", Default: "",
			Help: "file of ACCESS_KEY:SECRET_KEY lines ('#' comments) accepted by the gateway",
			set:  str(func(c *Config) *string { return &c.GatewayCredentialsFile })},
		{Name: "gateway-domain", Arg: "DOMAINS", Default: "",
			Help: "comma list of domains for virtual-hosted-style requests (bucket.DOMAIN)",
			set:  str(func(c *Config) *string { return &c.GatewayDomain })},
		{Name: "gateway-region", Arg: "REGION", Default: "us-east-1",
			Help: "region the gateway reports and expects in signatures",
			set:  str(func(c *Config) *string { return &c.GatewayRegion })},
		{Name: "mem-cache", Arg: "SIZE", Default: "1GiB",
			Help: "memory tier budget (e.g. 2GiB, 512MiB, 4MB, bytes)",
			set:  size(func(c *Config) *Size { return &c.MemCache })},
		{Name: "disk-cache", Arg: "SIZE", Default: "20GiB",
			Help: "SSD tier budget, kept on disk under --data-dir",
			set:  size(func(c *Config) *Size { return &c.DiskCache })},
		// 256 MiB: room for the Badger memtables and value log that are
		// written through memory mappings (a mapped write the filesystem
		// cannot back kills the process); see blockstore.DiskConfig.
		{Name: "disk-reserve", Arg: "SIZE", Default: "256MiB",
			Help: "free space the SSD tier leaves on its filesystem; when the disk has less room than --disk-cache, the tier's budget shrinks to fit",
			set:  size(func(c *Config) *Size { return &c.DiskReserve })},
		{Name: "ssd-direct-write", Bool: true, Default: "false",
			Help: "write SSD-tier chunk files with O_DIRECT (Linux): about 1 CPU-s per GiB less to store what arrives, but written chunks are not in the page cache (see docs/PERFORMANCE.md)",
			set:  boolean(func(c *Config) *bool { return &c.SSDDirectWrite })},
		// 4 MiB/s: under 1% of a core; see blockstore.DefaultScrubRate.
		{Name: "scrub-rate", Arg: "SIZE", Default: "4MiB",
			Help: "bytes per second the background scrub re-verifies against their CIDs on the SSD tier (every read checks a CRC-32C; 0: no scrub)",
			set:  size(func(c *Config) *Size { return &c.ScrubRate })},
		// 4 MiB: what Kraken and Dragonfly settled on; big enough that
		// per-chunk overhead is small, small enough to stream and spread.
		{Name: "chunk-size", Arg: "SIZE", Default: "4MiB",
			Help: "chunk size objects are cut into (64KiB..256MiB); changing it re-chunks cached objects",
			set:  size(func(c *Config) *Size { return &c.ChunkSize })},
		{Name: "hash", Arg: "HASH", Default: "sha2-256",
			Help: "chunk hash: sha2-256 or blake3",
			set:  str(func(c *Config) *string { return &c.Hash })},
		{Name: "metadata-ttl", Arg: "DURATION", Default: "30s",
			Help: "how long object metadata is trusted before it is revalidated at the origin",
			set:  duration(func(c *Config) *time.Duration { return &c.MetadataTTL })},
		listOption(Option{Name: "immutable", Arg: "BUCKET/PREFIX", Default: "",
			Help: "objects under these bucket/prefixes never change: never revalidated (repeatable or comma list)"},
			func(c *Config) *[]string { return &c.Immutable }),
		{Name: "list-ttl", Arg: "DURATION", Default: "2s",
			Help: "how long ListObjectsV2 answers are cached",
			set:  duration(func(c *Config) *time.Duration { return &c.ListTTL })},
		{Name: "read-ahead", Arg: "N", Default: "0",
			Help: "chunks fetched ahead of each reader (0: the node's default, 4 alone, 16 in a cluster)",
			set:  integer(func(c *Config) *int { return &c.ReadAhead })},
		// 15 s: above a healthy origin's first byte, below the 60 s idle
		// timeouts of common clients and load balancers (see node.DefaultOriginWait).
		{Name: "origin-wait", Arg: "DURATION", Default: "15s",
			Help: "how long a client waits for an answer that needs the origin (a HEAD, the first chunk of a GET) before a 503 with Retry-After; the node keeps trying",
			set:  duration(func(c *Config) *time.Duration { return &c.OriginWait })},
		// 1%: within the 1.02x origin amplification target; see
		// node.DefaultSpotCheckRate and docs/SECURITY.md.
		{Name: "spot-check-rate", Arg: "FRACTION", Default: "0.01",
			Help: "fraction of the chunks received from peers, of versions not yet verified against the origin, that the chunk's auditor re-reads from the origin to catch a lying member (0: never)",
			set:  fraction(func(c *Config) *float64 { return &c.SpotCheckRate })},
		{Name: "origin-fetches", Arg: "N", Default: "0",
			Help: "origin chunk fetches in flight on this node (0: the default, 16)",
			set:  integer(func(c *Config) *int { return &c.OriginFetches })},
		{Name: "origin-stall", Arg: "DURATION", Default: "0s",
			Help: "an origin request with no answer, or a response with no byte, for this long is sent again from the first missing byte (0: the default, 1s)",
			set:  duration(func(c *Config) *time.Duration { return &c.OriginStall })},
		{Name: "origin-streams", Arg: "N", Default: "0",
			Help: "origin fetches of one object in flight cluster-wide, shared by the nodes (0: the default, 16)",
			set:  integer(func(c *Config) *int { return &c.OriginStreams })},
		{Name: "home-read-ahead", Arg: "N", Default: "0",
			Help: "own chunks a home node fetches ahead of one it serves from an object read in order (0: the default, 2; -1: off)",
			set:  integer(func(c *Config) *int { return &c.HomeReadAhead })},
		{Name: "manifest-wait", Arg: "DURATION", Default: "0s",
			Help: "how long a chunk fetch that can go to a home node waits for its object's manifest lookup in the DHT (0: the default, 100ms; raise it where DHT lookups are slow)",
			set:  duration(func(c *Config) *time.Duration { return &c.ManifestWait })},
		{Name: "admin-listen", Arg: "ADDR", Default: "127.0.0.1:7071",
			Help: "admin API listen address (/healthz /readyz /metrics /v1/...); loopback only unless --admin-allow-remote",
			set:  str(func(c *Config) *string { return &c.AdminListen })},
		{Name: "admin-allow-remote", Bool: true, Default: "false",
			Help: "allow a non-loopback --admin-listen (the admin API has no authentication)",
			set:  boolean(func(c *Config) *bool { return &c.AdminAllowRemote })},
		listOption(Option{Name: "allowed-hosts", Arg: "HOST[:PORT]", Default: "",
			Help: "further Host names the anonymous gateway and the admin API answer to, besides their listen address and localhost at its port (repeatable or comma list; no port: any port)"},
			func(c *Config) *[]string { return &c.AllowedHosts }),
		{Name: "gateway-max-conns", Arg: "N", Default: "0",
			Help: "most open gateway connections; more wait in the kernel's queue (0: half the file-descriptor limit, at most 10000)",
			set:  integer(func(c *Config) *int { return &c.GatewayMaxConns })},
		// 64: probes, scrapers and CLI calls are few; a pin of a large
		// prefix holds its connection for as long as it runs.
		{Name: "admin-max-conns", Arg: "N", Default: "64",
			Help: "most open admin API connections (a few more are kept for /healthz and /readyz)",
			set:  integer(func(c *Config) *int { return &c.AdminMaxConns })},
		// 60s: longer than the pauses of a client's connection pool between
		// bursts, short enough that abandoned connections go within a minute.
		{Name: "http-idle-timeout", Arg: "DURATION", Default: "60s",
			Help: "how long an idle keep-alive connection (gateway and admin) stays open",
			set:  duration(func(c *Config) *time.Duration { return &c.HTTPIdleTimeout })},
		// 60s: a moving transfer sends or takes bytes every few milliseconds;
		// a minute without any is a dead or hostile peer.
		{Name: "http-body-timeout", Arg: "DURATION", Default: "60s",
			Help: "longest pause in a request body being received or a response body being taken by the client; the connection is closed after it",
			set:  duration(func(c *Config) *time.Duration { return &c.HTTPBodyTimeout })},
		{Name: "pprof", Bool: true, Default: "false",
			Help: "serve Go's profiling endpoints under /debug/pprof/ on the admin listener",
			set:  boolean(func(c *Config) *bool { return &c.Pprof })},
		listOption(Option{Name: "p2p-listen", Arg: "MULTIADDR", Default: "",
			Help: "libp2p listen multiaddrs, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable or comma list); none: P2P off, single-node mode"},
			func(c *Config) *[]string { return &c.P2PListen }),
		{Name: "swarm-key", Arg: "FILE", Default: "",
			Help: "cluster swarm key file (create one with `shoal swarm-key`); required when --p2p-listen is set",
			set:  str(func(c *Config) *string { return &c.SwarmKey })},
		listOption(Option{Name: "bootstrap", Arg: "MULTIADDR", Default: "",
			Help: "peers to join: /ip4|ip6/.../tcp/N/p2p/ID, or /dns4|dns6|dns/NAME/tcp/PORT re-resolved periodically (repeatable or comma list)"},
			func(c *Config) *[]string { return &c.Bootstrap }),
		{Name: "bootstrap-dns-server", Arg: "HOST:PORT", Default: "",
			Help: "DNS server that resolves the /dns4|dns6|dns --bootstrap names, over UDP with TCP fallback (empty: the system resolver); for a cluster DNS missing from resolv.conf",
			set:  str(func(c *Config) *string { return &c.BootstrapDNSServer })},
		{Name: "mdns", Bool: true, Default: "false",
			Help: "discover peers on the local network with mDNS",
			set:  boolean(func(c *Config) *bool { return &c.MDNS })},
		{Name: "p2p-membership", Arg: "MODE", Default: "auth",
			Help: "how peers prove the swarm key: auth (HMAC after the TLS handshake) or pnet (libp2p private network)",
			set:  str(func(c *Config) *string { return &c.P2PMembership })},
		{Name: "p2p-upload-limit", Arg: "SIZE", Default: "0",
			Help: "bytes per second served to peers, all together (0: unlimited)",
			set:  size(func(c *Config) *Size { return &c.P2PUploadLimit })},
		{Name: "p2p-download-limit", Arg: "SIZE", Default: "0",
			Help: "bytes per second fetched from peers, all together (0: unlimited)",
			set:  size(func(c *Config) *Size { return &c.P2PDownloadLimit })},
		// 100/400: enough connections to exchange chunks with every node of
		// a cluster of a few hundred without holding thousands idle.
		{Name: "p2p-conn-low", Arg: "N", Default: "100",
			Help: "connection manager low water mark (connections kept when trimming)",
			set:  integer(func(c *Config) *int { return &c.P2PConnLow })},
		{Name: "p2p-conn-high", Arg: "N", Default: "400",
			Help: "connection manager high water mark (trimming starts above it)",
			set:  integer(func(c *Config) *int { return &c.P2PConnHigh })},
		// 1024: bulk transfer opens many parallel chunk streams to one peer.
		{Name: "p2p-max-streams", Arg: "N", Default: "1024",
			Help: "concurrent libp2p streams per peer",
			set:  integer(func(c *Config) *int { return &c.P2PMaxStreams })},
		// 45m/15m: a chunk is re-announced three times per validity period,
		// so an evicted chunk or a dead node stops being advertised within the hour.
		{Name: "provide-validity", Arg: "DURATION", Default: "45m",
			Help: "how long other nodes keep this node's provider records",
			set:  duration(func(c *Config) *time.Duration { return &c.ProvideValidity })},
		{Name: "reprovide-interval", Arg: "DURATION", Default: "15m",
			Help: "how often every held chunk is re-announced (must be below --provide-validity)",
			set:  duration(func(c *Config) *time.Duration { return &c.ReprovideInterval })},
		{Name: "mount", Arg: "DIR", Default: "",
			Help: "also serve the buckets as read-only files in this empty directory (FUSE; each top-level directory a bucket), unmounted at exit",
			set:  str(func(c *Config) *string { return &c.Mount })},
		{Name: "mount-bucket", Arg: "BUCKET", Default: "",
			Help: "with --mount: put only this bucket's keys at the mount's root",
			set:  str(func(c *Config) *string { return &c.MountBucket })},
		{Name: "mount-allow-other", Bool: true, Default: "false",
			Help: "with --mount: let other users read the mount (FUSE allow_other; a non-root node needs user_allow_other in /etc/fuse.conf)",
			set:  boolean(func(c *Config) *bool { return &c.MountAllowOther })},
		{Name: "log-level", Arg: "LEVEL", Default: "info",
			Help: "debug, info, warn or error",
			set:  str(func(c *Config) *string { return &c.LogLevel })},
		{Name: "log-format", Arg: "FORMAT", Default: "text",
			Help: "text or json",
			set:  str(func(c *Config) *string { return &c.LogFormat })},
	}
}
