package testenv

// This file owns the shoal-process harness: it builds bin/shoal (or uses
// $SHOAL_BIN), starts real `shoal node` processes on loopback ports, parses
// the listening addresses they log, waits for /readyz, and stops, kills and
// restarts them.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	// nodeReadyTimeout bounds start-up: opening Badger and binding ports
	// takes well under a second; the rest is margin for a loaded CI box.
	nodeReadyTimeout = 60 * time.Second
	// nodeStopTimeout bounds a graceful stop (the node's own shutdown
	// budget is 10 s).
	nodeStopTimeout = 20 * time.Second
)

// NodeOptions configure a shoal node process. Empty fields take the node's
// defaults, except the listeners (always 127.0.0.1:0) and the data
// directory (a fresh t.TempDir()).
type NodeOptions struct {
	// Origin is "s3" (then S3 must be set) or "file:///abs/dir".
	Origin string
	S3     *S3
	// DataDir is reused across restarts; empty means a new temp dir.
	DataDir string
	// Sizes in the node's syntax ("64MiB", "1MiB", ...).
	MemCache, DiskCache, ChunkSize string
	MetadataTTL                    time.Duration
	Immutable                      []string
	// AccessKey/SecretKey configure gateway credentials (SigV4 required);
	// empty means anonymous access on loopback.
	AccessKey, SecretKey string
	// SwarmKeyFile turns P2P on: the node joins the cluster of this key
	// (see NewSwarmKey). P2PListen then defaults to /ip4/127.0.0.1/tcp/0.
	SwarmKeyFile string
	P2PListen    []string
	// Bootstrap lists peers to join (--bootstrap).
	Bootstrap []string
	// Membership is "auth" or "pnet" (empty: the node's default).
	Membership string
	// ProvideValidity and ReprovideInterval shorten the DHT's announcement
	// cycle for tests (zero: the node's defaults).
	ProvideValidity, ReprovideInterval time.Duration
	// ExtraArgs are appended to `shoal node`.
	ExtraArgs []string
	// Env holds extra KEY=VALUE environment entries.
	Env []string
	// NoFileLimit, when not zero, is the process's limit on open file
	// descriptors (soft and hard), set by the shell that execs the node.
	NoFileLimit int
}

// Node is a running `shoal node` process.
type Node struct {
	Opts NodeOptions
	// Addresses of the current process.
	GatewayAddr string // host:port
	AdminAddr   string // host:port
	Endpoint    string // http://GatewayAddr
	// P2P identity and addresses (with /p2p/<PeerID>) when P2P is on.
	PeerID   string
	P2PAddrs []string

	t   testing.TB
	bin string
	log *tailBuffer

	mu   sync.Mutex // guards cmd, done, exitErr
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	// exitErr is cmd.Wait's result once done is closed.
	exitErr error
}

// StartNode starts a shoal node and waits until it is ready. The process is
// stopped (SIGTERM, then SIGKILL) when the test ends, and a graceful stop
// that fails is a test error; its log goes to the test log on failure.
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Origin == "" {
		opts.Origin = "s3"
	}
	if opts.Origin == "s3" && opts.S3 == nil {
		t.Fatal("testenv: NodeOptions.Origin s3 needs NodeOptions.S3")
	}
	n := &Node{Opts: opts, t: t, bin: ShoalBinary(t), log: &tailBuffer{max: logTail}}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("testenv: shoal node did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("testenv: shoal node log (last %d bytes):\n%s", logTail, n.log.String())
		}
	})
	n.start(t, "127.0.0.1:0", "127.0.0.1:0")
	return n
}

// p2pListen is where the P2P side listens: the configured addresses on the
// first start, the addresses it bound before on a restart (so peers that
// knew it find it again).
func (n *Node) p2pListen() []string {
	if n.Opts.SwarmKeyFile == "" && len(n.Opts.P2PListen) == 0 {
		return nil
	}
	if len(n.P2PAddrs) > 0 {
		var out []string
		for _, a := range n.P2PAddrs {
			base, _, _ := strings.Cut(a, "/p2p/")
			out = append(out, base)
		}
		return out
	}
	if len(n.Opts.P2PListen) > 0 {
		return n.Opts.P2PListen
	}
	return []string{"/ip4/127.0.0.1/tcp/0"}
}

