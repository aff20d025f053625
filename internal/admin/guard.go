package admin

// This file owns what keeps web pages in a user's browser away from the
// admin API, which has no authentication and listens on loopback: the Host
// header must name this listener (a DNS-rebinding page reaches 127.0.0.1
// under its own name), a request a browser marks as sent by another site
// (Origin, Sec-Fetch-Site) is refused, and a request that changes state
// must be JSON, which a page can only send after a CORS preflight that this
// API never answers.

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate and New.
var ErrInvalidConfig = errors.New("admin: invalid config")

// Config configures a Server.
type Config struct {
	// AllowedHosts are further Host names ("name" for any port, or
	// "name:port") the API answers to. It always answers to the local
	// address of the connection, and to localhost, 127.0.0.1 and [::1] at
	// that port. Default none.
	AllowedHosts []string
}

// Validate checks c and normalises its host names.
func (c *Config) Validate() error {
	for i, h := range c.AllowedHosts {
		n, err := parseHostName(h)
		if err != nil {
			return fmt.Errorf("%w: allowed host %q: %w", ErrInvalidConfig, h, err)
		}
		c.AllowedHosts[i] = n
	}
	return nil
}

// guard answers and returns false for a request a web page may have made;
// true lets it through.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	refuse := func(status int, msg string) bool {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "host", r.Host, "origin", r.Header.Get("Origin"), "reason", msg)
		writeError(w, status, msg)
		return false
	}
	if !s.hostAllowed(r.Host, "80", local) {
		return refuse(http.StatusForbidden, "the Host header "+strconv.Quote(truncate(r.Host, 100))+
			" does not name this admin API (its listen address, localhost at its port, or an allowed host)")
	}
	switch strings.ToLower(r.Header.Get("Sec-Fetch-Site")) {
	case "cross-site", "same-site":
		return refuse(http.StatusForbidden, "requests from other web sites are not accepted")
	}
	if o, ok := r.Header["Origin"]; ok && !s.originAllowed(strings.Join(o, ","), local) {
		return refuse(http.StatusForbidden, "requests from other web sites are not accepted (Origin "+strconv.Quote(truncate(o[0], 100))+")")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return refuse(http.StatusUnsupportedMediaType, r.Method+" requests need Content-Type: application/json")
		}
	}
	return true
}

// originAllowed reports whether an Origin header names a page served by
// this listener ("null", an opaque origin, never does).
func (s *Server) originAllowed(origin string, local net.Addr) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" {
		return false
	}
	switch u.Scheme {
	case "http":
		return s.hostAllowed(u.Host, "80", local)
	case "https":
		return s.hostAllowed(u.Host, "443", local)
	}
	return false
}

// hostAllowed reports whether host (whose port defaults to defaultPort)
// is an AllowedHosts entry or, at the port of the connection's local
// address, that address itself, localhost, 127.0.0.1 or [::1].
func (s *Server) hostAllowed(host, defaultPort string, local net.Addr) bool {
	name, port := splitHost(host)
	if name == "" {
		return false
	}
	if port == "" {
		port = defaultPort
	}
	for _, a := range s.cfg.AllowedHosts {
		if an, ap := splitHost(a); an == name && (ap == "" || ap == port) {
			return true
		}
	}
	ta, ok := local.(*net.TCPAddr)
	if !ok || port != strconv.Itoa(ta.Port) {
		return false
	}
	switch name {
	case "localhost", "127.0.0.1", "::1", ta.IP.String():
		return true
	}
	return false
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
