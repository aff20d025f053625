package main

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/routing"
)

// recorder is a registry that remembers every descriptor registered on it.
type recorder struct {
	*prometheus.Registry
	descs []*prometheus.Desc
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// family is one metric family as registered or documented.
type family struct {
	name   string
	typ    string   // counter, gauge, histogram, summary ("" when unknown)
	labels []string // sorted, const and variable labels together
}

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)

// registeredFamilies builds a cluster node with the real wiring of
// `shoal node` (build, the HTTP servers, the runtime collectors) on a
// recorder and returns every family registered, with its type where the
// registry already exposes it.
func registeredFamilies(t *testing.T, originKind string) map[string]family {
	t.Helper()
	dir := t.TempDir()
	originDir := filepath.Join(dir, "origin")
	keyFile := filepath.Join(dir, "swarm.key")
	if err := os.MkdirAll(filepath.Join(originDir, "bkt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, routing.GenerateSwarmKey(), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env{stdout: io.Discard, stderr: io.Discard, lookupEnv: func(string) (string, bool) { return "", false }}
	originArgs := []string{"--origin", "file://" + originDir}
	if originKind == "s3" {
		// Nothing is sent to it: building the client dials nobody.
		originArgs = []string{"--origin", "s3", "--s3-endpoint", "http://127.0.0.1:1", "--s3-region", "us-east-1", "--s3-path-style"}
	}
	c, err := loadConfig(e, "node", append(originArgs,
		"--data-dir", filepath.Join(dir, "data"),
		"--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--swarm-key", keyFile,
		"--mem-cache", "8MiB", "--disk-cache", "16MiB",
	))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := &recorder{Registry: prometheus.NewRegistry()}
	registerRuntime(reg)
	p, err := build(t.Context(), c, nil, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
	})
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gwLn.Close(); adLn.Close() })
	if _, err := newHTTPServers(c, p, gwLn, adLn, log, reg); err != nil {
		t.Fatal(err)
	}

	out := map[string]family{}
	for _, d := range reg.descs {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read descriptor %s", d)
		}
		f := out[m[1]]
		f.name = m[1]
		for _, lp := range strings.Split(m[2], ",") {
			if name, _, ok := strings.Cut(lp, "="); ok && !slices.Contains(f.labels, name) {
				f.labels = append(f.labels, name)
			}
		}
		for _, vl := range strings.Split(m[3], ",") {
			if vl != "" && !slices.Contains(f.labels, vl) {
				f.labels = append(f.labels, vl)
			}
		}
		sort.Strings(f.labels)
		out[f.name] = f
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		f, ok := out[mf.GetName()]
		if !ok {
			t.Fatalf("%s gathered but never described", mf.GetName())
		}
		f.typ = strings.ToLower(mf.GetType().String())
		out[f.name] = f
	}
	return out
}

// Every family a node registers is in docs/METRICS.md with its type and
// labels, and every shoal_* row there is one a node registers: built once
// with the file origin and once with the S3 origin (whose client has its own
// series), both in cluster mode.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc := testenv.MetricsDoc(t)
	fams := registeredFamilies(t, "file")
	for name, f := range registeredFamilies(t, "s3") {
		if g, ok := fams[name]; !ok || g.typ == "" {
			fams[name] = f
		}
	}
	for name, f := range fams {
		d, ok := doc[name]
		if !ok {
			if !strings.HasPrefix(name, "shoal_") && testenv.Prefixed(doc, name) {
				continue
			}
			t.Errorf("%s (%s, labels %v) is exported but not in docs/METRICS.md", name, f.typ, f.labels)
			continue
		}
		if f.typ != "" && f.typ != d.Type {
			t.Errorf("%s: docs/METRICS.md says %s, the node exports a %s", name, d.Type, f.typ)
		}
		if !slices.Equal(f.labels, d.Labels) {
			t.Errorf("%s: docs/METRICS.md lists labels %v, the node has %v", name, d.Labels, f.labels)
		}
	}
	for name := range doc {
		if _, ok := fams[name]; !ok && !strings.HasSuffix(name, "*") {
			t.Errorf("docs/METRICS.md lists %s, which no node registers", name)
		}
	}
	// Types the registry could not tell before any sample (vectors with no
	// child yet) are checked by the Prometheus integration test, which
	// scrapes a cluster that has served reads.
	var untyped []string
	for name, f := range fams {
		if f.typ == "" && strings.HasPrefix(name, "shoal_") {
			untyped = append(untyped, name)
		}
	}
	sort.Strings(untyped)
	t.Logf("%d families registered (%d shoal_*); types seen only after use: %v", len(fams), countPrefix(fams, "shoal_"), untyped)
}

func countPrefix(fams map[string]family, p string) int {
	n := 0
	for name := range fams {
		if strings.HasPrefix(name, p) {
			n++
		}
	}
	return n
}
