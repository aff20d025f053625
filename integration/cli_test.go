package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

func TestFileOrigin(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	data := randomBytes(2*mib+99, 10)
	files := map[string][]byte{
		"photos/2024/a.jpg": data,
		"photos/readme.txt": []byte("hello from a directory\n"),
		"docs/x.md":         []byte("# x\n"),
	}
	for p, b := range files {
		full := filepath.Join(root, "media", filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + root, ChunkSize: "1MiB"})
	c := n.Client(t)
	for p, b := range files {
		mustGet(t, c, "media", p, b)
	}
	got, _, err := get(ctxT(t), c, "media", "photos/2024/a.jpg", "bytes=1048575-1048577")
	if err != nil || string(got) != string(data[1048575:1048578]) {
		t.Fatalf("range: %v", err)
	}
	out, err := c.ListObjectsV2(ctxT(t), &s3.ListObjectsV2Input{Bucket: aws.String("media"), Prefix: aws.String("photos/"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "photos/readme.txt" ||
		len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "photos/2024/" {
		t.Fatalf("listing: %+v %+v", out.Contents, out.CommonPrefixes)
	}
	_, _, err = get(ctxT(t), c, "media", "../../etc/passwd", "")
	if err == nil {
		t.Fatal("a key escaping the origin directory was served")
	}
}

func TestAdminCLIPinAndStatus(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "pins", testenv.NodeOptions{ChunkSize: "1MiB", MetadataTTL: time.Hour})
	objs := map[string][]byte{
		"models/a.bin":   randomBytes(2*mib+1, 11),
		"models/b.bin":   randomBytes(100, 12),
		"other/skip.bin": randomBytes(10, 13),
	}
	for k, b := range objs {
		s.PutObject(t, "pins", k, b)
	}
	stdout, stderr, code := n.CLI(t, "pin", "s3://pins/models/", "--json")
	if code != 0 {
		t.Fatalf("shoal pin: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("pin output is not JSON: %v\n%s", err, stdout)
	}

	// Pinned objects are served without touching the origin.
	s.ResetCounts()
	c := n.Client(t)
	mustGet(t, c, "pins", "models/a.bin", objs["models/a.bin"])
	mustGet(t, c, "pins", "models/b.bin", objs["models/b.bin"])
	if cn := s.Counts(); cn.GetObject != 0 {
		t.Fatalf("origin saw %d GETs for pinned objects", cn.GetObject)
	}

	stdout, stderr, code = n.CLI(t, "status", "--json")
	if code != 0 {
		t.Fatalf("shoal status: exit %d\n%s", code, stderr)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, stdout)
	}
	if pins, _ := st["Pins"].(float64); pins < 1 {
		t.Fatalf("status shows no pin: %s", stdout)
	}
	// Every chunk of the two pinned objects is pinned in the store.
	pinnedData := int64(len(objs["models/a.bin"]) + len(objs["models/b.bin"]))
	if pb := int64(nested(st, "Store", "PinnedBytes")); pb < pinnedData {
		t.Fatalf("status shows %d pinned bytes, want at least the %d bytes of the pinned objects: %s", pb, pinnedData, stdout)
	}
	if text, _, code := n.CLI(t, "status"); code != 0 || !strings.Contains(text, "pinned blocks (") || strings.Contains(text, "pinned blocks (0 B)") {
		t.Fatalf("status (text) lacks the pinned bytes: %d\n%s", code, text)
	}
	if _, _, code = n.CLI(t, "prefetch", "s3://pins/other/"); code != 0 {
		t.Fatalf("shoal prefetch: exit %d", code)
	}
	if stdout, stderr, code = n.CLI(t, "unpin", "s3://pins/models/"); code != 0 {
		t.Fatalf("shoal unpin: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// Usage errors exit 2; a refused operation exits 1.
	if _, _, code = n.CLI(t, "pin", "pins/models"); code != 2 {
		t.Fatalf("pin without s3:// exit %d, want 2", code)
	}
	if _, _, code = n.CLI(t, "pin"); code != 2 {
		t.Fatalf("pin without argument exit %d, want 2", code)
	}
	if _, _, code = testenv.RunShoal(t, nil, "status", "--admin", "127.0.0.1:1"); code != 1 {
		t.Fatalf("status against a closed port exit %d, want 1", code)
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + t.TempDir()})
	for p, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "go_goroutines", "/v1/status": "{"} {
		resp, err := http.Get("http://" + n.AdminAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.200q", p, resp.StatusCode, body)
		}
	}
	resp, err := http.Post("http://"+n.AdminAddr+"/v1/pin", "application/json", strings.NewReader("{garbage"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("POST /v1/pin with a bad body: %d, want 400", resp.StatusCode)
	}
	stdout, _, code := testenv.RunShoal(t, nil, "status", "--json", "--admin", n.AdminAddr)
	if code != 0 || !strings.Contains(stdout, "{") {
		t.Fatalf("shoal status --admin: %d %q", code, stdout)
	}
	st := n.Status(t)
	if _, ok := st["Store"]; !ok {
		t.Fatalf("status lacks store figures: %v", st)
	}
}

func TestCLIUsage(t *testing.T) {
	t.Parallel()
	out, _, code := testenv.RunShoal(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "shoal node") {
		t.Fatalf("--help: %d %q", code, out)
	}
	out, _, code = testenv.RunShoal(t, nil, "node", "--help")
	if code != 0 {
		t.Fatalf("node --help: exit %d", code)
	}
	for _, opt := range []string{"--data-dir", "--origin", "--s3-endpoint", "--s3-region", "--s3-path-style",
		"--s3-max-inflight", "--gateway-listen", "--gateway-access-key", "--gateway-secret-key",
		"--gateway-credentials-file", "--gateway-domain", "--mem-cache", "--disk-cache", "--chunk-size",
		"--hash", "--metadata-ttl", "--immutable", "--list-ttl", "--admin-listen", "--log-level", "--log-format",
		"SHOAL_MEM_CACHE", "default 1GiB"} {
		if !strings.Contains(out, opt) {
			t.Errorf("node --help lacks %s", opt)
		}
	}
	if out, _, code = testenv.RunShoal(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "shoal ") {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, args := range [][]string{{}, {"bogus"}, {"node", "--mem-cache", "lots"}, {"node", "--no-such-flag"},
		{"node", "--origin", "ftp://x"}, {"config", "--hash", "md5"}, {"node", "extra-arg"}} {
		if _, stderr, code := testenv.RunShoal(t, nil, args...); code != 2 || stderr == "" {
			t.Errorf("shoal %v: exit %d, stderr %q; want 2 with a message", args, code, stderr)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "shoal.yaml")
	if err := os.WriteFile(file, []byte("mem-cache: 2GiB\ndisk-cache: 3GiB\nchunk-size: 1MiB\nimmutable:\n  - a/b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := testenv.RunShoal(t, []string{"SHOAL_CONFIG=" + file, "SHOAL_DISK_CACHE=5GiB", "SHOAL_CHUNK_SIZE=2MiB"},
		"config", "--chunk-size", "8MiB")
	if code != 0 {
		t.Fatalf("config: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"mem-cache: 2GiB", "disk-cache: 5GiB", "chunk-size: 8MiB", "- a/b"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	if err := os.WriteFile(file, []byte("mem-cash: 2GiB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = testenv.RunShoal(t, nil, "node", "--config", file)
	if code != 2 || !strings.Contains(stderr, "mem-cash") {
		t.Fatalf("unknown YAML key: exit %d, %q", code, stderr)
	}
}

// TestDemoOneshot runs `make demo`'s script in one-shot mode: it starts a
// node over sample data, runs every printed example, and checks them.
func TestDemoOneshot(t *testing.T) {
	t.Parallel()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "DEMO_ONESHOT=1", "DEMO_DIR="+t.TempDir(), "SHOAL_BIN="+testenv.ShoalBinary(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "demo: all examples passed") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
}
