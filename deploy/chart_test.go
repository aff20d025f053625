package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const chartDir = "helm/shoal"

// required are the values a user must give: a swarm key and gateway
// credentials (the chart refuses to render without them).
func required() map[string]any {
	return map[string]any{
		"swarmKey": map[string]any{"value": "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("ab", 32) + "\n"},
		"gateway":  map[string]any{"credentials": map[string]any{"accessKey": "AKIDEXAMPLE", "secretKey": "secret-example-key"}},
	}
}

// rendered is the chart's output decoded strictly with the Kubernetes API
// types: an unknown or misspelt field fails the decoding.
type rendered struct {
	daemonSet       *appsv1.DaemonSet
	services        map[string]*corev1.Service
	secrets         map[string]*corev1.Secret
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
	pdb             *policyv1.PodDisruptionBudget
	netpol          *networkingv1.NetworkPolicy
	custom          map[string]map[string]any // kind -> object (Prometheus Operator CRDs)
	notes           string
}

// render renders the chart as `helm template cache . -n shoal-system` with
// vals merged over values.yaml, and decodes every object.
func render(t *testing.T, vals map[string]any) (*rendered, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{
		Name: "cache", Namespace: "shoal-system", IsInstall: true, Revision: 1,
	}, common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	out := &rendered{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{}, custom: map[string]map[string]any{}}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text := files[name]
		if strings.HasSuffix(name, "NOTES.txt") {
			out.notes = text
			continue
		}
		for i, doc := range strings.Split(text, "\n---") {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := out.decode([]byte(doc)); err != nil {
				t.Fatalf("%s (document %d): %v\n%s", name, i, err, doc)
			}
		}
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (r *rendered) decode(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	strict := func(into any) error { return yaml.UnmarshalStrict(doc, into) }
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 DaemonSet":
		if r.daemonSet != nil {
			return fmt.Errorf("a second DaemonSet")
		}
		r.daemonSet = &appsv1.DaemonSet{}
		return strict(r.daemonSet)
	case "v1 Service":
		s := &corev1.Service{}
		r.services[nameOf(doc)] = s
		return strict(s)
	case "v1 Secret":
		s := &corev1.Secret{}
		r.secrets[nameOf(doc)] = s
		return strict(s)
	case "v1 ConfigMap":
		c := &corev1.ConfigMap{}
		r.configMaps[nameOf(doc)] = c
		return strict(c)
	case "v1 ServiceAccount":
		s := &corev1.ServiceAccount{}
		r.serviceAccounts = append(r.serviceAccounts, s)
		return strict(s)
	case "networking.k8s.io/v1 NetworkPolicy":
		r.netpol = &networkingv1.NetworkPolicy{}
		return strict(r.netpol)
	case "policy/v1 PodDisruptionBudget":
		r.pdb = &policyv1.PodDisruptionBudget{}
		return strict(r.pdb)
	case "monitoring.coreos.com/v1 ServiceMonitor", "monitoring.coreos.com/v1 PrometheusRule":
		var m map[string]any
		if err := yaml.UnmarshalStrict(doc, &m); err != nil {
			return err
		}
		r.custom[head.Kind] = m
		return nil
	}
	return fmt.Errorf("unexpected object %s %s", head.APIVersion, head.Kind)
}

func nameOf(doc []byte) string {
	var m struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	_ = yaml.Unmarshal(doc, &m)
	return m.Metadata.Name
}

func mustRender(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	r, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if r.daemonSet == nil {
		t.Fatal("no DaemonSet rendered")
	}
	return r
}

// merge returns a deep merge of b over a.
func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = merge(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func (r *rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := r.daemonSet.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "shoal" {
		t.Fatalf("containers %v, want one named shoal", cs)
	}
	return cs[0]
}

func volume(t *testing.T, spec corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q in %v", name, spec.Volumes)
	return corev1.Volume{}
}

func mount(c corev1.Container, name string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func hasArg(c corev1.Container, arg string) bool { return slices.Contains(c.Args, arg) }

// With the required values only, the chart renders what its README
// promises: a DaemonSet on every node (system-node-critical, every taint
// tolerated), the data directory on a hostPath, the swarm key and gateway
// credentials from Secrets, probes on /healthz and /readyz, GOMEMLIMIT from
// the memory limit, a non-root read-only container, DNS bootstrap from a
// headless Service that publishes unready pods, the gateway on a hostPort
// and a node-local Service, a PodDisruptionBudget; no CRD objects.
func TestChartDefaults(t *testing.T) {
	r := mustRender(t, required())
	ds := r.daemonSet
	spec := ds.Spec.Template.Spec
	c := r.container(t)

	if ds.Name != "cache-shoal" || ds.Namespace != "shoal-system" {
		t.Errorf("DaemonSet %s/%s, want shoal-system/cache-shoal", ds.Namespace, ds.Name)
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v, want one that tolerates every taint", spec.Tolerations)
	}
	us := ds.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil || us.RollingUpdate.MaxUnavailable.String() != "10%" {
		t.Errorf("update strategy %+v, want RollingUpdate maxUnavailable 10%%", us)
	}
	if got := ds.Spec.Selector.MatchLabels; got["app.kubernetes.io/name"] != "shoal" || got["app.kubernetes.io/instance"] != "cache" {
		t.Errorf("selector %v", got)
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("pod template lacks selector label %s=%s", k, v)
		}
	}

	// Data directory on the host, owned by the container's user.
	data := volume(t, spec, "data")
	if data.HostPath == nil || data.HostPath.Path != "/var/lib/shoal" || *data.HostPath.Type != corev1.HostPathDirectoryOrCreate {
		t.Errorf("data volume %+v, want hostPath /var/lib/shoal DirectoryOrCreate", data)
	}
	if m, ok := mount(c, "data"); !ok || m.MountPath != "/var/lib/shoal" || !hasArg(c, "--data-dir=/var/lib/shoal") {
		t.Errorf("data mount %+v, args %v", m, c.Args)
	}
	if len(spec.InitContainers) != 1 || !slices.Contains(spec.InitContainers[0].Command, "65532:65532") {
		t.Errorf("init containers %+v, want one chown to the node's user", spec.InitContainers)
	}

	// Secrets.
	sk := volume(t, spec, "swarm-key")
	if sk.Secret == nil || sk.Secret.SecretName != "cache-shoal-swarm-key" || !hasArg(c, "--swarm-key=/etc/shoal/swarm/swarm.key") {
		t.Errorf("swarm key volume %+v, args %v", sk, c.Args)
	}
	if s := r.secrets["cache-shoal-swarm-key"]; s == nil || !bytes.HasPrefix(s.Data["swarm.key"], []byte("/key/swarm/psk/1.0.0/")) {
		t.Errorf("swarm key Secret %+v", s)
	}
	gc := volume(t, spec, "gateway-credentials")
	if gc.Secret == nil || gc.Secret.SecretName != "cache-shoal-gateway" || !hasArg(c, "--gateway-credentials-file=/etc/shoal/gateway/credentials") {
		t.Errorf("gateway credentials volume %+v", gc)
	}
	if s := r.secrets["cache-shoal-gateway"]; s == nil || string(s.Data["credentials"]) != "AKIDEXAMPLE:secret-example-key\n" {
		t.Errorf("gateway Secret %+v", s)
	}
	if _, ok := ds.Spec.Template.Annotations["checksum/secrets"]; !ok {
		t.Error("no checksum/secrets annotation: a new key would not roll the pods")
	}

	// Probes.
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := "/readyz"
		if name == "liveness" {
			want = "/healthz"
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != intstr.FromString("admin") {
			t.Errorf("%s probe %+v, want GET %s on the admin port", name, p, want)
		}
	}
	if p := c.StartupProbe; p != nil && int(p.PeriodSeconds)*int(p.FailureThreshold) < 120 {
		t.Errorf("startup probe gives %d s; a node opening a large SSD tier needs minutes", p.PeriodSeconds*p.FailureThreshold)
	}

	// Resources and GOMEMLIMIT.
	req, lim := c.Resources.Requests, c.Resources.Limits
	if !req.Memory().Equal(*lim.Memory()) || lim.Memory().IsZero() || req.Cpu().IsZero() {
		t.Errorf("resources %+v, want memory request = limit and a CPU request", c.Resources)
	}
	var memlimit *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "GOMEMLIMIT" {
			memlimit = &c.Env[i]
		}
	}
	if memlimit == nil || memlimit.ValueFrom == nil || memlimit.ValueFrom.ResourceFieldRef == nil || memlimit.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("GOMEMLIMIT %+v, want it from limits.memory", memlimit)
	}

	// Non-root, read-only, no privileges.
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v", sc)
	}

	// Cluster: headless Service for DNS bootstrap.
	hl := r.services["cache-shoal-headless"]
	if hl == nil || hl.Spec.ClusterIP != corev1.ClusterIPNone || !hl.Spec.PublishNotReadyAddresses {
		t.Fatalf("headless Service %+v, want clusterIP None and publishNotReadyAddresses", hl)
	}
	if !hasArg(c, "--bootstrap=/dns4/cache-shoal-headless.shoal-system.svc.cluster.local/tcp/4001") || !hasArg(c, "--p2p-listen=/ip4/0.0.0.0/tcp/4001") {
		t.Errorf("args %v, want P2P on 4001 bootstrapped from the headless Service", c.Args)
	}
	for k, v := range hl.Spec.Selector {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("headless Service selects %s=%s, which the pods lack", k, v)
		}
	}

	// Gateway: hostPort and a node-local Service.
	var s3 *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "s3" {
			s3 = &c.Ports[i]
		}
	}
	if s3 == nil || s3.ContainerPort != 7070 || s3.HostPort != 7070 || !hasArg(c, "--gateway-listen=0.0.0.0:7070") {
		t.Errorf("s3 port %+v", s3)
	}
	gw := r.services["cache-shoal"]
	if gw == nil || gw.Spec.InternalTrafficPolicy == nil || *gw.Spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyLocal {
		t.Errorf("gateway Service %+v, want internalTrafficPolicy Local", gw)
	}
	if !hasArg(c, "--admin-listen=0.0.0.0:7071") || !hasArg(c, "--admin-allow-remote") {
		t.Errorf("args %v: the kubelet's probes and Prometheus need the admin API on the pod IP", c.Args)
	}
	if !hasArg(c, "--origin=s3") || !hasArg(c, "--mem-cache=2GiB") || !hasArg(c, "--disk-cache=100GiB") {
		t.Errorf("args %v", c.Args)
	}

	if r.pdb == nil || r.pdb.Spec.MaxUnavailable == nil || r.pdb.Spec.MaxUnavailable.String() != "10%" {
		t.Errorf("PodDisruptionBudget %+v", r.pdb)
	}
	if len(r.custom) != 0 || len(r.configMaps) != 0 || r.netpol != nil {
		t.Errorf("optional objects rendered by default: %v, %v", r.custom, r.configMaps)
	}
	if !strings.Contains(r.notes, "7070") {
		t.Errorf("NOTES lack the gateway address:\n%s", r.notes)
	}
	t.Logf("default render: DaemonSet args %v", c.Args)
}

