package bench

// This file owns the harness settings: what to run and how big, read from
// SHOAL_BENCH_* environment variables with documented defaults.

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-cache/shoal/internal/config"
	shoalcontent "github.com/shoal-cache/shoal/internal/content"
)

// ErrSettings: a SHOAL_BENCH_* variable has a bad value.
var ErrSettings = errors.New("bench: bad setting")

// Scenarios this harness knows, in run order; M1 (the FUSE mount, which
// needs FUSE and root or fusermount3) runs only when named, as
// `make bench-mount` does, and so does S8 (memory: it writes 1M chunk files
// and a 10 GiB object, `make bench-mem`).
var (
	knownScenarios   = []string{"S1", "S2", "M1", "S8"}
	defaultScenarios = []string{"S1", "S2"}
)

// Defaults of the settings.
const (
	// DefaultSize is S1's object size (BENCHMARKS.md: 1 GiB).
	DefaultSize = 1 << 30
	// DefaultRunsS1: a 1 GiB read takes about a second, so five runs are
	// cheap and tame the noise of a shared machine.
	DefaultRunsS1 = 5
	// DefaultRunsS2: each S2 run is 9 s per side; three is the minimum
	// BENCHMARKS.md allows.
	DefaultRunsS2 = 3
	// MinRuns is the fewest runs a median is reported from.
	MinRuns = 3
	// DefaultObjects is S2's object count: many more than connections, so
	// requests spread over objects, and 8 MiB in all, so it stays cached.
	DefaultObjects = 2000
	// DefaultObjectSize is S2's object size (BENCHMARKS.md: 4 KiB).
	DefaultObjectSize = 4 << 10
	// DefaultConns is S2's concurrency (BENCHMARKS.md: 64 connections).
	DefaultConns = 64
	// DefaultDuration is S2's measured window per run.
	DefaultDuration = 8 * time.Second
	// DefaultWarmup precedes each S2 window: connections are dialled and
	// the server settles.
	DefaultWarmup = time.Second
	// minSize keeps every one of 8 ranged streams at least 64 KiB.
	minSize = 512 << 10
	// DefaultS8Chunks is the block count of S8's idle node (BENCHMARKS.md:
	// an idle node indexing 1M chunks).
	DefaultS8Chunks = 1_000_000
	// DefaultS8Size is the object S8 streams through the gateway
	// (BENCHMARKS.md: 10 GiB).
	DefaultS8Size = 10 << 30
	// maxConns bounds S2's workers to what one process can dial sensibly.
	maxConns = 4096
)

// Settings are the harness parameters.
type Settings struct {
	Scenarios []string
	// Size is S1's object size in bytes.
	Size int64
	// RunsS1 and RunsS2 are the runs per figure.
	RunsS1, RunsS2 int
	// Objects, ObjectSize, Conns, Warmup and Duration shape S2.
	Objects    int
	ObjectSize int64
	Conns      int
	Warmup     time.Duration
	Duration   time.Duration
	// Out is the JSON results file.
	Out string
	// S8Chunks is how many blocks S8's idle node indexes; S8Size the size
	// of the object it streams.
	S8Chunks int
	S8Size   int64
	// Hash is the nodes' chunk hash (--hash); "" keeps the node's default
	// (sha2-256).
	Hash string
}

