package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// promWait bounds a wait for Prometheus to have scraped or evaluated what
// the test did: a few 1 s intervals, with margin for a loaded CI box.
const promWait = 60 * time.Second

// The alerting and recording rules pass promtool's check and their unit
// tests (deploy/prometheus/shoal-rules.test.yml).
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	_, promtool := testenv.PrometheusBinaries(t)
	dir := filepath.Join(moduleRoot(t), "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "shoal-rules.yml"},
		{"test", "rules", "shoal-rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
}

// A real Prometheus scrapes a 3-node cluster while it reads and warms:
// every family it sees is in docs/METRICS.md with that type, the counters
// say what the test did, every dashboard panel's query and every rule is
// valid and has series, and a killed node shows in ShoalNodeDown.
func TestPrometheusScrapesCluster(t *testing.T) {
	t.Parallel()
	testenv.PrometheusBinaries(t) // skips before the cluster starts when there is none
	root := moduleRoot(t)
	const size = 3*mib + 777
	data := randomBytes(size, 301)
	model := [][]byte{randomBytes(mib+5, 302), randomBytes(2*mib, 303)}
	s, nodes := startS3Cluster(t, "prom", 3, clusterOpts())
	s.PutObject(t, "prom", "obj.bin", data)
	for i, b := range model {
		s.PutObject(t, "prom", fmt.Sprintf("models/part-%d.bin", i), b)
	}
	var targets []string
	for _, n := range nodes {
		targets = append(targets, n.AdminAddr)
	}
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Targets:   targets,
		RuleFiles: []string{filepath.Join(root, "deploy", "prometheus", "shoal-rules.yml")},
	})
	promEventually(t, "all 3 nodes scraped", func() (bool, string) {
		got, err := prom.Query(`sum(up{job="shoal"})`)
		return err == nil && len(got) == 1 && got[0].Value == "3", fmt.Sprint(got, err)
	})

	// Reads: node 0 cold from the origin, nodes 1 and 2 from peers; node 1
	// warms (pins) a prefix.
	for _, n := range nodes {
		mustGet(t, n.Client(t), "prom", "obj.bin", data)
	}
	if out, errOut, code := nodes[1].CLI(t, "pin", "s3://prom/models/"); code != 0 {
		t.Fatalf("shoal pin: exit %d\n%s%s", code, out, errOut)
	}
	var modelBytes int64
	for _, b := range model {
		modelBytes += int64(len(b))
	}
	// Counters as Prometheus scraped them, against what the test did.
	promEventually(t, "the reads scraped", func() (bool, string) {
		v := queryValue(t, prom, `sum(shoal_gateway_response_bytes_total{job="shoal",operation="GetObject"})`)
		return v >= 3*size, fmt.Sprintf("gateway GetObject bytes %v, want >= %d", v, 3*size)
	})
	promEventually(t, "the warm-up scraped", func() (bool, string) {
		v := queryValue(t, prom, `sum(shoal_node_origin_bytes_total{job="shoal"})`)
		return v >= float64(size+modelBytes), fmt.Sprintf("origin bytes %v, want >= %d", v, size+modelBytes)
	})
	originBytes := queryValue(t, prom, `sum(shoal_node_origin_bytes_total{job="shoal"})`)
	// Each chunk leaves the origin about once (slack: a chunk read again
	// while a home was slow to answer).
	if limit := 1.5 * float64(size+modelBytes); originBytes > limit {
		t.Errorf("origin bytes %v for %d bytes of objects read by 3 nodes; want <= %v", originBytes, size+modelBytes, limit)
	}
	if v := queryValue(t, prom, `sum(shoal_transfer_bytes_received_total{job="shoal"})`); v < size {
		t.Errorf("bytes received from peers %v; nodes 1 and 2 read a %d-byte object another node held", v, size)
	}
	if v := queryValue(t, prom, `sum(shoal_blockstore_bytes{job="shoal",tier="memory"})`); v < float64(size+modelBytes) {
		t.Errorf("memory tier holds %v bytes over the cluster; want >= %d", v, size+modelBytes)
	}
	t.Logf("scraped: origin bytes %v for %d bytes of objects; peers %v bytes; served to clients %v bytes",
		originBytes, size+modelBytes,
		queryValue(t, prom, `sum(shoal_transfer_bytes_received_total{job="shoal"})`),
		queryValue(t, prom, `sum(shoal_gateway_response_bytes_total{job="shoal"})`))

	// Every family Prometheus scraped is documented with its type, and
	// every documented shoal_* family was scraped.
	doc := testenv.MetricsDoc(t)
	meta, err := prom.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range meta {
		d, ok := doc[name]
		switch {
		case ok && d.Type != typ:
			t.Errorf("%s: scraped as a %s, docs/METRICS.md says %s", name, typ, d.Type)
		case !ok && (strings.HasPrefix(name, "shoal_") || !testenv.Prefixed(doc, name)):
			t.Errorf("%s (%s) scraped but not in docs/METRICS.md", name, typ)
		}
	}
	for name := range doc {
		if _, ok := meta[name]; !ok && !strings.HasSuffix(name, "*") {
			t.Errorf("docs/METRICS.md lists %s; Prometheus scraped no such family from the cluster", name)
		}
	}

	// Every dashboard query is valid and returns series.
	// (A series born with the reads needs a second scrape before rate()
	// has two samples: each query is given a few intervals.)
	for _, q := range dashboardQueries(t, filepath.Join(root, "deploy", "grafana", "shoal.json")) {
		if _, err := prom.Query(q.expr); err != nil {
			t.Errorf("dashboard panel %q: %v", q.panel, err)
			continue
		}
		var n int
		promEventually(t, fmt.Sprintf("dashboard panel %q to have series for %s", q.panel, q.expr), func() (bool, string) {
			got, err := prom.Query(q.expr)
			n = len(got)
			return err == nil && n > 0, fmt.Sprint(got, err)
		})
		t.Logf("panel %-28q %2d series  %s", q.panel, n, q.expr)
	}

	// Every rule loaded and evaluated without error; recording rules have
	// series; every metric an alert uses has series.
	var rules []testenv.Rule
	promEventually(t, "every rule evaluated", func() (bool, string) {
		rules, err = prom.Rules()
		if err != nil || len(rules) == 0 {
			return false, fmt.Sprint(err)
		}
		for _, r := range rules {
			if r.Health != "ok" {
				return false, fmt.Sprintf("%s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
		return true, ""
	})
	for _, r := range rules {
		if _, err := prom.Query(r.Query); err != nil {
			t.Errorf("rule %s: %v", r.Name, err)
			continue
		}
		if r.Type == "recording" {
			promEventually(t, "recording rule "+r.Name+" has series", func() (bool, string) {
				got, err := prom.Query(r.Name)
				return err == nil && len(got) > 0, fmt.Sprint(got, err)
			})
			t.Logf("recording rule %s = %v", r.Name, mustQuery(t, prom, r.Name))
			if r.Name == "shoal:origin_share:ratio_rate5m" {
				// About 6 MiB from the origin for 9 MiB served to clients
				// (the warm-up went to the origin, not to a client).
				promEventually(t, "origin share between 0 and 1", func() (bool, string) {
					v := queryValue(t, prom, r.Name)
					return v > 0 && v < 1, fmt.Sprint(v)
				})
			}
			continue
		}
		for _, m := range metricNames(r.Query) {
			if got := mustQuery(t, prom, fmt.Sprintf(`count({__name__=%q,job="shoal"})`, m)); len(got) == 0 {
				t.Errorf("alert %s uses %s, which has no series", r.Name, m)
			}
		}
		t.Logf("alert %-26s state %-8s metrics %v", r.Name, r.State, metricNames(r.Query))
	}

	// A killed node: its target goes down and ShoalNodeDown is pending for it.
	dead := nodes[2]
	dead.Kill()
	promEventually(t, "ShoalNodeDown pending for the killed node", func() (bool, string) {
		rules, err := prom.Rules()
		if err != nil {
			return false, err.Error()
		}
		i := slices.IndexFunc(rules, func(r testenv.Rule) bool { return r.Name == "ShoalNodeDown" })
		if i < 0 {
			return false, "no ShoalNodeDown rule"
		}
		got, err := prom.Query(rules[i].Query)
		if err != nil || len(got) != 1 || got[0].Metric["instance"] != dead.AdminAddr {
			return false, fmt.Sprint(got, err)
		}
		return rules[i].State == "pending" || rules[i].State == "firing", "state " + rules[i].State
	})
}

// promEventually polls cond until it holds or promWait passes; cond says
// what it saw.
func promEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(promWait)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", promWait, what, saw)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func mustQuery(t *testing.T, p *testenv.Prometheus, expr string) []testenv.Sample {
	t.Helper()
	got, err := p.Query(expr)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// queryValue is the value of a query that returns one sample (0 for none).
func queryValue(t *testing.T, p *testenv.Prometheus, expr string) float64 {
	t.Helper()
	got := mustQuery(t, p, expr)
	if len(got) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(got[0].Value, 64)
	if err != nil {
		t.Fatalf("%s: value %q: %v", expr, got[0].Value, err)
	}
	return v
}

type panelQuery struct{ panel, expr string }

// dashboardQueries returns every target expression of the Grafana
// dashboard, with its variables as an "All" selection would set them.
func dashboardQueries(t *testing.T, path string) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
	var out []panelQuery
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("dashboard panel %q has an empty query", p.Title)
				continue
			}
			out = append(out, panelQuery{p.Title, vars.Replace(tg.Expr)})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no queries", path)
	}
	return out
}

var selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)

// metricNames returns the metric names of the selectors in expr.
func metricNames(expr string) []string {
	var out []string
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Without a Prometheus server: every metric the dashboard and the rules
// select is one docs/METRICS.md lists (or Prometheus's own up), so a
// renamed or removed metric fails here on any machine.
func TestDashboardAndRulesUseDocumentedMetrics(t *testing.T) {
	root := moduleRoot(t)
	doc := testenv.MetricsDoc(t)
	for _, f := range []string{
		filepath.Join(root, "deploy", "grafana", "shoal.json"),
		filepath.Join(root, "deploy", "prometheus", "shoal-rules.yml"),
		filepath.Join(root, "deploy", "prometheus", "shoal-rules.test.yml"),
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// JSON escapes the quotes inside expressions; the selectors stay.
		names := metricNames(strings.ReplaceAll(string(b), `\"`, `"`))
		if len(names) == 0 {
			t.Fatalf("%s: no metric selectors found", f)
		}
		for _, n := range names {
			base := n
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(n, suf); ok {
					if d, ok := doc[b]; ok && d.Type == "histogram" {
						base = b
					}
				}
			}
			if _, ok := doc[base]; !ok && base != "up" && !testenv.Prefixed(doc, base) && !strings.Contains(base, ":") {
				t.Errorf("%s selects %s, which docs/METRICS.md does not list", filepath.Base(f), n)
			}
		}
	}
}