func (n *Node) args(gw, adm string) []string {
	o := n.Opts
	a := []string{"node",
		"--data-dir", o.DataDir,
		"--origin", o.Origin,
		"--gateway-listen", gw,
		"--admin-listen", adm,
		"--log-level", "debug",
		"--log-format", "text",
	}
	if o.Origin == "s3" {
		a = append(a, "--s3-endpoint", o.S3.Endpoint, "--s3-region", o.S3.Region, "--s3-path-style")
	}
	add := func(flag, v string) {
		if v != "" {
			a = append(a, flag, v)
		}
	}
	add("--mem-cache", o.MemCache)
	add("--disk-cache", o.DiskCache)
	add("--chunk-size", o.ChunkSize)
	if o.MetadataTTL != 0 {
		add("--metadata-ttl", o.MetadataTTL.String())
	}
	for _, p := range o.Immutable {
		add("--immutable", p)
	}
	add("--gateway-access-key", o.AccessKey)
	add("--gateway-secret-key", o.SecretKey)
	for _, l := range n.p2pListen() {
		add("--p2p-listen", l)
	}
	add("--swarm-key", o.SwarmKeyFile)
	for _, b := range o.Bootstrap {
		add("--bootstrap", b)
	}
	add("--p2p-membership", o.Membership)
	if o.ProvideValidity != 0 {
		add("--provide-validity", o.ProvideValidity.String())
	}
	if o.ReprovideInterval != 0 {
		add("--reprovide-interval", o.ReprovideInterval.String())
	}
	// The random spot check (1% of the chunks learned from peers re-read
	// from the origin) is off unless a test asks for it: tests count
	// origin requests exactly.
	if !slices.ContainsFunc(o.ExtraArgs, func(s string) bool { return strings.HasPrefix(s, "--spot-check-rate") }) {
		a = append(a, "--spot-check-rate", "0")
	}
	return append(a, o.ExtraArgs...)
}

// env is the process environment: the origin's credentials through the
// standard AWS variables, and nothing from the developer's AWS profile.
func (n *Node) env() []string {
	var e []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "SHOAL_") {
			continue
		}
		e = append(e, kv)
	}
	e = append(e,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
	)
	if s := n.Opts.S3; s != nil {
		e = append(e, "AWS_ACCESS_KEY_ID="+s.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.SecretKey, "AWS_REGION="+s.Region)
	}
	return append(e, n.Opts.Env...)
}

var (
	gatewayLine = regexp.MustCompile(`msg="gateway listening" addr=(\S+)`)
	adminLine   = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)
	p2pLine     = regexp.MustCompile(`msg="p2p listening" peer=(\S+) addrs=(\S+)`)
)

// startLines is what a starting node logs about where it listens.
type startLines struct {
	gateway, admin string
	peer           string
	p2pAddrs       []string
}

