package swarm

// This file owns the lab: a bridge in a namespace of its own, one namespace
// per host with a veth pair into the bridge, addresses in 10.77.<id>.0/24,
// and a tbf qdisc at rate B on both ends of every veth pair, so each host
// has a symmetric link of rate B to the others.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// nsPrefix starts the name of every namespace a lab creates; with the
	// lab id it is unique to one lab ("shs7-3", "shs7-br").
	nsPrefix = "shs"
	// lockDir holds one lock file per lab id, held (flock) while the lab
	// lives; a lab whose lock is free belongs to a crashed run.
	lockDir = "/run/shoal-swarm"
	// maxLabID bounds ids to what fits the third octet of 10.77.<id>.0/24.
	maxLabID = 250
	// MaxHosts: host i gets 10.77.<id>.<i+1>; .255 is broadcast.
	MaxHosts = 253
	// tbfLatency bounds the time a packet may wait in a tbf queue (the
	// queue's length in time): long enough to absorb TCP bursts of many
	// flows at a few hundred Mbit/s, short enough not to bloat RTTs.
	tbfLatency = "50ms"
	// minBurst: a tbf bucket must hold at least a few full-size frames,
	// or the rate is not reached.
	minBurst = 32 << 10
	// cmdTimeout bounds each `ip`/`tc` command.
	cmdTimeout = 30 * time.Second
)

// ErrLab: the lab could not be built (not root, no iproute2, ...).
var ErrLab = errors.New("swarm: lab")

// LabConfig describes a lab.
type LabConfig struct {
	// Hosts is the number of host namespaces (1..MaxHosts).
	Hosts int
	// RateBits is the link rate in bits per second; 0 leaves links unshaped.
	RateBits int64
}

// Validate checks the config.
func (c LabConfig) Validate() error {
	if c.Hosts < 1 || c.Hosts > MaxHosts {
		return fmt.Errorf("%w: %d hosts, want 1..%d", ErrLab, c.Hosts, MaxHosts)
	}
	if c.RateBits < 0 {
		return fmt.Errorf("%w: negative rate", ErrLab)
	}
	if c.RateBits != 0 && c.RateBits < 1_000_000 {
		return fmt.Errorf("%w: rate %d bit/s is below 1 Mbit/s", ErrLab, c.RateBits)
	}
	return nil
}

// Host is one namespace of the lab.
type Host struct {
	NS   string     // namespace name, usable with `ip netns exec`
	Addr netip.Addr // address on the lab's bridge
	Dev  string     // the namespace's interface ("eth0")
	Peer string     // the bridge-side veth in the bridge namespace
}

// Lab is a built lab; Close removes it.
type Lab struct {
	ID     int
	Bridge string // bridge device, in namespace BridgeNS
	// BridgeNS is the namespace that holds the bridge and the bridge-side
	// veths.
	BridgeNS string
	Hosts    []*Host
	Config   LabConfig

	log  *slog.Logger
	lock *os.File
}

// TBFBurst is the bucket size used for rate bits/s: 4 ms of traffic (one
// tick at HZ=250), at least minBurst.
func TBFBurst(rateBits int64) int64 {
	return max(rateBits/8/250, minBurst)
}

// tbfArgs is the tc command that shapes dev to rate bits/s.
func tbfArgs(ns, dev string, rateBits int64) []string {
	return []string{"tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", strconv.FormatInt(rateBits, 10) + "bit",
		"burst", strconv.FormatInt(TBFBurst(rateBits), 10),
		"latency", tbfLatency}
}

// HostAddr is host i's address in lab id.
func HostAddr(id, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 77, byte(id), byte(i + 1)})
}

// NewLab builds a lab of cfg.Hosts namespaces. It needs root and iproute2.
// On error, whatever was built is removed.
func NewLab(ctx context.Context, cfg LabConfig, log *slog.Logger) (_ *Lab, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root", ErrLab)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("%w: no `ip` (install iproute2): %v", ErrLab, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CleanupStale(ctx, log); err != nil {
		log.Warn("cleanup of stale labs", "err", err)
	}
	id, lock, err := claimID()
	if err != nil {
		return nil, err
	}
	l := &Lab{ID: id, Bridge: fmt.Sprintf("shb%d", id), BridgeNS: fmt.Sprintf("%s%d-br", nsPrefix, id),
		Config: cfg, log: log.With("component", "lab", "lab", id), lock: lock}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	run := func(args ...string) error { return runCmd(ctx, args...) }
	if err := run("ip", "netns", "add", l.BridgeNS); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "-n", l.BridgeNS, "link", "set", "lo", "up"},
		{"ip", "-n", l.BridgeNS, "link", "add", l.Bridge, "type", "bridge"},
		{"ip", "-n", l.BridgeNS, "link", "set", l.Bridge, "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Hosts {
		h := &Host{NS: fmt.Sprintf("%s%d-%d", nsPrefix, id, i), Addr: HostAddr(id, i), Dev: "eth0",
			Peer: fmt.Sprintf("shv%d-%d", id, i)}
		if err := run("ip", "netns", "add", h.NS); err != nil {
			return nil, err
		}
		l.Hosts = append(l.Hosts, h)
		steps := [][]string{
			{"ip", "-n", h.NS, "link", "set", "lo", "up"},
			{"ip", "link", "add", h.Dev, "netns", h.NS, "type", "veth", "peer", "name", h.Peer, "netns", l.BridgeNS},
			{"ip", "-n", h.NS, "addr", "add", h.Addr.String() + "/24", "dev", h.Dev},
			{"ip", "-n", h.NS, "link", "set", h.Dev, "up"},
			{"ip", "-n", l.BridgeNS, "link", "set", h.Peer, "master", l.Bridge},
			{"ip", "-n", l.BridgeNS, "link", "set", h.Peer, "up"},
		}
		if cfg.RateBits > 0 {
			steps = append(steps, tbfArgs(h.NS, h.Dev, cfg.RateBits), tbfArgs(l.BridgeNS, h.Peer, cfg.RateBits))
		}
		for _, s := range steps {
			if err := run(s...); err != nil {
				return nil, err
			}
		}
		if err := l.writeEtc(h); err != nil {
			return nil, err
		}
	}
	l.log.Info("lab up", "hosts", cfg.Hosts, "rate_bits", cfg.RateBits, "subnet", fmt.Sprintf("10.77.%d.0/24", id))
	return l, nil
}

