package swarm

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoal-cache/shoal/internal/testenv"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the reader process run in a node's
	// namespace (see reader.go).
	if spec := os.Getenv(ReaderEnv); spec != "" {
		os.Exit(ReaderMain(spec, os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// swarmCommand is how a newcomer runs the scenarios (`make bench-swarm`).
const swarmCommand = "SHOAL_BENCH_SWARM=1 go test ./bench/swarm -run TestSwarmScenarios -count=1 -timeout 60m -v"

// TestSwarmScenarios runs S3, S4 and L1 (see doc.go); it needs root and
// SHOAL_BENCH_SWARM=1.
func TestSwarmScenarios(t *testing.T) {
	if os.Getenv("SHOAL_BENCH_SWARM") != "1" {
		t.Skip("set SHOAL_BENCH_SWARM=1 (as root) to run the swarm scenarios")
	}
	if os.Geteuid() != 0 {
		t.Skip("the swarm scenarios need root (network namespaces, tc)")
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(os.Getenv, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"ip", "tc", "iperf3"} {
		if _, err := exec.LookPath(tool); err != nil {
			installTools(t)
			break
		}
	}
	env := Env{
		ShoalBin:  testenv.ShoalBinary(t),
		ReaderExe: os.Args[0],
		ReaderArg: []string{"-test.run=^$"},
		WorkDir:   workDir(t),
		KeepLogs:  os.Getenv("SHOAL_SWARM_KEEP") != "",
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if env.VersitygwBin, err = versitygw(root); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	rep := NewReport(swarmCommand)
	if slices.Contains(s.Scenarios, "S3") {
		env.IPFSBin, err = kuboBinary(ctx, t, root)
		if err != nil {
			rep.Notes = append(rep.Notes, "S3: kubo baseline skipped: "+err.Error())
		}
	}
	if s.Runs < DefaultRuns {
		rep.Notes = append(rep.Notes, "fewer than 3 runs per figure: medians are indicative only")
	}
	defer func() {
		if err := rep.WriteJSON(s.Out); err != nil {
			t.Errorf("write %s: %v", s.Out, err)
		}
		t.Logf("results in %s\n%s", s.Out, rep.Table())
	}()
	if slices.Contains(s.Scenarios, "S4") {
		res, err := RunS4(ctx, env, s, rep)
		if err != nil {
			t.Fatalf("S4: %v", err)
		}
		rep.S4 = res
		for _, r := range res.RunsDetail {
			for _, e := range r.Errors {
				t.Errorf("S4: %s", e)
			}
		}
	}
	if slices.Contains(s.Scenarios, "L1") {
		res, err := RunL1(ctx, env, s, rep)
		if err != nil {
			t.Fatalf("L1: %v", err)
		}
		rep.L1 = res
		for _, p := range res.Passes {
			for _, r := range p.RunsDetail {
				for _, e := range r.Errors {
					t.Errorf("L1 B_o=%s: %s", rateString(p.PathBits), e)
				}
			}
		}
	}
	if slices.Contains(s.Scenarios, "S3") {
		res, err := RunS3(ctx, env, s, rep)
		if err != nil {
			t.Fatalf("S3: %v", err)
		}
		rep.S3 = res
		for _, e := range res.ErrorsText {
			t.Errorf("S3: %s", e)
		}
	}
}

// kuboBinary returns $SHOAL_IPFS ("none": skip the kubo baseline), else
// <root>/bin/ipfs, building it there (once, several minutes) if missing.
func kuboBinary(ctx context.Context, t *testing.T, root string) (string, error) {
	if os.Getenv("SHOAL_IPFS") == "none" {
		return "", errorString("SHOAL_IPFS=none")
	}
	if p, err := binaryPath(root, "SHOAL_IPFS", "ipfs"); err == nil || os.Getenv("SHOAL_IPFS") != "" {
		return p, err
	}
	t.Logf("building kubo %s into bin/ipfs (once; several minutes)", KuboVersion)
	bctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	out := filepath.Join(root, "bin", "ipfs")
	if err := BuildKubo(bctx, filepath.Join(root, ".bench", "kubo-build"), out); err != nil {
		return "", err
	}
	return out, nil
}

// versitygw finds versitygw like testenv does, building it from the tools
// module if it is missing.
func versitygw(root string) (string, error) {
	if p, err := binaryPath(root, "SHOAL_VERSITYGW", "versitygw"); err == nil || os.Getenv("SHOAL_VERSITYGW") != "" {
		return p, err
	}
	out := filepath.Join(root, "bin", "versitygw")
	cmd := exec.Command("go", "build", "-o", out, "github.com/versity/versitygw/cmd/versitygw")
	cmd.Dir = filepath.Join(root, "tools")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &exec.Error{Name: "go build versitygw", Err: errorString(string(b))}
	}
	return out, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// installTools installs iproute2 and iperf3 with apt-get (the harness runs
// as root).
func installTools(t *testing.T) {
	t.Helper()
	cmd := exec.Command("apt-get", "install", "-y", "iproute2", "iperf3")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install iproute2 iperf3: %v\n%s", err, out)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// workDir is SHOAL_SWARM_KEEP (created; node logs and data stay there for
// a look after the run) or a test temporary directory.
func workDir(t *testing.T) string {
	dir := os.Getenv("SHOAL_SWARM_KEEP")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("keeping node logs and data in %s", dir)
	return dir
}
