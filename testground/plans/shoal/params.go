package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Origin kinds (parameter "origin").
const (
	originDir = "dir" // a local directory shared by every instance (local:exec)
	originS3  = "s3"  // an S3-compatible endpoint (cluster:k8s)
)

// params are a test case's parameters, parsed from the run environment.
// manifest.toml documents each one and its default.
type params struct {
	ObjectSize  int64         // object_size: bytes per object
	ChunkSize   int64         // chunk_size: node chunk size
	Objects     int           // objects: M objects in the prefix (prefetch-then-read)
	Chunks      int           // chunks: chunks each instance provides (provide-find)
	Bandwidth   int64         // bandwidth: egress bytes/s per instance; 0 = unshaped
	BootstrapK  int           // bootstrap_k: connect to the first K instances; 0 = all
	Baseline    bool          // baseline: also read straight from the origin (swarm-read)
	MemCache    int64         // mem_cache: memory tier budget
	DiskCache   int64         // disk_cache: SSD tier budget
	Membership  string        // membership: "auth" or "pnet"
	Timeout     time.Duration // timeout: whole test case
	Origin      string        // origin: "dir" or "s3"
	OriginDir   string        // origin_dir: shared directory (dir origin); "" = per-run temp dir
	Bucket      string        // bucket
	S3Endpoint  string        // s3_endpoint
	S3Region    string        // s3_region
	S3AccessKey string        // s3_access_key
	S3SecretKey string        // s3_secret_key
}

// parseParams reads the parameters through get (a missing parameter reads
// as ""), applying the defaults of manifest.toml. Every problem is reported
// at once.
func parseParams(get func(name string) string) (params, error) {
	var errs []error
	size := func(name string, def int64) int64 {
		s := get(name)
		if s == "" {
			return def
		}
		v, err := parseSize(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return v
	}
	integer := func(name string, def int) int {
		s := strings.TrimSpace(get(name))
		if s == "" {
			return def
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an integer", name, s))
		}
		return v
	}
	str := func(name, def string) string {
		if s := strings.TrimSpace(get(name)); s != "" {
			return s
		}
		return def
	}
	p := params{
		ObjectSize:  size("object_size", 64<<20),
		ChunkSize:   size("chunk_size", 4<<20),
		Objects:     integer("objects", 16),
		Chunks:      integer("chunks", 16),
		Bandwidth:   size("bandwidth", 0),
		BootstrapK:  integer("bootstrap_k", 0),
		MemCache:    size("mem_cache", 256<<20),
		DiskCache:   size("disk_cache", 4<<30),
		Membership:  str("membership", "auth"),
		Origin:      str("origin", originDir),
		OriginDir:   str("origin_dir", ""),
		Bucket:      str("bucket", "shoal-testground"),
		S3Endpoint:  str("s3_endpoint", ""),
		S3Region:    str("s3_region", ""),
		S3AccessKey: str("s3_access_key", ""),
		S3SecretKey: str("s3_secret_key", ""),
	}
	switch b := strings.ToLower(str("baseline", "true")); b {
	case "true", "1", "yes":
		p.Baseline = true
	case "false", "0", "no":
	default:
		errs = append(errs, fmt.Errorf("baseline: %q is not a boolean", b))
	}
	p.Timeout = 10 * time.Minute
	if s := str("timeout", ""); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("timeout: %w", err))
		}
		p.Timeout = d
	}
	if err := errors.Join(errs...); err != nil {
		return p, fmt.Errorf("parameters: %w", err)
	}
	return p, p.validate()
}

func (p params) validate() error {
	var errs []error
	if p.ObjectSize < 1 {
		errs = append(errs, fmt.Errorf("object_size %d < 1", p.ObjectSize))
	}
	if p.ChunkSize < 64<<10 {
		errs = append(errs, fmt.Errorf("chunk_size %d < 64 KiB", p.ChunkSize))
	}
	if p.Objects < 1 {
		errs = append(errs, fmt.Errorf("objects %d < 1", p.Objects))
	}
	if p.Chunks < 1 {
		errs = append(errs, fmt.Errorf("chunks %d < 1", p.Chunks))
	}
	if p.Bandwidth < 0 {
		errs = append(errs, fmt.Errorf("bandwidth %d < 0", p.Bandwidth))
	}
	if p.BootstrapK < 0 {
		errs = append(errs, fmt.Errorf("bootstrap_k %d < 0", p.BootstrapK))
	}
	if p.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v <= 0", p.Timeout))
	}
	switch p.Origin {
	case originDir:
	case originS3:
		if p.S3Endpoint == "" {
			errs = append(errs, errors.New("origin s3 needs s3_endpoint"))
		}
	default:
		errs = append(errs, fmt.Errorf("origin %q: want %q or %q", p.Origin, originDir, originS3))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("parameters: %w", err)
	}
	return nil
}

// parseSize parses a byte size: a plain integer, or one with a binary
// (KiB, MiB, GiB, TiB) or decimal (KB, MB, GB, TB) unit; a bare K, M, G or T
// is binary. "64MiB" is 67108864.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (64MiB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}
	m, ok := mult[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<63-1)/m {
		return 0, fmt.Errorf("size %q overflows", s)
	}
	return n * m, nil
}

// bootstrapTargets returns the sequence numbers (1-based, as the sync
// service hands them out) instance seq connects to: the first k instances
// other than itself, or every other instance when k is 0 or at least n-1.
func bootstrapTargets(seq, n, k int) []int {
	var out []int
	for i := 1; i <= n; i++ {
		if i == seq {
			continue
		}
		if k > 0 && len(out) >= k {
			break
		}
		out = append(out, i)
	}
	return out
}

// objectKey names object i (0-based) of the test's prefix.
func objectKey(prefix string, i int) string { return fmt.Sprintf("%s/obj-%05d", prefix, i) }
