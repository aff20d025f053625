package swarm

// This file owns the harness settings: what to run and how big, read from
// SHOAL_SWARM_* environment variables with documented defaults.

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-cache/shoal/internal/config"
)

// ErrSettings: a SHOAL_SWARM_* variable has a bad value.
var ErrSettings = errors.New("swarm: bad setting")

// Defaults of the settings.
const (
	// DefaultNodes is S4's N (BENCHMARKS.md: 8, 16, 32).
	DefaultNodes = 8
	// DefaultSize and DefaultRate make S/B about 10.7 s: long enough that
	// start-up costs are small against it, short enough that three runs of
	// the direct baseline (N*S/B each) fit in a few minutes on 2 cores.
	DefaultSize = 256 << 20
	DefaultRate = 200_000_000
	// DefaultRuns is the fewest runs a median is reported from.
	DefaultRuns = 3
	// DefaultS3Size is S3's object (BENCHMARKS.md: 1 GiB).
	DefaultS3Size = 1 << 30
	// DefaultChunk is the node's default chunk size, used to count chunks
	// when SHOAL_SWARM_CHUNK is not set.
	DefaultChunk = 4 << 20
	// maxNodes keeps every node and the origin inside one /24.
	maxNodes = MaxHosts - 1
)

// knownScenarios are the scenarios SHOAL_SWARM_SCENARIOS accepts;
// defaultScenarios run when it is unset (L1 is opt-in: about ten minutes
// at the defaults).
var (
	knownScenarios   = []string{"S3", "S4", "L1"}
	defaultScenarios = []string{"S3", "S4"}
)

// Settings are the harness parameters.
type Settings struct {
	Scenarios []string
	Nodes     int   // S4's N
	Size      int64 // S4's object size S, bytes
	RateBits  int64 // S4's link rate B, bits per second
	Runs      int
	S3Size    int64
	// Chunk is the node chunk size in bytes; ChunkFlag is the value passed
	// to --chunk-size ("" keeps the node's default).
	Chunk     int64
	ChunkFlag string
	NodeArgs  []string
	Out       string
	// NoDirect skips S4's direct-from-origin baseline (N*S/B per run),
	// for quick iterations on the cluster figures.
	NoDirect bool
	// OriginPathBits is L1's B_o: each node's path from the origin, bits
	// per second (default RateBits/4).
	OriginPathBits int64
}

// LoadSettings reads the settings through getenv; root is the module root
// (for the default output path).
func LoadSettings(getenv func(string) string, root string) (Settings, error) {
	s := Settings{Scenarios: defaultScenarios, Nodes: DefaultNodes, Size: DefaultSize, RateBits: DefaultRate,
		Runs: DefaultRuns, S3Size: DefaultS3Size, Chunk: DefaultChunk,
		Out: filepath.Join(root, ".bench", "swarm.json")}
	var errs []error
	bad := func(name, v string, err error) {
		errs = append(errs, fmt.Errorf("%w: %s=%q: %v", ErrSettings, name, v, err))
	}
	if v := getenv("SHOAL_SWARM_SCENARIOS"); v != "" {
		s.Scenarios = nil
		for _, sc := range strings.Split(v, ",") {
			sc = strings.ToUpper(strings.TrimSpace(sc))
			if !slices.Contains(knownScenarios, sc) {
				bad("SHOAL_SWARM_SCENARIOS", v, fmt.Errorf("unknown scenario %q (want %s)", sc, strings.Join(knownScenarios, ", ")))
				continue
			}
			if !slices.Contains(s.Scenarios, sc) {
				s.Scenarios = append(s.Scenarios, sc)
			}
		}
	}
	intVar := func(name string, dst *int, lo, hi int) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			bad(name, v, fmt.Errorf("want an integer in %d..%d", lo, hi))
			return
		}
		*dst = n
	}
	sizeVar := func(name string, dst *int64, lo int64) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := config.ParseSize(v)
		if err != nil {
			bad(name, v, err)
			return
		}
		if int64(n) < lo {
			bad(name, v, fmt.Errorf("want at least %d bytes", lo))
			return
		}
		*dst = int64(n)
	}
	intVar("SHOAL_SWARM_NODES", &s.Nodes, 2, maxNodes)
	intVar("SHOAL_SWARM_RUNS", &s.Runs, 1, 100)
	sizeVar("SHOAL_SWARM_SIZE", &s.Size, 1<<20)
	sizeVar("SHOAL_SWARM_S3_SIZE", &s.S3Size, 1<<20)
	if v := getenv("SHOAL_SWARM_CHUNK"); v != "" {
		sizeVar("SHOAL_SWARM_CHUNK", &s.Chunk, 64<<10)
		s.ChunkFlag = strings.TrimSpace(v)
	}
	if v := getenv("SHOAL_SWARM_RATE"); v != "" {
		r, err := ParseRate(v)
		if err != nil {
			bad("SHOAL_SWARM_RATE", v, err)
		} else {
			s.RateBits = r
		}
	}
	if v := getenv("SHOAL_SWARM_ORIGIN_PATH_RATE"); v != "" {
		r, err := ParseRate(v)
		if err != nil {
			bad("SHOAL_SWARM_ORIGIN_PATH_RATE", v, err)
		} else {
			s.OriginPathBits = r
		}
	} else if s.OriginPathBits = s.RateBits / 4; s.OriginPathBits < 1e6 && slices.Contains(s.Scenarios, "L1") {
		bad("SHOAL_SWARM_RATE", getenv("SHOAL_SWARM_RATE"),
			fmt.Errorf("L1's default origin path rate B/4 = %d bit/s is below 1mbit: set SHOAL_SWARM_ORIGIN_PATH_RATE", s.OriginPathBits))
	}
	s.NodeArgs = strings.Fields(getenv("SHOAL_SWARM_NODE_ARGS"))
	switch v := strings.TrimSpace(getenv("SHOAL_SWARM_DIRECT")); v {
	case "", "1":
	case "0":
		s.NoDirect = true
	default:
		bad("SHOAL_SWARM_DIRECT", v, errors.New("want 0 or 1"))
	}
	if v := getenv("SHOAL_SWARM_OUT"); v != "" {
		s.Out = v
	}
	return s, errors.Join(errs...)
}

// ParseRate parses a link rate in tc's style: "200mbit", "1gbit",
// "500kbit", "1.5gbit" or plain bits per second. It must be at least
// 1 Mbit/s and at most 100 Gbit/s.
func ParseRate(s string) (int64, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if strings.HasSuffix(in, u.suffix) {
			mult, in = u.m, strings.TrimSuffix(in, u.suffix)
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(in), 64)
	if err != nil || f != f {
		return 0, fmt.Errorf("%w: rate %q: want e.g. 200mbit or 1gbit", ErrSettings, s)
	}
	bits := f * mult
	if bits < 1e6 || bits > 1e11 {
		return 0, fmt.Errorf("%w: rate %q: want 1mbit..100gbit", ErrSettings, s)
	}
	return int64(bits), nil
}
