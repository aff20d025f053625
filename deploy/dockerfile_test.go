package deploy

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const dockerfile = "../Dockerfile"

// stage is one FROM ... block of the Dockerfile.
type stage struct {
	from, name string
	lines      []string // instructions after FROM, continuation lines joined
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		fields := strings.Fields(line)
		if strings.EqualFold(fields[0], "FROM") {
			s := stage{from: fields[1]}
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
				s.name = fields[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func instr(s stage, name string) []string {
	var out []string
	for _, l := range s.lines {
		if f := strings.Fields(l); strings.EqualFold(f[0], name) {
			out = append(out, strings.TrimSpace(l[len(f[0]):]))
		}
	}
	return out
}

// The image is built in two stages, the binary static (CGO off), the
// final stage empty but for it and the CA roots, run as a non-root user,
// with an exec-form entrypoint (no shell).
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a run stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if final.from != "scratch" {
		t.Errorf("final stage FROM %s, want scratch (no shell, no package manager)", final.from)
	}
	var buildCmd string
	for _, r := range instr(build, "RUN") {
		if strings.Contains(r, "go build") {
			buildCmd = r
		}
	}
	if !strings.Contains(buildCmd, "CGO_ENABLED=0") || !strings.Contains(buildCmd, "./cmd/shoal") {
		t.Errorf("build command %q: want CGO_ENABLED=0 go build ... ./cmd/shoal", buildCmd)
	}
	users := instr(final, "USER")
	if len(users) != 1 {
		t.Fatalf("final stage USER %v, want one", users)
	}
	uid, _, _ := strings.Cut(users[0], ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric non-root uid (runAsNonRoot checks it)", users[0])
	}
	if uid != "65532" {
		t.Errorf("USER %s: the chart's securityContext runs as 65532", users[0])
	}
	ep := instr(final, "ENTRYPOINT")
	if len(ep) != 1 || !strings.HasPrefix(ep[0], "[") {
		t.Errorf("ENTRYPOINT %v: want the exec form (no shell in the image)", ep)
	}
	for _, c := range instr(final, "COPY") {
		if !strings.Contains(c, "--from="+build.name) {
			t.Errorf("final stage COPY %q: want only files from the build stage", c)
		}
	}
}

// The binary built the way the Dockerfile builds it is static: no ELF
// interpreter, no dynamic section.
func TestImageBinaryIsStatic(t *testing.T) {
	bin := buildStatic(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s has a %v program header: dynamically linked", bin, p.Type)
		}
	}
}

var static struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildStatic builds cmd/shoal as the Dockerfile's build stage does, once
// per test binary (a fresh build with CGO off takes minutes here).
func buildStatic(t *testing.T) string {
	t.Helper()
	static.once.Do(func() {
		static.dir, static.err = os.MkdirTemp("", "shoal-image-test-")
		if static.err != nil {
			return
		}
		static.path = filepath.Join(static.dir, "shoal")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=image-test", "-o", static.path, "./cmd/shoal")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			static.err = fmt.Errorf("go build: %w\n%s", err, b)
		}
	})
	if static.err != nil {
		t.Fatal(static.err)
	}
	return static.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if static.dir != "" {
		os.RemoveAll(static.dir)
	}
	os.Exit(code)
}

// Where a container engine runs (podman), the image's run stage is built
// from the Dockerfile with the build stage's outputs supplied from the
// host (no registry is reachable for the Go image), and `shoal version`
// runs in it as the non-root user, with no network.
func TestImageRunsVersion(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("no container engine (podman) on this machine: the image itself is not built here")
	}
	if out, err := exec.Command(podman, "info").CombinedOutput(); err != nil {
		t.Skipf("podman does not run here: %v\n%s", err, out)
	}
	stages := parseDockerfile(t)
	build, final := stages[0], stages[len(stages)-1]
	ctx := t.TempDir()
	bin := buildStatic(t)
	// The build stage's outputs, laid out where the run stage copies from.
	copies := map[string]string{
		"/out/shoal":                         bin,
		"/etc/ssl/certs/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt",
	}
	if err := os.MkdirAll(filepath.Join(ctx, "out", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for dst, src := range copies {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("%s: %v", src, err)
		}
		p := filepath.Join(ctx, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	from := regexp.MustCompile(`--from=` + regexp.QuoteMeta(build.name) + `\s+`)
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	for _, l := range final.lines {
		if f := strings.Fields(l); strings.EqualFold(f[0], "COPY") {
			// COPY [--chown=..] /abs/src dst: the source is now in the context.
			l = from.ReplaceAllString(l, "")
			f = strings.Fields(l)
			for i, w := range f {
				if strings.HasPrefix(w, "/") && i < len(f)-1 {
					f[i] = strings.TrimPrefix(w, "/")
				}
			}
			l = strings.Join(f, " ")
		}
		df.WriteString(l + "\n")
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("localhost/shoal-image-test:%d", time.Now().UnixNano())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(podman, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s\nDockerfile:\n%s", strings.Join(args, " "), err, out, df.String())
		}
		return string(out)
	}
	run("build", "--network=none", "-t", tag, ctx)
	t.Cleanup(func() { exec.Command(podman, "rmi", "-f", tag).Run() })
	if user := strings.TrimSpace(run("image", "inspect", "--format", "{{.Config.User}}", tag)); user != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", user)
	}
	if ep := strings.TrimSpace(run("image", "inspect", "--format", "{{json .Config.Entrypoint}}", tag)); ep != `["/usr/local/bin/shoal"]` {
		t.Errorf("image entrypoint %s", ep)
	}
	// The engine's default limits (open files, processes) may be above
	// this process's hard limits, which an unprivileged sandbox cannot
	// raise: ask for ours.
	args := append(append([]string{"run", "--rm", "--network=none"}, ownLimits(t)...), tag, "version")
	out, err := exec.Command(podman, args...).CombinedOutput()
	if err != nil && strings.Contains(string(out), "OCI") {
		t.Skipf("the image builds, but this machine's container runtime cannot start a container: %s", strings.TrimSpace(string(out)))
	}
	if err != nil || !strings.Contains(string(out), "image-test") {
		t.Fatalf("shoal version in the image: %v\n%s", err, out)
	}
	t.Logf("image %s: shoal version ran as 65532 with no network", tag)
}

// ownLimits returns podman --ulimit options for this process's open-file
// and process limits (from /proc/self/limits).
func ownLimits(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for prefix, name := range map[string]string{"Max open files": "nofile", "Max processes": "nproc"} {
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			f := strings.Fields(strings.TrimPrefix(l, prefix))
			if len(f) >= 2 {
				soft, hard := f[0], f[1]
				if soft == "unlimited" {
					soft = "-1"
				}
				if hard == "unlimited" {
					hard = "-1"
				}
				out = append(out, fmt.Sprintf("--ulimit=%s=%s:%s", name, soft, hard))
			}
		}
	}
	return out
}
