package swarm

// This file owns S3's kubo baseline: two kubo daemons, one in host A's
// namespace and one in host B's, with no bootstrap peers and no content
// routing (B is connected to A directly, so bitswap asks A); A adds the
// file, B runs `ipfs cat` of it, and B's unpinned blocks are garbage
// collected between runs so each run is cold.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-cache/shoal/internal/cpucost"
)

const (
	kuboSwarmPort = "4101"
	kuboAPI       = "/ip4/127.0.0.1/tcp/5001"
	// kuboReadyTimeout: a kubo daemon starts in a few seconds.
	kuboReadyTimeout = 60 * time.Second
)

type kubo struct {
	bin, repo string
	host      *Host
	daemon    *exec.Cmd
	done      chan struct{}
}

func (k *kubo) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := k.host.Command(ctx, k.bin, args...)
	c.Env = append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
	return c
}

func (k *kubo) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := k.cmd(ctx, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ipfs %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// startKubo initialises a repo and starts a daemon in h's namespace.
func startKubo(ctx context.Context, bin, repo string, h *Host) (*kubo, error) {
	k := &kubo{bin: bin, repo: repo, host: h}
	if _, err := k.run(ctx, "init", "--profile", "test"); err != nil {
		return nil, err
	}
	for _, c := range [][]string{
		{"config", "--json", "Addresses.Swarm", `["/ip4/` + h.Addr.String() + `/tcp/` + kuboSwarmPort + `"]`},
		{"config", "Addresses.API", kuboAPI},
		{"config", "--json", "Addresses.Gateway", "[]"},
		{"config", "--json", "Bootstrap", "[]"},
		{"config", "Routing.Type", "none"},
	} {
		if _, err := k.run(ctx, c...); err != nil {
			return nil, err
		}
	}
	// Newer kubo fetches network defaults at start; nothing is reachable
	// from the lab anyway, so turn it off where the key exists.
	_, _ = k.run(ctx, "config", "--json", "AutoConf.Enabled", "false")
	logf, err := os.Create(repo + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	k.daemon = k.cmd(context.Background(), "daemon")
	k.daemon.Stdout, k.daemon.Stderr = logf, logf
	if err := k.daemon.Start(); err != nil {
		return nil, err
	}
	k.done = make(chan struct{})
	go func() { _ = k.daemon.Wait(); close(k.done) }()
	deadline := time.Now().Add(kuboReadyTimeout)
	for {
		// `ipfs id` answers offline too: wait for the daemon's own word.
		if b, _ := os.ReadFile(repo + ".log"); strings.Contains(string(b), "Daemon is ready") {
			return k, nil
		}
		select {
		case <-k.done:
			return nil, fmt.Errorf("kubo daemon in %s exited:\n%s", h.NS, tail(repo+".log"))
		default:
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("kubo daemon in %s not ready after %v:\n%s", h.NS, kuboReadyTimeout, tail(repo+".log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (k *kubo) stop() {
	if k.daemon == nil || k.daemon.Process == nil {
		return
	}
	killGroup(k.daemon)
	<-k.done
}

// kuboRuns measures `ipfs cat` of file (size bytes, SHA-256 sum) from A's
// daemon to B's, runs times; it returns per run the rate and the CPU time of
// both daemons (A sends, B receives and stores; the `ipfs cat` client, like
// Shoal's reader, is not counted).
func kuboRuns(ctx context.Context, env Env, a, b *Host, file, sum string, size int64, runs int) ([]transferRun, error) {
	dir := filepath.Join(env.WorkDir, "kubo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ka, err := startKubo(ctx, env.IPFSBin, filepath.Join(dir, "a"), a)
	if err != nil {
		return nil, err
	}
	defer ka.stop()
	kb, err := startKubo(ctx, env.IPFSBin, filepath.Join(dir, "b"), b)
	if err != nil {
		return nil, err
	}
	defer kb.stop()
	cid, err := ka.run(ctx, "add", "-Q", "--pin", file)
	if err != nil {
		return nil, err
	}
	idA, err := ka.run(ctx, "id", "-f", "<id>")
	if err != nil {
		return nil, err
	}
	if _, err := kb.run(ctx, "swarm", "connect", "/ip4/"+a.Addr.String()+"/tcp/"+kuboSwarmPort+"/p2p/"+idA); err != nil {
		return nil, err
	}
	var out []transferRun
	for run := range runs {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		c := kb.cmd(cctx, "cat", cid)
		h := sha256.New()
		cw := &countWriter{w: h}
		c.Stdout = cw
		var stderr strings.Builder
		c.Stderr = &stderr
		meter := cpucost.Start(ka.daemon.Process.Pid, kb.daemon.Process.Pid)
		start := time.Now()
		err := c.Run()
		sec := time.Since(start).Seconds()
		cpu, cpuErr := meter.Stop()
		cancel()
		if err != nil {
			return out, fmt.Errorf("run %d: ipfs cat: %v: %s", run+1, err, stderr.String())
		}
		if cw.n != size || hex.EncodeToString(h.Sum(nil)) != sum {
			return out, fmt.Errorf("run %d: ipfs cat returned %d bytes, wrong content or size", run+1, cw.n)
		}
		if cpuErr != nil {
			return out, fmt.Errorf("run %d: %w", run+1, cpuErr)
		}
		out = append(out, transferRun{MBps: float64(size) / sec / 1e6, Bytes: size, SenderCPU: cpu[0], ReceiverCPU: cpu[1]})
		if _, err := kb.run(ctx, "repo", "gc", "-q"); err != nil {
			return out, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no kubo run")
	}
	return out, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// KuboVersion is the kubo release S3 compares against (a recent release
// that builds with this module's Go).
const KuboVersion = "v0.38.1"

// BuildKubo builds kubo's ipfs command into out, in a scratch module under
// dir (it is a separate program, not a dependency of Shoal). Its pebble
// dependency's swiss map refuses Go releases newer than it was tested with
// unless built with the untested_go_version tag, whose runtime linknames
// the linker must then be told to allow.
func BuildKubo(ctx context.Context, dir, out string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	run := func(args ...string) error {
		c := exec.CommandContext(ctx, "go", args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, b)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		if err := run("mod", "init", "shoal-kubo-build"); err != nil {
			return err
		}
	}
	if err := run("get", "github.com/ipfs/kubo/cmd/ipfs@"+KuboVersion); err != nil {
		return err
	}
	return run("build", "-tags", "untested_go_version", "-ldflags=-checklinkname=0", "-o", out, "github.com/ipfs/kubo/cmd/ipfs")
}
