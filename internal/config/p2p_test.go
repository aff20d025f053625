package config

import (
	"strings"
	"testing"
)

const testPeer = "12D3KooWGRUVh7JEoJrmTdhnGBZBp1ffnGaW6WbdXpyWeNZeN8NC"

func TestP2POptions(t *testing.T) {
	p2p := []string{"--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--swarm-key", "/k"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string // error substring; "" = valid
	}{
		{name: "off by default"},
		{name: "on with key", args: p2p},
		{name: "no key", args: []string{"--p2p-listen", "/ip4/0.0.0.0/tcp/4001"}, want: "--swarm-key: required"},
		{name: "bad listen", args: []string{"--p2p-listen", "0.0.0.0:4001", "--swarm-key", "/k"}, want: "p2p-listen"},
		{name: "bootstrap without p2p", args: []string{"--bootstrap", "/dns4/x/tcp/4001"}, want: "needs --p2p-listen"},
		{name: "mdns without p2p", args: []string{"--mdns"}, want: "needs --p2p-listen"},
		{name: "static bootstrap", args: append([]string{"--bootstrap", "/ip4/10.0.0.1/tcp/4001/p2p/" + testPeer}, p2p...)},
		{name: "dns bootstrap", args: append([]string{"--bootstrap", "/dns4/shoal.svc/tcp/4001"}, p2p...)},
		{name: "ip without peer", args: append([]string{"--bootstrap", "/ip4/10.0.0.1/tcp/4001"}, p2p...), want: "needs its peer ID"},
		{name: "dns without port", args: append([]string{"--bootstrap", "/dns4/shoal.svc"}, p2p...), want: "bootstrap"},
		{name: "garbage bootstrap", args: append([]string{"--bootstrap", "shoal.svc:4001"}, p2p...), want: "bootstrap"},
		{name: "dns with pnet", args: append([]string{"--bootstrap", "/dns4/s/tcp/1", "--p2p-membership", "pnet"}, p2p...), want: "auth"},
		{name: "bad membership", args: append([]string{"--p2p-membership", "open"}, p2p...), want: "p2p-membership"},
		{name: "conn high below low", args: []string{"--p2p-conn-low", "50", "--p2p-conn-high", "10"}, want: "p2p-conn-low"},
		{name: "zero streams", args: []string{"--p2p-max-streams", "0"}, want: "p2p-max-streams"},
		{name: "reprovide beyond validity", args: []string{"--reprovide-interval", "1h"}, want: "reprovide-interval"},
		{name: "short test cycle", args: []string{"--provide-validity", "10s", "--reprovide-interval", "3s"}},
		{name: "bad limit", args: []string{"--p2p-upload-limit", "fast"}, want: "p2p-upload-limit"},
		{name: "env list", env: map[string]string{"SHOAL_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1,/ip6/::1/tcp/1", "SHOAL_SWARM_KEY": "/k"}},
		{name: "dns server", args: append([]string{"--bootstrap", "/dns4/shoal.svc/tcp/4001", "--bootstrap-dns-server", "10.96.0.10:53"}, p2p...)},
		{name: "dns server ipv6", args: append([]string{"--bootstrap", "/dns6/shoal.svc/tcp/4001", "--bootstrap-dns-server", "[fd00::a]:53"}, p2p...)},
		{name: "dns server by name", args: append([]string{"--bootstrap", "/dns/shoal.svc/tcp/4001", "--bootstrap-dns-server", "kube-dns.local:5353"}, p2p...)},
		{name: "dns server without port", args: append([]string{"--bootstrap", "/dns4/shoal.svc/tcp/4001", "--bootstrap-dns-server", "10.96.0.10"}, p2p...), want: "--bootstrap-dns-server: \"10.96.0.10\": want host:port"},
		{name: "dns server port 0", args: append([]string{"--bootstrap", "/dns4/shoal.svc/tcp/4001", "--bootstrap-dns-server", "10.96.0.10:0"}, p2p...), want: "bootstrap-dns-server"},
		{name: "dns server no host", args: append([]string{"--bootstrap", "/dns4/shoal.svc/tcp/4001", "--bootstrap-dns-server", ":53"}, p2p...), want: "bootstrap-dns-server"},
		{name: "dns server bad port", args: append([]string{"--bootstrap", "/dns4/shoal.svc/tcp/4001", "--bootstrap-dns-server", "10.96.0.10:dns"}, p2p...), want: "bootstrap-dns-server"},
		{name: "dns server without dns names", args: append([]string{"--bootstrap", "/ip4/10.0.0.1/tcp/4001/p2p/" + testPeer, "--bootstrap-dns-server", "10.96.0.10:53"}, p2p...), want: "none is given"},
		{name: "dns server alone", args: []string{"--bootstrap-dns-server", "10.96.0.10:53"}, want: "none is given"},
		{name: "dns server env", env: map[string]string{"SHOAL_BOOTSTRAP_DNS_SERVER": "127.0.0.1:5353", "SHOAL_BOOTSTRAP": "/dns4/a/tcp/1", "SHOAL_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1", "SHOAL_SWARM_KEY": "/k"}},
		{name: "dns server env bad", env: map[string]string{"SHOAL_BOOTSTRAP_DNS_SERVER": "nonsense", "SHOAL_BOOTSTRAP": "/dns4/a/tcp/1", "SHOAL_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1", "SHOAL_SWARM_KEY": "/k"}, want: "bootstrap-dns-server"},
		{name: "dns server yaml", file: "p2p-listen: [/ip4/127.0.0.1/tcp/1]\nswarm-key: /k\nbootstrap: /dns4/a/tcp/1\nbootstrap-dns-server: 127.0.0.1:5353\n"},
		{name: "yaml", file: "p2p-listen: [/ip4/127.0.0.1/tcp/1]\nswarm-key: /k\nbootstrap:\n  - /dns4/a/tcp/1\nmdns: true\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := load(t, append(args, tt.args...), tt.env)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestP2PListsReplaceLowerLayers(t *testing.T) {
	env := map[string]string{"SHOAL_BOOTSTRAP": "/dns4/env/tcp/1", "SHOAL_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1", "SHOAL_SWARM_KEY": "/k"}
	c, err := load(t, []string{"--bootstrap", "/dns4/a/tcp/1", "--bootstrap", "/dns4/b/tcp/2,/dns4/c/tcp/3"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Bootstrap, " "); got != "/dns4/a/tcp/1 /dns4/b/tcp/2 /dns4/c/tcp/3" {
		t.Fatalf("bootstrap = %q", got)
	}
	if !c.P2PEnabled() || len(c.P2PListen) != 1 {
		t.Fatalf("p2p-listen from env lost: %v", c.P2PListen)
	}
}

func TestBootstrapDNSServerLayers(t *testing.T) {
	file := writeFile(t, "bootstrap-dns-server: 10.0.0.1:53\n")
	env := map[string]string{"SHOAL_BOOTSTRAP_DNS_SERVER": "10.0.0.2:53", "SHOAL_BOOTSTRAP": "/dns4/a/tcp/1", "SHOAL_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1", "SHOAL_SWARM_KEY": "/k"}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "default", args: []string{"--bootstrap", "/dns4/a/tcp/1", "--p2p-listen", "/ip4/127.0.0.1/tcp/1", "--swarm-key", "/k"}, want: ""},
		{name: "file", args: []string{"--config", file}, env: map[string]string{"SHOAL_BOOTSTRAP": "/dns4/a/tcp/1", "SHOAL_P2P_LISTEN": "/ip4/127.0.0.1/tcp/1", "SHOAL_SWARM_KEY": "/k"}, want: "10.0.0.1:53"},
		{name: "env over file", args: []string{"--config", file}, env: env, want: "10.0.0.2:53"},
		{name: "flag over env", args: []string{"--config", file, "--bootstrap-dns-server", "10.0.0.3:53"}, env: env, want: "10.0.0.3:53"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.BootstrapDNSServer != tt.want {
				t.Fatalf("bootstrap-dns-server = %q, want %q", c.BootstrapDNSServer, tt.want)
			}
		})
	}
}

func TestParseBootstrap(t *testing.T) {
	b, err := ParseBootstrap("/dns6/shoal-headless.ns.svc/tcp/4001")
	if err != nil || b.Name != "shoal-headless.ns.svc" || b.Port != 4001 || b.Static != "" {
		t.Fatalf("dns6: %+v %v", b, err)
	}
	b, err = ParseBootstrap("/dns4/seed.example/tcp/4001/p2p/" + testPeer)
	if err != nil || b.Static == "" {
		t.Fatalf("dns with peer ID is a static address: %+v %v", b, err)
	}
}
