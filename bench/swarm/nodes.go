package swarm

// This file owns the `shoal node` processes of a lab: one per host
// namespace, its gateway and admin API on that namespace's loopback, its
// P2P side (when the binary has one) on the host's lab address, joined
// through SwarmName, and its origin the lab's counting proxy.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// Ports inside each node namespace (every namespace has its own).
	gatewayAddr = "127.0.0.1:7070"
	adminAddr   = "127.0.0.1:7071"
	p2pPort     = "4001"
	// nodeReadyTimeout: opening the stores takes well under a second; the
	// rest is margin for 32 nodes starting on 2 cores.
	nodeReadyTimeout = 90 * time.Second
	// nodeStopTimeout: the node's own shutdown budget is 10 s.
	nodeStopTimeout = 20 * time.Second
)

// NodeConfig is how the lab starts a node.
type NodeConfig struct {
	Bin     string // shoal binary
	DataDir string // the node's --data-dir (created)
	Origin  *Origin
	// P2P turns the cluster on: --p2p-listen on the host's lab address,
	// --swarm-key SwarmKeyFile, --bootstrap /dns4/SwarmName/tcp/4001.
	P2P          bool
	SwarmKeyFile string
	// MemCache, ChunkSize: node flags; empty keeps the node's defaults.
	MemCache, ChunkSize string
	ExtraArgs           []string
}

// Node is a running `shoal node` in a lab host.
type Node struct {
	Host *Host
	// GatewayURL is the gateway's URL inside the host's namespace.
	GatewayURL string
	LogPath    string

	cmd  *exec.Cmd
	done chan struct{}
}

// SupportsP2P reports whether the shoal binary has the cluster flags.
func SupportsP2P(ctx context.Context, bin string) (bool, error) {
	out, err := exec.CommandContext(ctx, bin, "node", "--help").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("swarm: %s node --help: %w: %s", bin, err, out)
	}
	return strings.Contains(string(out), "--p2p-listen") && strings.Contains(string(out), "--swarm-key"), nil
}

func (c NodeConfig) args(h *Host) []string {
	a := []string{"node",
		"--data-dir", c.DataDir,
		"--origin", "s3",
		"--s3-endpoint", c.Origin.Endpoint,
		"--s3-region", c.Origin.Region,
		"--s3-path-style",
		"--gateway-listen", gatewayAddr,
		"--admin-listen", adminAddr,
		"--log-level", "info",
		"--log-format", "text",
	}
	if c.MemCache != "" {
		a = append(a, "--mem-cache", c.MemCache)
	}
	if c.ChunkSize != "" {
		a = append(a, "--chunk-size", c.ChunkSize)
	}
	if c.P2P {
		a = append(a,
			"--p2p-listen", "/ip4/"+h.Addr.String()+"/tcp/"+p2pPort,
			"--swarm-key", c.SwarmKeyFile,
			"--bootstrap", "/dns4/"+SwarmName+"/tcp/"+p2pPort)
	}
	return append(a, c.ExtraArgs...)
}

// nodeEnv is the process environment: the origin's credentials through the
// standard AWS variables, nothing from a developer's AWS or Shoal setup.
func nodeEnv(o *Origin) []string {
	var e []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "SHOAL_") {
			continue
		}
		e = append(e, kv)
	}
	return append(e,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_ACCESS_KEY_ID="+o.AccessKey, "AWS_SECRET_ACCESS_KEY="+o.SecretKey, "AWS_REGION="+o.Region)
}

// StartNode starts a node in h's namespace and waits for /readyz.
func StartNode(ctx context.Context, h *Host, c NodeConfig) (_ *Node, err error) {
	if c.Origin == nil || c.Bin == "" || c.DataDir == "" {
		return nil, errors.New("swarm: NodeConfig needs Bin, DataDir and Origin")
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	n := &Node{Host: h, GatewayURL: "http://" + gatewayAddr, LogPath: c.DataDir + ".log", done: make(chan struct{})}
	logf, err := os.Create(n.LogPath)
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	defer logf.Close()
	n.cmd = h.Command(context.Background(), c.Bin, c.args(h)...)
	n.cmd.Env = nodeEnv(c.Origin)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("swarm: start node in %s: %w", h.NS, err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	cl := n.adminClient()
	defer cl.CloseIdleConnections()
	deadline := time.Now().Add(nodeReadyTimeout)
	for {
		select {
		case <-n.done:
			return nil, fmt.Errorf("swarm: node in %s exited during start-up:\n%s", h.NS, tail(n.LogPath))
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		if resp, err := cl.Get("http://" + adminAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("swarm: node in %s not ready after %v:\n%s", h.NS, nodeReadyTimeout, tail(n.LogPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *Node) adminClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.Host.DialContext(ctx, network, addr)
		}}}
}

// Status returns the node's /v1/status.
func (n *Node) Status(ctx context.Context) (map[string]any, error) {
	cl := n.adminClient()
	defer cl.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/v1/status", nil)
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("swarm: status of %s: %w", n.Host.NS, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("swarm: status of %s: %w", n.Host.NS, err)
	}
	return m, nil
}

// ConnectedPeers is the length of the first "ConnectedPeers" list found in
// the node's status, or -1 when the status has none.
func (n *Node) ConnectedPeers(ctx context.Context) int {
	m, err := n.Status(ctx)
	if err != nil {
		return -1
	}
	return findList(m, "ConnectedPeers")
}

func findList(v any, key string) int {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if strings.EqualFold(k, key) {
				if l, ok := x.([]any); ok {
					return len(l)
				}
				if x == nil {
					return 0
				}
			}
		}
		for _, x := range t {
			if n := findList(x, key); n >= 0 {
				return n
			}
		}
	case []any:
		for _, x := range t {
			if n := findList(x, key); n >= 0 {
				return n
			}
		}
	}
	return -1
}

// PID is the node process's ID (ip netns exec execs the node, so it is the
// node's own), 0 if it never started.
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Profile takes a CPU profile of the node over d (the node runs with
// --pprof) and writes it to path.
func (n *Node) Profile(ctx context.Context, d time.Duration, path string) error {
	cl := n.adminClient()
	cl.Timeout = d + 30*time.Second
	defer cl.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, max(1, int(d.Seconds()+0.5))), nil)
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("swarm: profile of %s: %w", n.Host.NS, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("swarm: profile of %s: %s", n.Host.NS, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("swarm: profile of %s: %w", n.Host.NS, err)
	}
	return f.Close()
}

// Close stops the node: SIGTERM, then SIGKILL after nodeStopTimeout.
func (n *Node) Close() error {
	if n.cmd == nil || n.cmd.Process == nil {
		return nil
	}
	select {
	case <-n.done:
		return nil
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return nil
	case <-time.After(nodeStopTimeout):
		killGroup(n.cmd)
		<-n.done
		return fmt.Errorf("swarm: node in %s did not stop within %v of SIGTERM; killed", n.Host.NS, nodeStopTimeout)
	}
}

// killGroup SIGKILLs the process group of a command started with Setpgid.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// tail returns the last few KiB of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// binaryPath finds a tool: $env if set, else <root>/bin/<name>.
func binaryPath(root, env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("swarm: %s=%s is not an executable file", env, p)
		}
		return p, nil
	}
	p := filepath.Join(root, "bin", name)
	if !isExecutable(p) {
		return "", fmt.Errorf("swarm: no %s (set %s or build %s)", name, env, p)
	}
	return p, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
