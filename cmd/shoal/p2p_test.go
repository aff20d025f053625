package main

import (
	"strings"
	"testing"

	"github.com/shoal-cache/shoal/routing"
)

func TestSwarmKeyCommand(t *testing.T) {
	code, out, errs := runArgs(t, nil, "swarm-key")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := routing.ParseSwarmKey([]byte(out)); err != nil {
		t.Fatalf("output does not parse as a swarm key: %v\n%s", err, out)
	}
	if code, _, errs := runArgs(t, nil, "swarm-key", "extra"); code != exitUsage || !strings.Contains(errs, "no arguments") {
		t.Fatalf("extra argument: exit %d, %s", code, errs)
	}
}

func TestIDCommand(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runArgs(t, nil, "id", "--data-dir", dir)
	if code != exitOK || !strings.HasPrefix(out, "12D3Koo") {
		t.Fatalf("exit %d, out %q, err %s", code, out, errs)
	}
	// The environment names the same directory: same identity.
	_, again, _ := runArgs(t, map[string]string{"SHOAL_DATA_DIR": dir}, "id")
	if again != out {
		t.Fatalf("second run printed %q, first %q", again, out)
	}
	if code, _, _ := runArgs(t, nil, "id", "--data-dir", dir, "x"); code != exitUsage {
		t.Fatalf("extra argument: exit %d", code)
	}
	if code, out, _ := runArgs(t, nil, "id", "--help"); code != exitOK || !strings.Contains(out, "--data-dir") {
		t.Fatalf("help: exit %d, %s", code, out)
	}
}

func TestNodeRefusesP2PWithoutUsableKey(t *testing.T) {
	base := []string{"node", "--origin", "file://" + t.TempDir(), "--data-dir", t.TempDir(),
		"--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"}
	if code, _, errs := runArgs(t, nil, base...); code != exitUsage || !strings.Contains(errs, "swarm-key") {
		t.Fatalf("no key: exit %d, %s", code, errs)
	}
	code, _, errs := runArgs(t, nil, append(base, "--swarm-key", t.TempDir()+"/missing.key")...)
	if code != exitUsage || !strings.Contains(errs, "swarm key") {
		t.Fatalf("missing key file: exit %d, %s", code, errs)
	}
}

func TestBootstrapDNSServerOption(t *testing.T) {
	p2p := []string{"--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--swarm-key", "/k", "--bootstrap", "/dns4/shoal-headless.test/tcp/4001"}
	code, out, errs := runArgs(t, nil, append([]string{"config", "--bootstrap-dns-server", "10.96.0.10:53"}, p2p...)...)
	if code != exitOK || !strings.Contains(out, "bootstrap-dns-server: 10.96.0.10:53") {
		t.Fatalf("config: exit %d, stdout %s, stderr %s", code, out, errs)
	}
	code, _, errs = runArgs(t, map[string]string{"SHOAL_BOOTSTRAP_DNS_SERVER": "10.96.0.10"}, append([]string{"node"}, p2p...)...)
	if code != exitUsage || !strings.Contains(errs, "bootstrap-dns-server") {
		t.Fatalf("bad server from the environment: exit %d, stderr %s", code, errs)
	}
	if code, out, _ := runArgs(t, nil, "node", "--help"); code != exitOK || !strings.Contains(out, "SHOAL_BOOTSTRAP_DNS_SERVER") {
		t.Fatalf("node --help: exit %d, lacks the option:\n%s", code, out)
	}
}
