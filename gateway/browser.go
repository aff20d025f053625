package gateway

// This file owns what keeps web pages in a user's browser away from an
// anonymous gateway. Such a gateway listens on loopback and asks for no
// signature, so two things tell a page's request apart from the user's own
// tools: the Host header (a DNS-rebinding page reaches 127.0.0.1 under its
// own name), and the Origin / Sec-Fetch-Site headers browsers add to
// requests a page makes. Signed requests skip all of it: SigV4 binds the
// Host the client signed, and a page has no secret key to sign with.

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// checkBrowser refuses an anonymous request whose Host does not name this
// gateway, and a state-changing one that a browser marks as sent by
// another site.
func (g *Gateway) checkBrowser(r *http.Request) error {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !g.hostAllowed(r.Host, "80", local) {
		return errForeignHost.with("Anonymous requests must name this gateway in the Host header (its listen address, " +
			"localhost at its port, or an allowed host name); " + strconv.Quote(truncate(r.Host, 100)) + " is not one.")
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	switch strings.ToLower(r.Header.Get("Sec-Fetch-Site")) {
	case "cross-site", "same-site":
		return errCrossSite
	}
	if o, ok := r.Header["Origin"]; ok && !g.originAllowed(strings.Join(o, ","), local) {
		return errCrossSite
	}
	return nil
}

// originAllowed reports whether an Origin header names a page served under
// an allowed host of this gateway ("null", an opaque origin, never does).
func (g *Gateway) originAllowed(origin string, local net.Addr) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" {
		return false
	}
	switch u.Scheme {
	case "http":
		return g.hostAllowed(u.Host, "80", local)
	case "https":
		return g.hostAllowed(u.Host, "443", local)
	}
	return false
}

// hostAllowed reports whether host (a Host header, or the host of an
// Origin, whose port defaults to defaultPort) names this gateway: an
// AllowedHosts entry, a virtual-hosting domain or a bucket under it (any
// port), or, at the port of the connection's local address, that address
// itself, localhost (bucket.localhost too), 127.0.0.1 or [::1].
func (g *Gateway) hostAllowed(host, defaultPort string, local net.Addr) bool {
	name, port := splitHost(host)
	if name == "" {
		return false
	}
	if port == "" {
		port = defaultPort
	}
	for _, a := range g.cfg.AllowedHosts {
		if an, ap := splitHost(a); an == name && (ap == "" || ap == port) {
			return true
		}
	}
	for _, d := range g.cfg.Domains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	ta, ok := local.(*net.TCPAddr)
	if !ok || port != strconv.Itoa(ta.Port) {
		return false
	}
	switch {
	case name == "localhost", name == "127.0.0.1", name == "::1", strings.HasSuffix(name, ".localhost"):
		return true
	}
	return name == ta.IP.String()
}

// splitHost splits "name[:port]" (IPv6 literals in brackets) into a
// lower-case name without a trailing dot and the port ("" if none).
func splitHost(h string) (name, port string) {
	if n, p, err := net.SplitHostPort(h); err == nil {
		name, port = n, p
	} else {
		name = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.ToLower(strings.TrimSuffix(name, ".")), port
}

// parseHostName checks an AllowedHosts entry, "name" or "name:port", and
// returns it normalised.
func parseHostName(h string) (string, error) {
	if h == "" || strings.ContainsAny(h, "/@?# \t") {
		return "", errors.New("want a host name, optionally with :port (no scheme or path)")
	}
	name, port := splitHost(h)
	if name == "" || strings.ContainsAny(name, "[]") || (strings.Contains(name, ":") && net.ParseIP(name) == nil) {
		return "", errors.New("want a host name, optionally with :port (IPv6 addresses in brackets)")
	}
	if port == "" {
		return name, nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("the port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(name, port), nil
}
