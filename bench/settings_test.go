package bench

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSettingsDefaults(t *testing.T) {
	s, err := SettingsFromEnv(lookupMap(nil), "/mod")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Scenarios, []string{"S1", "S2"}) || s.Size != 1<<30 || s.RunsS1 < MinRuns ||
		s.RunsS2 < MinRuns || s.Conns != 64 || s.ObjectSize != 4096 || s.Duration != 8*time.Second ||
		s.Out != filepath.Join("/mod", ".bench", "results.json") || s.S8Chunks != 1_000_000 || s.S8Size != 10<<30 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestSettingsOverrides(t *testing.T) {
	s, err := SettingsFromEnv(lookupMap(map[string]string{
		"SHOAL_BENCH_SCENARIOS": " s2 ,S2",
		"SHOAL_BENCH_SIZE":      "64MiB",
		"SHOAL_BENCH_RUNS":      "4",
		"SHOAL_BENCH_OBJECTS":   "10",
		"SHOAL_BENCH_CONNS":     "8",
		"SHOAL_BENCH_DURATION":  "2s",
		"SHOAL_BENCH_OUT":       "out.json",
		"SHOAL_BENCH_HASH":      "blake3",
		"SHOAL_BENCH_S8_CHUNKS": "5000",
		"SHOAL_BENCH_S8_SIZE":   "2GiB",
	}), "/mod")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Scenarios, []string{"S2"}) || s.Has("S1") || !s.Has("S2") || s.Size != 64<<20 ||
		s.RunsS1 != 4 || s.RunsS2 != 4 || s.Objects != 10 || s.Conns != 8 || s.Duration != 2*time.Second || s.Out != filepath.Join("/mod", "out.json") {
		t.Errorf("overrides: %+v", s)
	}
	if s.S8Chunks != 5000 || s.S8Size != 2<<30 {
		t.Errorf("S8: %d chunks, %d bytes", s.S8Chunks, s.S8Size)
	}
	if s.Hash != "blake3" {
		t.Errorf("hash: %q", s.Hash)
	}
	if m := s.Map(); m["scenarios"] != "S2" || m["s1_size_bytes"] != "67108864" || m["hash"] != "blake3" {
		t.Errorf("Map: %v", m)
	}
}

func TestSettingsRejectBadValues(t *testing.T) {
	for k, v := range map[string]string{
		"SHOAL_BENCH_SCENARIOS": "S1,S9",
		"SHOAL_BENCH_SIZE":      "lots",
		"SHOAL_BENCH_RUNS":      "2",
		"SHOAL_BENCH_OBJECTS":   "0",
		"SHOAL_BENCH_CONNS":     "-1",
		"SHOAL_BENCH_DURATION":  "8",
		"SHOAL_BENCH_HASH":      "md5",
		"SHOAL_BENCH_S8_CHUNKS": "0",
		"SHOAL_BENCH_S8_SIZE":   "1KiB",
	} {
		if _, err := SettingsFromEnv(lookupMap(map[string]string{k: v}), "/mod"); !errors.Is(err, ErrSettings) {
			t.Errorf("%s=%q: err %v, want ErrSettings", k, v, err)
		}
	}
	if _, err := SettingsFromEnv(lookupMap(map[string]string{"SHOAL_BENCH_SIZE": "1KiB"}), "/mod"); !errors.Is(err, ErrSettings) {
		t.Errorf("a 1 KiB S1 object was accepted")
	}
	if _, err := SettingsFromEnv(lookupMap(map[string]string{"SHOAL_BENCH_SCENARIOS": " , "}), "/mod"); !errors.Is(err, ErrSettings) {
		t.Errorf("an empty scenario list was accepted")
	}
}