// SettingsFromEnv reads SHOAL_BENCH_SCENARIOS, _SIZE, _RUNS, _OBJECTS,
// _CONNS, _DURATION, _S8_CHUNKS, _S8_SIZE, _HASH and _OUT through lookup; unset variables take the
// defaults, and the default output is <moduleRoot>/.bench/results.json (a
// relative SHOAL_BENCH_OUT is relative to moduleRoot too).
func SettingsFromEnv(lookup func(string) (string, bool), moduleRoot string) (Settings, error) {
	s := Settings{
		Scenarios:  slices.Clone(defaultScenarios),
		Size:       DefaultSize,
		RunsS1:     DefaultRunsS1,
		RunsS2:     DefaultRunsS2,
		Objects:    DefaultObjects,
		ObjectSize: DefaultObjectSize,
		Conns:      DefaultConns,
		Warmup:     DefaultWarmup,
		Duration:   DefaultDuration,
		S8Chunks:   DefaultS8Chunks,
		S8Size:     DefaultS8Size,
		Out:        filepath.Join(moduleRoot, ".bench", "results.json"),
	}
	get := func(k string) (string, bool) {
		v, ok := lookup(k)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	if v, ok := get("SHOAL_BENCH_SCENARIOS"); ok {
		s.Scenarios = nil
		for _, f := range strings.Split(v, ",") {
			id := strings.ToUpper(strings.TrimSpace(f))
			if id == "" {
				continue
			}
			if !slices.Contains(knownScenarios, id) {
				return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_SCENARIOS: unknown scenario %q (known: %s)",
					ErrSettings, f, strings.Join(knownScenarios, ","))
			}
			if !slices.Contains(s.Scenarios, id) {
				s.Scenarios = append(s.Scenarios, id)
			}
		}
		if len(s.Scenarios) == 0 {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_SCENARIOS=%q names no scenario", ErrSettings, v)
		}
	}
	if v, ok := get("SHOAL_BENCH_SIZE"); ok {
		n, err := config.ParseSize(v)
		if err != nil {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_SIZE: %w", ErrSettings, err)
		}
		if n < minSize {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_SIZE=%s is below the minimum of 512KiB", ErrSettings, v)
		}
		s.Size = int64(n)
	}
	if v, ok := get("SHOAL_BENCH_RUNS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < MinRuns || n > 1000 {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_RUNS=%q: want a whole number from %d to 1000", ErrSettings, v, MinRuns)
		}
		s.RunsS1, s.RunsS2 = n, n
	}
	if v, ok := get("SHOAL_BENCH_OBJECTS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_OBJECTS=%q: want a whole number from 1 to 1000000", ErrSettings, v)
		}
		s.Objects = n
	}
	if v, ok := get("SHOAL_BENCH_CONNS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxConns {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_CONNS=%q: want a whole number from 1 to %d", ErrSettings, v, maxConns)
		}
		s.Conns = n
	}
	if v, ok := get("SHOAL_BENCH_DURATION"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Hour {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_DURATION=%q: want a duration from 100ms to 1h, e.g. 8s", ErrSettings, v)
		}
		s.Duration = d
	}
	if v, ok := get("SHOAL_BENCH_S8_CHUNKS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100_000_000 {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_S8_CHUNKS=%q: want a whole number from 1 to 100000000", ErrSettings, v)
		}
		s.S8Chunks = n
	}
	if v, ok := get("SHOAL_BENCH_S8_SIZE"); ok {
		n, err := config.ParseSize(v)
		if err != nil {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_S8_SIZE: %w", ErrSettings, err)
		}
		if n < minSize {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_S8_SIZE=%s is below the minimum of 512KiB", ErrSettings, v)
		}
		s.S8Size = int64(n)
	}
	if v, ok := get("SHOAL_BENCH_HASH"); ok {
		h, err := shoalcontent.ParseHash(v)
		if err != nil {
			return Settings{}, fmt.Errorf("%w: SHOAL_BENCH_HASH: %w", ErrSettings, err)
		}
		s.Hash = string(h)
	}
	if v, ok := get("SHOAL_BENCH_OUT"); ok {
		if !filepath.IsAbs(v) { // go test runs in bench/: anchor at the root
			v = filepath.Join(moduleRoot, v)
		}
		s.Out = v
	}
	return s, nil
}

// Has reports whether the scenario id is to be run.
func (s Settings) Has(id string) bool { return slices.Contains(s.Scenarios, id) }

// Map renders the settings for the report.
func (s Settings) Map() map[string]string {
	return map[string]string{
		"scenarios":      strings.Join(s.Scenarios, ","),
		"s1_size_bytes":  strconv.FormatInt(s.Size, 10),
		"s1_runs":        strconv.Itoa(s.RunsS1),
		"s2_runs":        strconv.Itoa(s.RunsS2),
		"s2_objects":     strconv.Itoa(s.Objects),
		"s2_object_size": strconv.FormatInt(s.ObjectSize, 10),
		"s2_conns":       strconv.Itoa(s.Conns),
		"s2_warmup":      s.Warmup.String(),
		"s2_duration":    s.Duration.String(),
		"s8_chunks":      strconv.Itoa(s.S8Chunks),
		"s8_size_bytes":  strconv.FormatInt(s.S8Size, 10),
		"hash":           cmp.Or(s.Hash, "node default"),
	}
}
