package testenv

// This file reads docs/METRICS.md, the list of every metric family a node
// exports, for the tests that hold the node to it.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// DocMetric is one row of docs/METRICS.md.
type DocMetric struct {
	Name   string   // a family name, or a prefix ending in "*" ("go_*")
	Type   string   // counter, gauge, histogram, summary; "various" for a prefix
	Labels []string // sorted; nil for none ("—") or for a prefix
}

// docRow is a metric table row: | `name` | type | labels | meaning |
var docRow = regexp.MustCompile("^\\| `([a-z0-9_:]+\\*?)` \\| ([a-z]+) \\| ([^|]+) \\| .+ \\|$")

// MetricsDoc parses docs/METRICS.md (found from the module root) into its
// rows by name. A malformed or repeated row fails the test.
func MetricsDoc(t testing.TB) map[string]DocMetric {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	f, err := os.Open(filepath.Join(root, "docs", "METRICS.md"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer f.Close()
	out := map[string]DocMetric{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if !strings.HasPrefix(text, "| `") {
			continue
		}
		m := docRow.FindStringSubmatch(text)
		if m == nil {
			continue // another table (expressions)
		}
		d := DocMetric{Name: m[1], Type: m[2]}
		if err := d.parseLabels(strings.TrimSpace(m[3])); err != nil {
			t.Fatalf("docs/METRICS.md:%d: %v", line, err)
		}
		switch d.Type {
		case "counter", "gauge", "histogram", "summary":
		case "various":
			if !strings.HasSuffix(d.Name, "*") {
				t.Fatalf("docs/METRICS.md:%d: %s: type various is for prefixes only", line, d.Name)
			}
		default:
			t.Fatalf("docs/METRICS.md:%d: %s: unknown type %q", line, d.Name, d.Type)
		}
		if _, dup := out[d.Name]; dup {
			t.Fatalf("docs/METRICS.md:%d: %s listed twice", line, d.Name)
		}
		out[d.Name] = d
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if len(out) == 0 {
		t.Fatal("docs/METRICS.md: no metric rows")
	}
	return out
}

func (d *DocMetric) parseLabels(s string) error {
	switch s {
	case "—", "various":
		return nil
	}
	for _, l := range strings.Split(s, ",") {
		l = strings.TrimSpace(l)
		if len(l) < 3 || l[0] != '`' || l[len(l)-1] != '`' {
			return fmt.Errorf("%s: labels %q: want `a`, `b` or —", d.Name, s)
		}
		d.Labels = append(d.Labels, l[1:len(l)-1])
	}
	sort.Strings(d.Labels)
	return nil
}

// Prefixed reports whether name is covered by a prefix row ("go_*").
func Prefixed(doc map[string]DocMetric, name string) bool {
	for k := range doc {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