// Non-default values: a file origin, existing Secrets, an ephemeral local
// volume, the FUSE mount, the Prometheus Operator objects and the
// dashboard ConfigMap.
func TestChartOptions(t *testing.T) {
	r := mustRender(t, map[string]any{
		"origin":   map[string]any{"type": "file", "file": map[string]any{"hostPath": "/srv/datasets"}, "immutable": []any{"models/releases/"}},
		"swarmKey": map[string]any{"existingSecret": "my-swarm", "secretKey": "key"},
		"gateway": map[string]any{"hostPort": 0, "service": map[string]any{"enabled": false},
			"credentials": map[string]any{"existingSecret": "my-gw"}},
		"storage":             map[string]any{"type": "ephemeral", "ephemeral": map[string]any{"storageClassName": "local-nvme", "size": "500Gi"}},
		"fuse":                map[string]any{"enabled": true, "hostPath": "/mnt/datasets", "bucket": "models"},
		"serviceMonitor":      map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus"}},
		"prometheusRule":      map[string]any{"enabled": true},
		"grafanaDashboard":    map[string]any{"enabled": true},
		"podDisruptionBudget": map[string]any{"enabled": false},
		"extraArgs":           []any{"--origin-wait=30s"},
		"cache":               map[string]any{"memory": "8GiB"},
		"networkPolicy": map[string]any{"enabled": true, "adminFrom": []any{
			map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}},
		}},
	})
	spec := r.daemonSet.Spec.Template.Spec
	c := r.container(t)

	if !hasArg(c, "--origin=file:///origin") || !hasArg(c, "--immutable=models/releases/") || !hasArg(c, "--origin-wait=30s") || !hasArg(c, "--mem-cache=8GiB") {
		t.Errorf("args %v", c.Args)
	}
	if o := volume(t, spec, "origin"); o.HostPath == nil || o.HostPath.Path != "/srv/datasets" {
		t.Errorf("origin volume %+v", o)
	}
	if m, ok := mount(c, "origin"); !ok || !m.ReadOnly {
		t.Errorf("origin mount %+v, want read-only", m)
	}
	if len(r.secrets) != 0 {
		t.Errorf("Secrets rendered although existing ones are named: %v", r.secrets)
	}
	if v := volume(t, spec, "swarm-key"); v.Secret.SecretName != "my-swarm" || !hasArg(c, "--swarm-key=/etc/shoal/swarm/key") {
		t.Errorf("swarm key %+v", v)
	}
	if v := volume(t, spec, "gateway-credentials"); v.Secret.SecretName != "my-gw" {
		t.Errorf("gateway credentials %+v", v)
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			t.Errorf("hostPort %d with gateway.hostPort 0", p.HostPort)
		}
	}
	if _, ok := r.services["cache-shoal"]; ok {
		t.Error("gateway Service rendered with gateway.service.enabled false")
	}

	// Ephemeral local volume.
	data := volume(t, spec, "data")
	if data.Ephemeral == nil || data.Ephemeral.VolumeClaimTemplate == nil {
		t.Fatalf("data volume %+v, want an ephemeral claim", data)
	}
	claim := data.Ephemeral.VolumeClaimTemplate.Spec
	if claim.StorageClassName == nil || *claim.StorageClassName != "local-nvme" || claim.Resources.Requests.Storage().String() != "500Gi" {
		t.Errorf("claim %+v", claim)
	}

	// FUSE: a privileged container propagating its mount to the host.
	fm, ok := mount(c, "fuse-mount")
	if !ok || fm.MountPath != "/mnt/shoal" || fm.MountPropagation == nil || *fm.MountPropagation != corev1.MountPropagationBidirectional {
		t.Errorf("fuse mount %+v, want /mnt/shoal with Bidirectional propagation", fm)
	}
	if v := volume(t, spec, "fuse-mount"); v.HostPath == nil || v.HostPath.Path != "/mnt/datasets" {
		t.Errorf("fuse volume %+v", v)
	}
	if v := volume(t, spec, "dev-fuse"); v.HostPath == nil || *v.HostPath.Type != corev1.HostPathCharDev {
		t.Errorf("/dev/fuse volume %+v", v)
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Errorf("security context %+v: Bidirectional propagation needs a privileged container", sc)
	}
	if !hasArg(c, "--mount=/mnt/shoal") || !hasArg(c, "--mount-bucket=models") || !hasArg(c, "--mount-allow-other") {
		t.Errorf("args %v", c.Args)
	}

	// Prometheus Operator objects and the dashboard.
	sm := r.custom["ServiceMonitor"]
	if sm == nil {
		t.Fatal("no ServiceMonitor")
	}
	smSpec := sm["spec"].(map[string]any)
	if smSpec["jobLabel"] != "app.kubernetes.io/name" {
		t.Errorf("ServiceMonitor jobLabel %v: the rules and dashboard select job=\"shoal\"", smSpec["jobLabel"])
	}
	ep := smSpec["endpoints"].([]any)[0].(map[string]any)
	if ep["port"] != "admin" || ep["path"] != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v", ep)
	}
	if sm["metadata"].(map[string]any)["labels"].(map[string]any)["release"] != "kube-prometheus" {
		t.Errorf("ServiceMonitor labels %v", sm["metadata"])
	}
	hl := r.services["cache-shoal-headless"]
	sel := smSpec["selector"].(map[string]any)["matchLabels"].(map[string]any)
	for k, v := range sel {
		if hl.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v; the headless Service has %q", k, v, hl.Labels[k])
		}
	}
	if hl.Labels["app.kubernetes.io/name"] != "shoal" {
		t.Errorf("headless Service app.kubernetes.io/name %q: job would not be shoal", hl.Labels["app.kubernetes.io/name"])
	}
	pr := r.custom["PrometheusRule"]
	if pr == nil {
		t.Fatal("no PrometheusRule")
	}
	var alerts []string
	for _, g := range pr["spec"].(map[string]any)["groups"].([]any) {
		for _, rule := range g.(map[string]any)["rules"].([]any) {
			if a, ok := rule.(map[string]any)["alert"]; ok {
				alerts = append(alerts, a.(string))
			}
		}
	}
	for _, want := range []string{"ShoalNodeDown", "ShoalOriginErrors", "ShoalDiskNearBudget"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("PrometheusRule alerts %v lack %s", alerts, want)
		}
	}
	cm := r.configMaps["cache-shoal-dashboard"]
	if cm == nil || cm.Labels["grafana_dashboard"] != "1" {
		t.Fatalf("dashboard ConfigMap %+v", cm)
	}
	dash, err := os.ReadFile("grafana/shoal.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(cm.Data["shoal.json"]) != strings.TrimSpace(string(dash)) {
		t.Error("the dashboard ConfigMap differs from grafana/shoal.json")
	}
	if r.pdb != nil {
		t.Error("PodDisruptionBudget rendered with podDisruptionBudget.enabled false")
	}

	// NetworkPolicy: P2P from shoal pods, the gateway from anywhere, the
	// admin API only from the monitoring namespace.
	np := r.netpol
	if np == nil {
		t.Fatal("no NetworkPolicy")
	}
	byPort := map[string]networkingv1.NetworkPolicyIngressRule{}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			byPort[p.Port.String()] = rule
		}
	}
	if p2p := byPort["p2p"]; len(p2p.From) != 1 || p2p.From[0].PodSelector == nil || p2p.From[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "shoal" {
		t.Errorf("p2p ingress %+v, want only from shoal pods", p2p)
	}
	if s3, ok := byPort["s3"]; !ok || len(s3.From) != 0 {
		t.Errorf("s3 ingress %+v, want from anywhere", s3)
	}
	if adm := byPort["admin"]; len(adm.From) != 1 || adm.From[0].NamespaceSelector == nil {
		t.Errorf("admin ingress %+v, want only from the monitoring namespace", adm)
	}
	if !strings.Contains(r.notes, "/mnt/datasets") {
		t.Errorf("NOTES do not say where the mount is:\n%s", r.notes)
	}
}