// SwarmName is the host name that resolves, inside every namespace of the
// lab, to all hosts but the origin (host 0): nodes bootstrap through it as
// they would through a headless service's DNS name.
const SwarmName = "shoal-swarm"

// writeEtc gives the namespace its own /etc/hosts and resolv.conf (`ip
// netns exec` bind-mounts /etc/netns/<ns>/*): SwarmName resolves to the
// nodes, and DNS goes nowhere, so lookups fail fast instead of timing out.
func (l *Lab) writeEtc(h *Host) error {
	dir := filepath.Join("/etc/netns", h.NS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrLab, err)
	}
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for i := 1; i < l.Config.Hosts; i++ {
		fmt.Fprintf(&b, "%s %s\n", HostAddr(l.ID, i), SwarmName)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrLab, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrLab, err)
	}
	return nil
}

// Command returns a command that runs in host h's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	// Pdeathsig: if the harness dies, its processes in the lab die too
	// (the namespaces themselves are removed by the next run).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Close kills every process left in the lab's namespaces and removes them,
// their /etc/netns entries and the lock. Safe to call more than once.
func (l *Lab) Close() error {
	if l == nil || l.lock == nil {
		return nil
	}
	err := removeLab(l.ID, l.log)
	l.lock.Close()
	os.Remove(l.lock.Name())
	l.lock = nil
	return err
}

// removeLab removes every namespace whose name starts with shs<id>-.
func removeLab(id int, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names, err := listNetns(ctx)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("%s%d-", nsPrefix, id)
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		killNetnsProcs(ctx, n)
		if err := runCmd(ctx, "ip", "netns", "del", n); err != nil {
			errs = append(errs, err)
		}
		os.RemoveAll(filepath.Join("/etc/netns", n))
	}
	if len(errs) == 0 {
		log.Info("lab removed")
	}
	return errors.Join(errs...)
}

// killNetnsProcs SIGKILLs every process in namespace n and waits briefly
// for them to go.
func killNetnsProcs(ctx context.Context, n string) {
	for range 50 {
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", n).Output()
		if err != nil {
			return
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var labNS = regexp.MustCompile(`^` + nsPrefix + `(\d+)-`)

// CleanupStale removes labs whose owner is gone: namespaces named
// shs<id>-* whose lock file is not held by a live process.
func CleanupStale(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	names, err := listNetns(ctx)
	if err != nil {
		return err
	}
	seen := map[int]bool{}
	var errs []error
	for _, n := range names {
		m := labNS.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		if seen[id] {
			continue
		}
		seen[id] = true
		f, ok := tryLock(id)
		if !ok {
			continue // a live run owns it
		}
		log.Warn("removing a lab left by a crashed run", "lab", id)
		errs = append(errs, removeLab(id, log.With("lab", id)))
		f.Close()
		os.Remove(f.Name())
	}
	return errors.Join(errs...)
}

// claimID takes the lowest free lab id and holds its lock.
func claimID() (int, *os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrLab, err)
	}
	names, _ := listNetns(context.Background())
	used := map[int]bool{}
	for _, n := range names {
		if m := labNS.FindStringSubmatch(n); m != nil {
			id, _ := strconv.Atoi(m[1])
			used[id] = true
		}
	}
	for id := 1; id <= maxLabID; id++ {
		if used[id] {
			continue
		}
		if f, ok := tryLock(id); ok {
			return id, f, nil
		}
	}
	return 0, nil, fmt.Errorf("%w: no free lab id", ErrLab)
}

// tryLock takes lab id's lock without waiting.
func tryLock(id int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(id)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	_ = f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, true
}

// listNetns lists the names of the namespaces under /run/netns.
func listNetns(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLab, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// runCmd runs one command, bounded in time; its output goes in the error.
func runCmd(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrLab, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
