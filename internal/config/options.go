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
	set  func(c *Config, v string) error
}

// Env returns the option's environment variable.
func (o Option) Env() string {
	return "SHOAL_" + strings.ToUpper(strings.ReplaceAll(o.Name, "-", "_"))
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
		{Name: "gateway-listen", Arg: "ADDR", Default: "127.0.0.1:7070",
			Help: "S3 gateway listen address (port 0 picks a free port; the actual address is logged)",
			set:  str(func(c *Config) *string { return &c.GatewayListen })},
		{Name: "gateway-access-key", Arg: "KEY", Default: "",
			Help: "access key clients must sign with (SigV4); with no keys, anonymous access is allowed on loopback only",
			set:  str(func(c *Config) *string { return &c.GatewayAccessKey })},
		{Name: "gateway-secret-key", Arg: "SECRET", Default: "",
			Help: "secret key for --gateway-access-key (prefer SHOAL_GATEWAY_SECRET_KEY or the credentials file)",
			set:  str(func(c *Config) *string { return &c.GatewaySecretKey })},
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
		{Name: "immutable", Arg: "BUCKET/PREFIX", Default: "", List: true,
			Help: "objects under these bucket/prefixes never change: never revalidated (repeatable or comma list)",
			set: func(c *Config, v string) error {
				c.Immutable = append(c.Immutable, splitList(v)...)
				return nil
			}},
		{Name: "list-ttl", Arg: "DURATION", Default: "2s",
			Help: "how long ListObjectsV2 answers are cached",
			set:  duration(func(c *Config) *time.Duration { return &c.ListTTL })},
		{Name: "admin-listen", Arg: "ADDR", Default: "127.0.0.1:7071",
			Help: "admin API listen address (/healthz /readyz /metrics /v1/...); loopback only unless --admin-allow-remote",
			set:  str(func(c *Config) *string { return &c.AdminListen })},
		{Name: "admin-allow-remote", Bool: true, Default: "false",
			Help: "allow a non-loopback --admin-listen (the admin API has no authentication)",
			set:  boolean(func(c *Config) *bool { return &c.AdminAllowRemote })},
		{Name: "log-level", Arg: "LEVEL", Default: "info",
			Help: "debug, info, warn or error",
			set:  str(func(c *Config) *string { return &c.LogLevel })},
		{Name: "log-format", Arg: "FORMAT", Default: "text",
			Help: "text or json",
			set:  str(func(c *Config) *string { return &c.LogFormat })},
	}
}
