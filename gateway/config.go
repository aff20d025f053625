package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ErrInvalidConfig is returned (wrapped) by Config.Validate and New.
var ErrInvalidConfig = errors.New("gateway: invalid config")

// Defaults applied by Config.Validate when a field is zero.
const (
	// DefaultRegion is what the AWS SDKs assume when nothing else is set.
	DefaultRegion = "us-east-1"
	// DefaultMaxHeaderBytes bounds the request line plus headers the
	// handler accepts. S3 allows 8 KiB of headers plus 2 KiB of user
	// metadata; 64 KiB leaves room for presigned URLs and long keys while
	// rejecting absurd requests that a generous http.Server let through.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxObjectSize is S3's limit for a single PUT (and one part).
	DefaultMaxObjectSize = 5 << 30
	// DefaultServerName is sent in the Server response header.
	DefaultServerName = "Shoal"
)

// Credential is one SigV4 key pair.
type Credential struct {
	AccessKey string
	SecretKey string
}

// Config configures a Gateway. Zero values take the documented defaults.
type Config struct {
	// Region is the region requests must be signed for and that the
	// gateway reports. Default DefaultRegion.
	Region string
	// Domains enable virtual-hosted-style addressing: with "s3.local",
	// a request to bucket.s3.local:port addresses bucket. "localhost" is
	// always accepted as well (bucket.localhost). Hosts that match no
	// domain use path-style addressing.
	Domains []string
	// Credentials are the accepted SigV4 key pairs. When empty, every
	// request is accepted as anonymous and signatures are ignored; that
	// requires AllowAnonymous.
	Credentials []Credential
	// AllowAnonymous lets unsigned requests through. The caller decides
	// it, typically from IsLoopbackAddr(listen address). Signed requests
	// are always verified when Credentials is not empty.
	AllowAnonymous bool
	// MaxHeaderBytes bounds the total size of the request URL and
	// headers. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxObjectSize bounds one PutObject or UploadPart payload. Default
	// DefaultMaxObjectSize.
	MaxObjectSize int64
	// ServerName is the Server response header. Default DefaultServerName.
	ServerName string
	// AllowedHosts are further Host names ("name" for any port, or
	// "name:port") under which anonymous requests are answered. Without
	// them, an anonymous request must address the gateway by the local
	// address of its connection, by localhost, 127.0.0.1 or [::1] at that
	// port (also bucket.localhost), or by one of Domains (also
	// bucket.DOMAIN, any port): what keeps a DNS-rebinding web page, which
	// reaches the gateway under its own name, out. Signed requests are not
	// checked: SigV4 binds the Host the client signed.
	AllowedHosts []string
}

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if !validRegion(c.Region) {
		return fmt.Errorf("%w: region %q", ErrInvalidConfig, c.Region)
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxHeaderBytes < 1024 {
		return fmt.Errorf("%w: MaxHeaderBytes %d is below 1024", ErrInvalidConfig, c.MaxHeaderBytes)
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.MaxObjectSize < 0 {
		return fmt.Errorf("%w: MaxObjectSize %d is negative", ErrInvalidConfig, c.MaxObjectSize)
	}
	if c.ServerName == "" {
		c.ServerName = DefaultServerName
	}
	for i, d := range c.Domains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" || strings.ContainsAny(d, ":/ ") {
			return fmt.Errorf("%w: domain %q", ErrInvalidConfig, c.Domains[i])
		}
		c.Domains[i] = d
	}
	for i, h := range c.AllowedHosts {
		n, err := parseHostName(h)
		if err != nil {
			return fmt.Errorf("%w: allowed host %q: %w", ErrInvalidConfig, h, err)
		}
		c.AllowedHosts[i] = n
	}
	seen := make(map[string]bool, len(c.Credentials))
	for _, cr := range c.Credentials {
		if cr.AccessKey == "" || cr.SecretKey == "" {
			return fmt.Errorf("%w: credential with empty access or secret key", ErrInvalidConfig)
		}
		if strings.ContainsAny(cr.AccessKey, "/:, \t") {
			return fmt.Errorf("%w: access key %q contains a forbidden character", ErrInvalidConfig, cr.AccessKey)
		}
		if seen[cr.AccessKey] {
			return fmt.Errorf("%w: duplicate access key %q", ErrInvalidConfig, cr.AccessKey)
		}
		seen[cr.AccessKey] = true
	}
	if len(c.Credentials) == 0 && !c.AllowAnonymous {
		return fmt.Errorf("%w: no credentials configured and anonymous access not allowed (only allow it on a loopback listener)", ErrInvalidConfig)
	}
	return nil
}

func validRegion(r string) bool {
	if len(r) > 64 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// LoadCredentialsFile reads one ACCESS_KEY:SECRET_KEY per line. Blank lines
// and lines starting with # are skipped; surrounding spaces are trimmed.
func LoadCredentialsFile(path string) ([]Credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: load credentials: %w", err)
	}
	defer f.Close()
	var out []Credential
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ak, sk, ok := strings.Cut(line, ":")
		ak, sk = strings.TrimSpace(ak), strings.TrimSpace(sk)
		if !ok || ak == "" || sk == "" {
			return nil, fmt.Errorf("%w: %s line %d: want ACCESS_KEY:SECRET_KEY", ErrInvalidConfig, path, n)
		}
		out = append(out, Credential{AccessKey: ak, SecretKey: sk})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gateway: load credentials %s: %w", path, err)
	}
	return out, nil
}

// IsLoopbackAddr reports whether a listen address ("host:port" or a bare
// host) binds only to the loopback interface. An empty host (":9000") means
// all interfaces and is not loopback.
func IsLoopbackAddr(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // zone
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
