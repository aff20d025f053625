package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Bounds of the automatic gateway connection cap (--gateway-max-conns 0).
const (
	// autoConnsFloor: even under a tiny descriptor limit a node serves a
	// handful of clients at once.
	autoConnsFloor = 16
	// autoConnsCeiling: a node serves hundreds of clients, not tens of
	// thousands; 10,000 idle connections hold about 200 MiB (a goroutine
	// and 8 KiB of buffers each).
	autoConnsCeiling = 10000
)

// GatewayConnLimit returns the gateway's connection cap: --gateway-max-conns,
// or with 0 half of the process's file-descriptor limit nofile (the other
// half is for the admin API, the SSD tier, Badger, the origin and peers),
// within autoConnsFloor..autoConnsCeiling.
func (c *Config) GatewayConnLimit(nofile uint64) int {
	if c.GatewayMaxConns > 0 {
		return c.GatewayMaxConns
	}
	n := nofile / 2
	return int(max(autoConnsFloor, min(n, autoConnsCeiling)))
}

// validateHTTP checks the HTTP listener options.
func (c *Config) validateHTTP() []error {
	var errs []error
	bad := func(opt, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: --%s: %s", ErrInvalid, opt, fmt.Sprintf(format, args...)))
	}
	for _, h := range c.AllowedHosts {
		if err := checkHostName(h); err != "" {
			bad("allowed-hosts", "%q: %s", h, err)
		}
	}
	if c.GatewayMaxConns < 0 {
		bad("gateway-max-conns", "%d is negative (0 picks a cap from the file-descriptor limit)", c.GatewayMaxConns)
	}
	if c.AdminMaxConns < 1 {
		bad("admin-max-conns", "%d: want at least 1", c.AdminMaxConns)
	}
	if c.HTTPIdleTimeout <= 0 {
		bad("http-idle-timeout", "%s: want a positive duration", c.HTTPIdleTimeout)
	}
	if c.HTTPBodyTimeout <= 0 {
		bad("http-body-timeout", "%s: want a positive duration", c.HTTPBodyTimeout)
	}
	return errs
}

// checkHostName explains what is wrong with an --allowed-hosts entry ("" if
// nothing): a host name or IP address, optionally with :port.
func checkHostName(h string) string {
	if h == "" || strings.ContainsAny(h, "/@?# \t") {
		return "want a host name, optionally with :port (no scheme or path)"
	}
	name, port := h, ""
	if n, p, err := net.SplitHostPort(h); err == nil {
		name, port = n, p
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		name = h[1 : len(h)-1]
	}
	if name == "" || strings.ContainsAny(name, "[]") || (strings.Contains(name, ":") && net.ParseIP(name) == nil) {
		return "want name or name:port (IPv6 addresses in brackets)"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "the port must be a number from 1 to 65535"
		}
	}
	return ""
}

// RedactArgs returns a copy of a command line with the values of Secret
// options replaced by REDACTED ("--name value", "--name=value", one dash
// or two), and whether there were any.
func RedactArgs(args []string) ([]string, bool) {
	secret := map[string]bool{}
	for _, o := range Options() {
		if o.Secret {
			secret[o.Name] = true
		}
	}
	out := append([]string(nil), args...)
	found := false
	for i := 0; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !secret[name] {
			continue
		}
		switch {
		case hasValue:
			out[i] = a[:strings.IndexByte(a, '=')+1] + "REDACTED"
			found = true
		case i+1 < len(out):
			out[i+1] = "REDACTED"
			found = true
			i++
		}
	}
	return out, found
}
