package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	corev1 "k8s.io/api/core/v1"
)

// manifestsPath holds plain Kubernetes manifests for a cluster without
// Helm: the chart rendered as release "shoal" in namespace "shoal" with the
// Secrets made beforehand (see its header).
const manifestsPath = "kubernetes/shoal.yaml"

const manifestsHeader = `# Shoal as plain Kubernetes manifests: the Helm chart deploy/helm/shoal
# rendered as release "shoal" in namespace "shoal" with its default values.
# Regenerate: cd deploy && SHOAL_UPDATE_MANIFESTS=1 go test -run TestManifests .
#
# Before applying, create the namespace and the two Secrets it names:
#   kubectl create namespace shoal
#   shoal swarm-key > swarm.key
#   kubectl -n shoal create secret generic shoal-swarm-key --from-file=swarm.key
#   printf '%s:%s\n' "$ACCESS_KEY" "$SECRET_KEY" > credentials
#   kubectl -n shoal create secret generic shoal-gateway --from-file=credentials
# then: kubectl apply -f shoal.yaml
`

// The committed manifests are the chart's current render, and they decode
// strictly like the chart's output.
func TestManifests(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{
		"swarmKey": map[string]any{"existingSecret": "shoal-swarm-key"},
		"gateway":  map[string]any{"credentials": map[string]any{"existingSecret": "shoal-gateway"}},
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "shoal", Namespace: "shoal", IsInstall: true, Revision: 1}, common.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		if !strings.HasSuffix(n, "NOTES.txt") && strings.TrimSpace(stripComments(files[n])) != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString(manifestsHeader)
	for _, n := range names {
		b.WriteString("---\n# Source: " + strings.TrimPrefix(n, "shoal/") + "\n")
		b.WriteString(strings.TrimLeft(strings.TrimSpace(files[n]), "-\n") + "\n")
	}
	if os.Getenv("SHOAL_UPDATE_MANIFESTS") == "1" {
		if err := os.MkdirAll(filepath.Dir(manifestsPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(manifestsPath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(manifestsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s is not the chart's current render: cd deploy && SHOAL_UPDATE_MANIFESTS=1 go test -run TestManifests .", manifestsPath)
	}
	r := &rendered{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{}, custom: map[string]map[string]any{}}
	for i, doc := range strings.Split(string(got), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		if err := r.decode([]byte(doc)); err != nil {
			t.Fatalf("%s document %d: %v", manifestsPath, i, err)
		}
	}
	if r.daemonSet == nil || len(r.services) != 2 || r.pdb == nil || len(r.secrets) != 0 {
		t.Errorf("manifests: DaemonSet %v, %d Services, PDB %v, %d Secrets; want a DaemonSet, 2 Services, a PDB and no Secret",
			r.daemonSet != nil, len(r.services), r.pdb != nil, len(r.secrets))
	}
}