// Missing or wrong values fail with a message that says what to set.
func TestChartRefusesIncompleteValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no swarm key", map[string]any{"gateway": required()["gateway"]}, "swarmKey"},
		{"no gateway credentials", map[string]any{"swarmKey": required()["swarmKey"]}, "gateway.credentials"},
		{"file origin without a path", merge(required(), map[string]any{"origin": map[string]any{"type": "file"}}), "origin.file.hostPath"},
		{"unknown origin", merge(required(), map[string]any{"origin": map[string]any{"type": "gcs"}}), "origin.type"},
		{"unknown storage", merge(required(), map[string]any{"storage": map[string]any{"type": "nfs"}}), "storage.type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(t, tt.vals)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("render: %v; want an error naming %s", err, tt.want)
			}
		})
	}
}

// helm lint (Helm's own linter, as a library) passes with no warning, with
// the default and the optional values.
func TestChartLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"required values": required(),
		"options": merge(required(), map[string]any{
			"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true},
			"grafanaDashboard": map[string]any{"enabled": true}, "fuse": map[string]any{"enabled": true},
		}),
	} {
		t.Run(name, func(t *testing.T) {
			l := lint.RunAll(chartDir, vals, "shoal-system")
			for _, m := range l.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

// The chart carries copies of the dashboard and the rules (Helm reads only
// files inside the chart); they are the same files.
func TestChartCopiesAreCurrent(t *testing.T) {
	for copyPath, orig := range map[string]string{
		filepath.Join(chartDir, "files", "shoal.json"):      filepath.Join("grafana", "shoal.json"),
		filepath.Join(chartDir, "files", "shoal-rules.yml"): filepath.Join("prometheus", "shoal-rules.yml"),
	} {
		a, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: cp %s %s", copyPath, orig, orig, copyPath)
		}
	}
}
