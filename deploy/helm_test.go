package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var helmBin struct {
	once sync.Once
	path string
	err  error
}

// helmBinary returns $HELM, else the repository's bin/helm, else builds
// helm from this module (the version go.mod pins) into bin/helm.
func helmBinary(t *testing.T) string {
	t.Helper()
	helmBin.once.Do(func() {
		if p := os.Getenv("HELM"); p != "" {
			helmBin.path = p
			return
		}
		p, err := filepath.Abs(filepath.Join("..", "bin", "helm"))
		if err != nil {
			helmBin.err = err
			return
		}
		helmBin.path = p
		if _, err := os.Stat(p); err == nil {
			return
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			helmBin.err = err
			return
		}
		out, err := exec.Command("go", "build", "-o", p+".tmp", "helm.sh/helm/v4/cmd/helm").CombinedOutput()
		if err != nil {
			os.Remove(p + ".tmp")
			helmBin.err = err
			t.Logf("go build helm: %s", out)
			return
		}
		helmBin.err = os.Rename(p+".tmp", p)
	})
	if helmBin.err != nil {
		t.Fatalf("helm: %v", helmBin.err)
	}
	return helmBin.path
}

var requiredSets = []string{
	"--set-string", "swarmKey.value=/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("ab", 32) + "\n",
	"--set", "gateway.credentials.accessKey=AKIDEXAMPLE,gateway.credentials.secretKey=secret-example-key",
}

// `helm lint --strict` passes with the required values, with and without
// the optional objects; `helm template` refuses the chart without a swarm
// key and otherwise renders objects that decode strictly and match the
// library render.
func TestHelmLintAndTemplate(t *testing.T) {
	helm := helmBinary(t)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(helm, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run(append([]string{"lint", "--strict", chartDir}, requiredSets...)...); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	} else {
		t.Logf("helm lint --strict:\n%s", out)
	}
	opts := append([]string{"lint", "--strict", chartDir,
		"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true,fuse.enabled=true,storage.type=ephemeral"},
		requiredSets...)
	if out, err := run(opts...); err != nil {
		t.Fatalf("helm lint --strict with the optional objects: %v\n%s", err, out)
	}
	// (helm lint reports a template's fail() only as INFO; an install,
	// like helm template, stops on it.)
	if out, err := run("template", "cache", chartDir); err == nil || !strings.Contains(out, "swarmKey") {
		t.Fatalf("helm template without a swarm key: %v; want a failure naming swarmKey\n%s", err, out)
	}

	out, err := run(append([]string{"template", "cache", chartDir, "--namespace", "shoal-system"}, requiredSets...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	r := &rendered{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{}, custom: map[string]map[string]any{}}
	for i, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		if err := r.decode([]byte(doc)); err != nil {
			t.Fatalf("helm template document %d: %v\n%s", i, err, doc)
		}
	}
	if r.daemonSet == nil {
		t.Fatal("helm template rendered no DaemonSet")
	}
	lib := mustRender(t, required())
	if got, want := r.container(t).Args, lib.container(t).Args; !slices.Equal(got, want) {
		t.Errorf("helm template args %v\nlibrary render args %v", got, want)
	}
	if len(r.services) != 2 || len(r.secrets) != 2 || r.pdb == nil {
		t.Errorf("helm template: %d Services, %d Secrets, PDB %v", len(r.services), len(r.secrets), r.pdb != nil)
	}
}
