package bench

// This file owns the result report: one Result per measured figure with its
// same-run baseline, ratio and target, written as JSON and printed as one
// summary table.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUModel   string `json:"cpu_model,omitempty"`
}

// CurrentMachine describes this machine and Go runtime.
func CurrentMachine() Machine {
	return Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		CPUModel:   cpuModel(),
	}
}

// cpuModel reads the first "model name" of /proc/cpuinfo ("" elsewhere).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Target is what a figure must reach. Zero fields are not checked.
type Target struct {
	// MinRatio: the median must be at least MinRatio times the baseline's.
	MinRatio float64 `json:"min_ratio,omitempty"`
	// MinValue: the median must be at least this.
	MinValue float64 `json:"min_value,omitempty"`
	// MaxValue: the median must be below this.
	MaxValue float64 `json:"max_value,omitempty"`
}

// Describe renders the target for people, e.g. ">= 2x origin, >= 20000 req/s".
func (t Target) Describe(baseline, unit string) string {
	var parts []string
	if t.MinRatio != 0 {
		parts = append(parts, fmt.Sprintf(">= %gx %s", t.MinRatio, baseline))
	}
	if t.MinValue != 0 {
		parts = append(parts, fmt.Sprintf(">= %g %s", t.MinValue, unit))
	}
	if t.MaxValue != 0 {
		parts = append(parts, fmt.Sprintf("< %g %s", t.MaxValue, unit))
	}
	return strings.Join(parts, ", ")
}

// Figure is a set of runs of one variant.
type Figure struct {
	Variant string    `json:"variant"`
	Runs    []float64 `json:"runs"`
	Spread
	Errors int64 `json:"errors"`
}

// NewFigure summarizes runs.
func NewFigure(variant string, runs []float64, errors int64) Figure {
	return Figure{Variant: variant, Runs: runs, Spread: Summarize(runs), Errors: errors}
}

// Result is one reported figure: its runs and spread, the baseline measured
// in the same run, their ratio (median over baseline median) and whether
// the target was met. A figure or baseline with errors never meets its
// target.
type Result struct {
	Scenario string `json:"scenario"`
	Unit     string `json:"unit"`
	Figure
	FirstError string  `json:"first_error,omitempty"`
	Baseline   *Figure `json:"baseline,omitempty"`
	Ratio      float64 `json:"ratio,omitempty"`
	Target     *Target `json:"target,omitempty"`
	TargetText string  `json:"target_text,omitempty"`
	// Met is absent for figures reported without a target.
	Met   *bool    `json:"met,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// NewResult builds a Result from a figure, its baseline (nil: none) and its
// target (nil: reported only), computing the ratio and Met.
func NewResult(scenario, unit string, fig Figure, baseline *Figure, target *Target) Result {
	r := Result{Scenario: scenario, Unit: unit, Figure: fig, Baseline: baseline, Target: target}
	if baseline != nil && baseline.Median != 0 {
		r.Ratio = fig.Median / baseline.Median
	}
	if target == nil {
		return r
	}
	base := "baseline"
	if baseline != nil {
		base = baseline.Variant
	}
	r.TargetText = target.Describe(base, unit)
	met := len(fig.Runs) > 0 && fig.Errors == 0
	if baseline != nil && baseline.Errors != 0 {
		met = false
	}
	if target.MinRatio != 0 && (baseline == nil || r.Ratio < target.MinRatio) {
		met = false
	}
	if target.MinValue != 0 && fig.Median < target.MinValue {
		met = false
	}
	if target.MaxValue != 0 && fig.Median >= target.MaxValue {
		met = false
	}
	r.Met = &met
	return r
}

// Report is the whole output of one harness run.
type Report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Machine  Machine           `json:"machine"`
	Settings map[string]string `json:"settings"`
	Results  []Result          `json:"results"`
}

// WriteJSON writes the report to path (creating its directory), replacing
// any previous file only once the new one is complete.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

// Table renders the results as one aligned text table.
func (r *Report) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tvariant\tmedian\tmin\tmax\tunit\truns\terrors\tbaseline (median)\tratio\ttarget\tmet")
	for _, res := range r.Results {
		base, ratio := "-", "-"
		if res.Baseline != nil {
			base = fmt.Sprintf("%s %s", res.Baseline.Variant, num(res.Baseline.Median))
			if res.Baseline.Errors != 0 {
				base += fmt.Sprintf(" (%d errors)", res.Baseline.Errors)
			}
			ratio = fmt.Sprintf("%.2fx", res.Ratio)
		}
		target, met := "-", "-"
		if res.Met != nil {
			target = res.TargetText
			met = "no"
			if *res.Met {
				met = "yes"
			}
		}
		errs := fmt.Sprint(res.Errors)
		if res.Errors != 0 {
			errs += " ERRORS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			res.Scenario, res.Variant, num(res.Median), num(res.Min), num(res.Max), res.Unit,
			len(res.Runs), errs, base, ratio, target, met)
	}
	tw.Flush()
	return b.String()
}

// num prints a figure with three or so significant digits.
func num(v float64) string {
	switch {
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
