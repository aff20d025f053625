package config

import (
	"fmt"
	"net"
	"strconv"

	ma "github.com/multiformats/go-multiaddr"
)

// P2PEnabled reports whether the node joins a cluster (--p2p-listen set).
func (c *Config) P2PEnabled() bool { return len(c.P2PListen) > 0 }

// BootstrapAddr is one parsed --bootstrap entry: either a dialable address
// with a peer ID (Static), or a DNS name and TCP port whose records are
// resolved periodically and whose peers' IDs are learned by handshake.
type BootstrapAddr struct {
	Static string // a multiaddr ending in /p2p/<ID>; empty for a DNS entry
	Name   string // DNS name (for /dns, /dns4, /dns6 without /p2p/)
	Port   int    // TCP port of a DNS entry
}

// ParseBootstrap classifies a --bootstrap entry.
func ParseBootstrap(s string) (BootstrapAddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return BootstrapAddr{}, fmt.Errorf("%q: %v", s, err)
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return BootstrapAddr{Static: a.String()}, nil
	}
	comps := []ma.Component(a)
	if len(comps) != 2 || comps[1].Protocol().Code != ma.P_TCP {
		return BootstrapAddr{}, fmt.Errorf("%q: want /ip4|ip6/ADDR/tcp/PORT/p2p/ID or /dns4|dns6|dns/NAME/tcp/PORT", s)
	}
	switch comps[0].Protocol().Code {
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
	default:
		return BootstrapAddr{}, fmt.Errorf("%q: an IP address needs its peer ID (/p2p/ID; see `shoal id`), or use a /dns4/NAME/tcp/PORT name", s)
	}
	port, err := strconv.Atoi(comps[1].Value())
	if err != nil || port <= 0 || port > 65535 {
		return BootstrapAddr{}, fmt.Errorf("%q: bad TCP port", s)
	}
	return BootstrapAddr{Name: comps[0].Value(), Port: port}, nil
}

// validateP2P checks the cluster options.
func (c *Config) validateP2P() []error {
	var errs []error
	bad := func(opt, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: --%s: %s", ErrInvalid, opt, fmt.Sprintf(format, args...)))
	}
	for _, a := range c.P2PListen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			bad("p2p-listen", "%q: %v (want e.g. /ip4/0.0.0.0/tcp/4001)", a, err)
		}
	}
	if c.P2PMembership != "auth" && c.P2PMembership != "pnet" {
		bad("p2p-membership", "%q: want auth or pnet", c.P2PMembership)
	}
	dnsNames := false
	for _, b := range c.Bootstrap {
		ba, err := ParseBootstrap(b)
		if err != nil {
			bad("bootstrap", "%v", err)
			continue
		}
		dnsNames = dnsNames || ba.Name != ""
		if ba.Name != "" && c.P2PMembership == "pnet" {
			bad("bootstrap", "%q: learning peer IDs from DNS names needs --p2p-membership auth; give /p2p/ID addresses", b)
		}
	}
	if c.BootstrapDNSServer != "" {
		host, port, err := net.SplitHostPort(c.BootstrapDNSServer)
		p, perr := strconv.Atoi(port)
		switch {
		case err != nil || host == "" || perr != nil || p <= 0 || p > 65535:
			bad("bootstrap-dns-server", "%q: want host:port, e.g. 10.96.0.10:53", c.BootstrapDNSServer)
		case !dnsNames:
			bad("bootstrap-dns-server", "only resolves /dns4|dns6|dns --bootstrap names, and none is given")
		}
	}
	if c.P2PConnLow < 0 || c.P2PConnHigh < c.P2PConnLow {
		bad("p2p-conn-low", "low %d / high %d: want 0 <= low <= high", c.P2PConnLow, c.P2PConnHigh)
	}
	if c.P2PMaxStreams < 1 {
		bad("p2p-max-streams", "%d: want at least 1", c.P2PMaxStreams)
	}
	if c.ProvideValidity <= 0 {
		bad("provide-validity", "%s: want a positive duration", c.ProvideValidity)
	}
	if c.ReprovideInterval <= 0 || c.ReprovideInterval >= c.ProvideValidity {
		bad("reprovide-interval", "%s: want a positive duration below --provide-validity (%s), or records lapse", c.ReprovideInterval, c.ProvideValidity)
	}
	if !c.P2PEnabled() {
		switch {
		case len(c.Bootstrap) > 0:
			bad("bootstrap", "needs --p2p-listen (P2P is off)")
		case c.MDNS:
			bad("mdns", "needs --p2p-listen (P2P is off)")
		}
		return errs
	}
	if c.SwarmKey == "" {
		bad("swarm-key", "required when --p2p-listen is set (the cluster is private; create a key with `shoal swarm-key`)")
	}
	return errs
}
