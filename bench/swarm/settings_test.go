package swarm

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadSettingsDefaults(t *testing.T) {
	s, err := LoadSettings(envOf(nil), "/mod")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Scenarios, []string{"S3", "S4"}) || s.Nodes != 8 || s.Size != 256<<20 ||
		s.RateBits != 200_000_000 || s.Runs != 3 || s.S3Size != 1<<30 || s.Chunk != 4<<20 || s.ChunkFlag != "" {
		t.Fatalf("defaults: %+v", s)
	}
	if s.Out != filepath.Join("/mod", ".bench", "swarm.json") {
		t.Fatalf("out: %s", s.Out)
	}
}

func TestLoadSettingsValues(t *testing.T) {
	s, err := LoadSettings(envOf(map[string]string{
		"SHOAL_SWARM_SCENARIOS": "s4, S4",
		"SHOAL_SWARM_NODES":     "32",
		"SHOAL_SWARM_SIZE":      "64MiB",
		"SHOAL_SWARM_RATE":      "1gbit",
		"SHOAL_SWARM_RUNS":      "5",
		"SHOAL_SWARM_S3_SIZE":   "2GiB",
		"SHOAL_SWARM_CHUNK":     "8MiB",
		"SHOAL_SWARM_NODE_ARGS": "--mem-cache 2GiB  --hash blake3",
		"SHOAL_SWARM_OUT":       "/x/y.json",
	}), "/mod")
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{Scenarios: []string{"S4"}, Nodes: 32, Size: 64 << 20, RateBits: 1e9, Runs: 5, S3Size: 2 << 30,
		Chunk: 8 << 20, ChunkFlag: "8MiB", NodeArgs: []string{"--mem-cache", "2GiB", "--hash", "blake3"}, Out: "/x/y.json"}
	if !slices.Equal(s.Scenarios, want.Scenarios) || !slices.Equal(s.NodeArgs, want.NodeArgs) {
		t.Fatalf("got %+v", s)
	}
	s.Scenarios, s.NodeArgs, want.Scenarios, want.NodeArgs = nil, nil, nil, nil
	if s.Nodes != want.Nodes || s.Size != want.Size || s.RateBits != want.RateBits || s.Runs != want.Runs ||
		s.S3Size != want.S3Size || s.Chunk != want.Chunk || s.ChunkFlag != want.ChunkFlag || s.Out != want.Out {
		t.Fatalf("got %+v, want %+v", s, want)
	}
}

func TestLoadSettingsRejects(t *testing.T) {
	for name, v := range map[string]string{
		"SHOAL_SWARM_SCENARIOS": "S9",
		"SHOAL_SWARM_NODES":     "1",
		"SHOAL_SWARM_RUNS":      "zero",
		"SHOAL_SWARM_SIZE":      "12parsecs",
		"SHOAL_SWARM_RATE":      "fast",
		"SHOAL_SWARM_CHUNK":     "1KiB",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadSettings(envOf(map[string]string{name: v}), "/mod")
			if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%s: err %v, want ErrSettings naming the variable", name, v, err)
			}
		})
	}
	if _, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_NODES": "300"}), "/mod"); err == nil {
		t.Fatal("300 nodes do not fit a /24 and must be refused")
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"200mbit": 200e6, "1gbit": 1e9, "1.5Gbit": 1.5e9, "500000kbit": 500e6, "2000000": 2e6, " 100mbit ": 100e6,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "mbit", "-5mbit", "10kbit", "1tbit", "NaN", "fast"} {
		if _, err := ParseRate(in); !errors.Is(err, ErrSettings) {
			t.Errorf("ParseRate(%q): err %v, want ErrSettings", in, err)
		}
	}
}

func TestNewStat(t *testing.T) {
	s := NewStat([]float64{3, 1, 2})
	if s.Median != 2 || s.Min != 1 || s.Max != 3 || !slices.Equal(s.Runs, []float64{3, 1, 2}) {
		t.Fatalf("odd: %+v", s)
	}
	if s := NewStat([]float64{4, 1, 2, 3}); s.Median != 2.5 {
		t.Fatalf("even: %+v", s)
	}
	if s := NewStat(nil); s.Median != 0 || s.Runs != nil {
		t.Fatalf("empty: %+v", s)
	}
}

func TestLoadSettingsDirect(t *testing.T) {
	for v, want := range map[string]bool{"": false, "1": false, "0": true} {
		s, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_DIRECT": v}), "/mod")
		if err != nil || s.NoDirect != want {
			t.Errorf("SHOAL_SWARM_DIRECT=%q: NoDirect %v, err %v; want %v", v, s.NoDirect, err, want)
		}
	}
	if _, err := LoadSettings(envOf(map[string]string{"SHOAL_SWARM_DIRECT": "no"}), "/mod"); !errors.Is(err, ErrSettings) {
		t.Errorf("SHOAL_SWARM_DIRECT=no: %v", err)
	}
}
