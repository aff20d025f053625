package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewResultMet(t *testing.T) {
	base := NewFigure("origin", []float64{100, 110, 90}, 0)
	baseErr := NewFigure("origin", []float64{100, 110, 90}, 2)
	for _, tc := range []struct {
		name   string
		fig    Figure
		base   *Figure
		target *Target
		met    bool
	}{
		{"ratio met", NewFigure("gw", []float64{150, 160, 170}, 0), &base, &Target{MinRatio: 1.5}, true},
		{"ratio missed", NewFigure("gw", []float64{140, 149, 200}, 0), &base, &Target{MinRatio: 1.5}, false},
		{"errors never meet", NewFigure("gw", []float64{500, 500, 500}, 1), &base, &Target{MinRatio: 1.5}, false},
		{"baseline errors never meet", NewFigure("gw", []float64{500, 500, 500}, 0), &baseErr, &Target{MinRatio: 1.5}, false},
		{"ratio and floor", NewFigure("gw", []float64{300, 300, 300}, 0), &base, &Target{MinRatio: 2, MinValue: 20000}, false},
		{"ceiling met", NewFigure("p99", []float64{9, 9.9, 20}, 0), &base, &Target{MaxValue: 10}, true},
		{"ceiling missed", NewFigure("p99", []float64{10, 10, 10}, 0), &base, &Target{MaxValue: 10}, false},
		{"no runs", NewFigure("gw", nil, 3), &base, &Target{MinRatio: 1}, false},
		{"ratio without baseline", NewFigure("gw", []float64{1}, 0), nil, &Target{MinRatio: 1}, false},
	} {
		r := NewResult("S9", "MB/s", tc.fig, tc.base, tc.target)
		if r.Met == nil || *r.Met != tc.met {
			t.Errorf("%s: met %v, want %v (ratio %.2f)", tc.name, r.Met, tc.met, r.Ratio)
		}
	}
	r := NewResult("S9", "ms", NewFigure("p50", []float64{1, 2, 3}, 0), &base, nil)
	if r.Met != nil || r.TargetText != "" || r.Ratio != 0.02 {
		t.Errorf("result without target: met %v, target %q, ratio %v", r.Met, r.TargetText, r.Ratio)
	}
}

func TestReportJSONAndTable(t *testing.T) {
	base := NewFigure("origin 1 stream", []float64{1000, 1100, 900}, 0)
	rep := Report{Machine: CurrentMachine(), Settings: map[string]string{"s1_runs": "3"}}
	rep.Results = append(rep.Results,
		NewResult("S1", "MB/s", NewFigure("memory-hit 1 stream", []float64{2000, 1500, 1800}, 0), &base, &Target{MinRatio: 1.5}),
		NewResult("S1", "MB/s", NewFigure("ssd-hit 1 stream", []float64{900}, 2), &base, &Target{MinRatio: 1}),
	)
	path := filepath.Join(t.TempDir(), "out", "results.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Machine struct {
			NProc     int    `json:"nproc"`
			GoVersion string `json:"go_version"`
		} `json:"machine"`
		Results []struct {
			Scenario, Variant, Unit string
			Runs                    []float64
			Median, Min, Max, Ratio float64
			Errors                  int64
			Met                     bool
			Baseline                struct{ Median float64 }
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("results file is not JSON: %v\n%s", err, data)
	}
	if back.Machine.NProc < 1 || !strings.HasPrefix(back.Machine.GoVersion, "go") {
		t.Errorf("machine info: %+v", back.Machine)
	}
	if len(back.Results) != 2 {
		t.Fatalf("%d results", len(back.Results))
	}
	r0 := back.Results[0]
	if r0.Scenario != "S1" || r0.Variant != "memory-hit 1 stream" || r0.Median != 1800 || r0.Min != 1500 ||
		r0.Max != 2000 || r0.Baseline.Median != 1000 || r0.Ratio != 1.8 || !r0.Met || len(r0.Runs) != 3 {
		t.Errorf("first result: %+v", r0)
	}
	if back.Results[1].Met || back.Results[1].Errors != 2 {
		t.Errorf("a figure with errors: %+v", back.Results[1])
	}

	table := rep.Table()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines:\n%s", len(lines), table)
	}
	for _, want := range []string{"memory-hit 1 stream", "1800", "1.80x", ">= 1.5x origin 1 stream", "yes"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if !strings.Contains(lines[2], "2 ERRORS") || !strings.HasSuffix(strings.TrimSpace(lines[2]), "no") {
		t.Errorf("row with errors: %q", lines[2])
	}
}

func TestWriteJSONBadPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := rep.WriteJSON(filepath.Join(file, "results.json")); err == nil {
		t.Error("writing under a regular file did not fail")
	}
}

func TestCPUResult(t *testing.T) {
	res := cpuResult("ssd-hit 1 stream: node serving the gateway client", []float64{0.9, 1.1, 1.0},
		"origin (versitygw) serving 1 stream", []float64{0.5, 0.5, 0.6})
	if res.Unit != "CPU-s/GiB" || res.Median != 1.0 || res.Baseline.Median != 0.5 || res.Ratio != 2 || res.Met != nil {
		t.Fatalf("cpuResult = %+v", res)
	}
	rep := Report{Results: []Result{res}}
	if tab := rep.Table(); !strings.Contains(tab, "CPU-s/GiB") || !strings.Contains(tab, "2.00x") {
		t.Errorf("table:\n%s", tab)
	}
}
