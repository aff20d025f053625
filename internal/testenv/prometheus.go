package testenv

// This file owns the real Prometheus server the metrics tests scrape nodes
// with: the Debian package's prometheus and promtool (installed with apt-get
// when missing and running as root), a scrape configuration over the given
// targets, and queries through Prometheus's HTTP API.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// prometheusReadyTimeout bounds the server's start: opening an empty TSDB
// and loading the rules takes about a second.
const prometheusReadyTimeout = 60 * time.Second

var (
	promOnce sync.Once
	promBins struct{ server, tool string }
	promErr  error
)

// PrometheusBinaries returns the paths of prometheus and promtool. When
// they are missing it installs the Debian package "prometheus" if the test
// runs as root, and skips the test otherwise.
func PrometheusBinaries(t testing.TB) (server, tool string) {
	t.Helper()
	promOnce.Do(func() { promErr = findOrInstallPrometheus() })
	if errors.Is(promErr, errNotRoot) {
		t.Skip("testenv: prometheus/promtool not installed and not root to apt-get install prometheus")
	}
	if promErr != nil {
		t.Fatalf("testenv: %v", promErr)
	}
	return promBins.server, promBins.tool
}

var errNotRoot = errors.New("not root")

func findOrInstallPrometheus() error {
	look := func() bool {
		s, err1 := exec.LookPath("prometheus")
		p, err2 := exec.LookPath("promtool")
		promBins.server, promBins.tool = s, p
		return err1 == nil && err2 == nil
	}
	if look() {
		return nil
	}
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	// apt-get holds its own lock; a second test binary installing at the
	// same time would fail on it, so installs are serialized here too.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "shoal-testenv-apt.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if look() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus")
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	out, err := install()
	if err != nil { // an old or empty package list: update once and retry
		upd := exec.CommandContext(ctx, "apt-get", "update", "-q")
		upd.Env = env
		if uout, uerr := upd.CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %w\n%s", uerr, uout)
		}
		if out, err = install(); err != nil {
			return fmt.Errorf("apt-get install prometheus: %w\n%s", err, out)
		}
	}
	if !look() {
		return fmt.Errorf("apt-get install prometheus left no prometheus/promtool on PATH\n%s", out)
	}
	return nil
}

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// Job is the scrape job's name (default "shoal"); Targets are its
	// host:port targets, scraped at /metrics.
	Job     string
	Targets []string
	// Interval is the scrape and rule evaluation interval (default 1s).
	Interval time.Duration
	// RuleFiles are loaded with rule_files.
	RuleFiles []string
}

// Prometheus is a running prometheus server.
type Prometheus struct {
	URL string // http://127.0.0.1:PORT
	log *tailBuffer
	cmd *exec.Cmd
}

// StartPrometheus starts a prometheus server on a loopback port scraping
// opts.Targets and waits until it is ready. It is killed when the test ends;
// its log goes to the test log on failure.
func StartPrometheus(t testing.TB, opts PrometheusOptions) *Prometheus {
	t.Helper()
	bin, _ := PrometheusBinaries(t)
	if opts.Job == "" {
		opts.Job = "shoal"
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n  scrape_timeout: %s\n", opts.Interval, opts.Interval, opts.Interval)
	if len(opts.RuleFiles) > 0 {
		cfg.WriteString("rule_files:\n")
		for _, f := range opts.RuleFiles {
			fmt.Fprintf(&cfg, "  - %q\n", f)
		}
	}
	fmt.Fprintf(&cfg, "scrape_configs:\n  - job_name: %q\n    static_configs:\n      - targets: [", opts.Job)
	for i, tg := range opts.Targets {
		if i > 0 {
			cfg.WriteString(", ")
		}
		fmt.Fprintf(&cfg, "%q", tg)
	}
	cfg.WriteString("]\n")
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t, "127.0.0.1"))
	p := &Prometheus{URL: "http://" + addr, log: &tailBuffer{max: 64 << 10}}
	p.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.console.templates="+dir, "--web.console.libraries="+dir,
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testenv: start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus config:\n%s\nprometheus log (tail):\n%s", cfg.String(), p.log.String())
		}
	})
	deadline := time.Now().Add(prometheusReadyTimeout)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("testenv: prometheus exited at start:\n%s", p.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: prometheus not ready after %v:\n%s", prometheusReadyTimeout, p.log.String())
		}
	}
}

// Sample is one series of an instant query's vector result.
type Sample struct {
	Metric map[string]string
	Value  string // as Prometheus formats it ("1", "NaN", "0.25")
}

// Query runs an instant query (GET /api/v1/query). A query Prometheus
// refuses (bad syntax, unknown function) is an error with its message; a
// scalar result comes back as one sample with no labels.
func (p *Prometheus) Query(expr string) ([]Sample, error) {
	var res struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query?query="+url.QueryEscape(expr), &res); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch res.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(res.Result, &v); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			out = append(out, Sample{Metric: s.Metric, Value: fmt.Sprint(s.Value[1])})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(res.Result, &v); err != nil {
			return nil, err
		}
		return []Sample{{Value: fmt.Sprint(v[1])}}, nil
	}
	return nil, fmt.Errorf("query %q: result type %s", expr, res.ResultType)
}

// Metadata returns the type Prometheus recorded for each metric family it
// scraped (GET /api/v1/metadata): "counter", "gauge", "histogram", ...
func (p *Prometheus) Metadata() (map[string]string, error) {
	var res map[string][]struct {
		Type string `json:"type"`
	}
	if err := p.api("/api/v1/metadata", &res); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, ms := range res {
		if len(ms) > 0 {
			out[name] = ms[0].Type
		}
	}
	return out, nil
}

// Rule is a rule as Prometheus loaded and evaluated it.
type Rule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Type      string `json:"type"`   // "alerting" or "recording"
	Health    string `json:"health"` // "ok", "err", "unknown"
	LastError string `json:"lastError"`
	State     string `json:"state"` // alerting rules: inactive, pending, firing
}

// Rules returns every loaded rule (GET /api/v1/rules).
func (p *Prometheus) Rules() ([]Rule, error) {
	var res struct {
		Groups []struct {
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", &res); err != nil {
		return nil, err
	}
	var out []Rule
	for _, g := range res.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// api GETs path and decodes the "data" of a success envelope into out.
func (p *Prometheus) api(path string, out any) error {
	resp, err := http.Get(p.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus: %s", env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// Log returns the tail of the server's log.
func (p *Prometheus) Log() string { return p.log.String() }
