package bench

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoal-cache/shoal/internal/testenv"
)

func TestTierHitsParsesMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(strings.Join([]string{
			`# HELP shoal_blockstore_hits_total Block reads served, by tier.`,
			`# TYPE shoal_blockstore_hits_total counter`,
			`shoal_blockstore_hits_total{tier="disk"} 12`,
			`shoal_blockstore_hits_total{tier="memory"} 3.5e+02`,
			`shoal_blockstore_misses_total{tier="memory"} 99`,
			`shoal_blockstore_hits_total{tier="junk"} notanumber`,
		}, "\n") + "\n"))
	}))
	t.Cleanup(srv.Close)
	n := &testenv.Node{AdminAddr: strings.TrimPrefix(srv.URL, "http://")}
	hits, err := tierHits(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 || hits["disk"] != 12 || hits["memory"] != 350 {
		t.Errorf("hits = %v", hits)
	}
	if got := hitDelta(map[string]float64{"disk": 2}, hits); got != "disk=10 memory=350" {
		t.Errorf("hitDelta = %q", got)
	}
	if got := hitDelta(nil, map[string]float64{}); got != "not exported" {
		t.Errorf("hitDelta of nothing = %q", got)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestRedactDropsSignature(t *testing.T) {
	if got := redact("http://h/b/k?X-Amz-Signature=abc"); got != "http://h/b/k" {
		t.Errorf("redact = %q", got)
	}
}