func (n *Node) start(t testing.TB, gw, adm string) {
	t.Helper()
	cmd := exec.Command(n.bin, n.args(gw, adm)...)
	if l := n.Opts.NoFileLimit; l > 0 {
		// The shell sets the limit and execs the node: same process, so
		// signals and the process group stay as they are.
		cmd = exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, l), n.bin}, n.args(gw, adm)...)...)
	}
	cmd.Env = n.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cmd.Stdout = n.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start shoal: %v", err)
	}
	done := make(chan struct{})
	addrs := make(chan startLines, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		var sl startLines
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			n.log.Write([]byte(line + "\n"))
			// The p2p line comes before the gateway and admin lines.
			if m := p2pLine.FindStringSubmatch(line); m != nil {
				sl.peer, sl.p2pAddrs = m[1], strings.Split(m[2], ",")
			}
			if m := gatewayLine.FindStringSubmatch(line); m != nil {
				sl.gateway = m[1]
			}
			if m := adminLine.FindStringSubmatch(line); m != nil {
				sl.admin = m[1]
			}
			if sl.gateway != "" && sl.admin != "" {
				select {
				case addrs <- sl:
				default:
				}
				sl = startLines{}
			}
		}
		io.Copy(n.log, stderr) // after an over-long line
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	deadline := time.NewTimer(nodeReadyTimeout)
	defer deadline.Stop()
	select {
	case a := <-addrs:
		n.GatewayAddr, n.AdminAddr = a.gateway, a.admin
		n.Endpoint = "http://" + a.gateway
		n.PeerID, n.P2PAddrs = a.peer, a.p2pAddrs
		if n.p2pListen() != nil && n.PeerID == "" {
			n.Kill()
			t.Fatalf("testenv: shoal node with P2P on logged no \"p2p listening\" line\n%s", n.log.String())
		}
	case <-done:
		t.Fatalf("testenv: shoal node exited during start-up: %v\n%s", n.exitError(), n.log.String())
	case <-deadline.C:
		n.Kill()
		t.Fatalf("testenv: shoal node did not log its addresses within %v\n%s", nodeReadyTimeout, n.log.String())
	}
	for {
		if n.ready() {
			return
		}
		select {
		case <-done:
			t.Fatalf("testenv: shoal node exited before ready: %v\n%s", n.exitError(), n.log.String())
		case <-deadline.C:
			n.Kill()
			t.Fatalf("testenv: shoal node not ready within %v\n%s", nodeReadyTimeout, n.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (n *Node) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.AdminAddr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (n *Node) exitError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// Log returns the tail of the node's log.
func (n *Node) Log() string { return n.log.String() }

// PID is the process ID of the current node process (0 before start). With
// NoFileLimit the shell execs the node, so the PID is the node's too.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the process is still alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to the node's process group and waits for it to exit.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Freeze stops the node's processes with SIGSTOP: its sockets stay open but
// nothing answers, as with a hung peer or one behind a network partition.
// Thaw resumes it; cleanup kills a frozen node as any other.
func (n *Node) Freeze() { n.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen node with SIGCONT.
func (n *Node) Thaw() { n.signal(syscall.SIGCONT) }

func (n *Node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// Stop sends SIGTERM and waits for the process to exit; it returns an error
// if the node exited non-zero or had to be killed. Stopping a stopped node
// is a no-op.
func (n *Node) Stop() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil // already gone (killed or exited): reported elsewhere
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(nodeStopTimeout):
		n.Kill()
		return fmt.Errorf("no exit within %v of SIGTERM; killed", nodeStopTimeout)
	}
	if err := n.exitError(); err != nil {
		return fmt.Errorf("exit after SIGTERM: %w", err)
	}
	return nil
}

// Restart stops the node (if running) and starts it again on the same data
// directory and the same addresses.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	if err := n.Stop(); err != nil {
		t.Fatalf("testenv: restart: %v", err)
	}
	n.start(t, n.GatewayAddr, n.AdminAddr)
}

// StartAgain starts a node that was killed or stopped, on the same data
// directory and addresses.
func (n *Node) StartAgain(t testing.TB) {
	t.Helper()
	if n.Running() {
		t.Fatal("testenv: StartAgain on a running node")
	}
	n.start(t, n.GatewayAddr, n.AdminAddr)
}

// Client returns an aws-sdk-go-v2 client for the gateway, path-style,
// signed with the node's gateway keys or anonymous when it has none. It
// does not retry, so tests see every answer as sent.
func (n *Node) Client(t testing.TB) *s3.Client {
	t.Helper()
	return n.ClientWithKeys(t, n.Opts.AccessKey, n.Opts.SecretKey)
}

// ClientWithKeys is Client with the given keys ("" = anonymous).
func (n *Node) ClientWithKeys(t testing.TB, accessKey, secretKey string) *s3.Client {
	t.Helper()
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if accessKey != "" {
		creds = credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	}
	endpoint := n.Endpoint
	return s3.New(s3.Options{
		Region:           "us-east-1",
		BaseEndpoint:     &endpoint, // Restart keeps the address
		UsePathStyle:     true,
		Credentials:      creds,
		RetryMaxAttempts: 1,
	})
}

// Status returns the node's /v1/status JSON decoded into a map.
func (n *Node) Status(t testing.TB) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr + "/v1/status")
	if err != nil {
		t.Fatalf("testenv: status: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("testenv: status: %s %v", resp.Status, err)
	}
	return m
}

// CLI runs `shoal args...` with SHOAL_ADMIN pointing at this node and
// returns its stdout, stderr and exit code.
func (n *Node) CLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return RunShoal(t, []string{"SHOAL_ADMIN=" + n.AdminAddr}, args...)
}

// RunShoal runs the shoal binary to completion (bounded to a minute).
func RunShoal(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ShoalBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("testenv: run shoal %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// --- locating / building the shoal binary ---

var (
	shoalOnce sync.Once
	shoalPath string
	shoalErr  error
)

// ShoalBinary returns $SHOAL_BIN, or builds ./cmd/shoal once per test
// binary into <module root>/bin/shoal-test (always rebuilt, so it is never
// stale; the Go build cache makes that quick).
func ShoalBinary(t testing.TB) string {
	t.Helper()
	shoalOnce.Do(func() { shoalPath, shoalErr = findOrBuildShoal() })
	if shoalErr != nil {
		t.Fatalf("testenv: no shoal binary (set SHOAL_BIN or run `make build`): %v", shoalErr)
	}
	return shoalPath
}

func findOrBuildShoal() (string, error) {
	if p := os.Getenv("SHOAL_BIN"); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("SHOAL_BIN=%s is not an executable file", p)
		}
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(binDir, ".shoal-test.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	bin := filepath.Join(binDir, "shoal-test")
	tmp := bin + ".tmp"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/shoal")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build ./cmd/shoal: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}
