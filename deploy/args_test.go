package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shoalBinary is $SHOAL_BIN or the repository's bin/shoal (`make build`).
func shoalBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SHOAL_BIN")
	if p == "" {
		p = filepath.Join("..", "bin", "shoal")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no shoal binary at %s (make build, or set SHOAL_BIN): %v", p, err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// The arguments the chart gives `shoal node` are ones the binary accepts
// as a whole configuration: `shoal config ARGS` parses and validates them
// exactly as `shoal node` does before it starts anything.
func TestChartArgsAreAValidConfig(t *testing.T) {
	bin := shoalBinary(t)
	help, _ := exec.Command(bin, "node", "--help").CombinedOutput()
	for name, vals := range map[string]map[string]any{
		"defaults": required(),
		"file origin, extra args": merge(required(), map[string]any{
			"origin":    map[string]any{"type": "file", "file": map[string]any{"hostPath": "/srv/data"}, "immutable": []any{"models/v1/"}},
			"cache":     map[string]any{"memory": "512MiB", "disk": "1TiB", "chunkSize": "8MiB"},
			"extraArgs": []any{"--origin-wait=30s", "--p2p-upload-limit=100MiB"},
		}),
		"s3-compatible origin": merge(required(), map[string]any{
			"origin": map[string]any{"s3": map[string]any{"endpoint": "http://minio.storage:9000", "region": "eu-west-1", "pathStyle": true}},
		}),
		"fuse mount": merge(required(), map[string]any{"fuse": map[string]any{"enabled": true, "bucket": "models"}}),
	} {
		t.Run(name, func(t *testing.T) {
			c := mustRender(t, vals).container(t)
			if c.Args[0] != "node" {
				t.Fatalf("args %v: want the node subcommand first", c.Args)
			}
			if strings.Contains(strings.Join(c.Args, " "), "--mount") && !strings.Contains(string(help), "--mount") {
				t.Skip("this shoal binary has no --mount option (the FUSE mount is built separately)")
			}
			out, err := exec.Command(bin, append([]string{"config"}, c.Args[1:]...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("shoal config %s: %v\n%s", strings.Join(c.Args[1:], " "), err, out)
			}
		})
	}
}
