package origin

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for S3Config. Zero values in a config mean "use the default".
const (
	// DefaultMaxInFlight bounds ranged GETs in flight per origin: enough to
	// fill a 10 Gbit/s link at ~100 ms first-byte latency with 8 MiB chunks,
	// small enough not to look like a burst to S3's per-prefix throttling.
	DefaultMaxInFlight = 64
	// DefaultMaxRetries is the number of retries after the first attempt;
	// with the default backoff they span roughly 10 s of origin trouble
	// (less when DefaultRetryBudget runs out first).
	DefaultMaxRetries = 5
	// DefaultRetryBaseDelay is the first backoff step (full jitter).
	DefaultRetryBaseDelay = 200 * time.Millisecond
	// DefaultRetryMaxBackoff caps one backoff sleep.
	DefaultRetryMaxBackoff = 5 * time.Second
	// DefaultConnectTimeout bounds TCP connect (+TLS handshake).
	DefaultConnectTimeout = 10 * time.Second
	// DefaultHeaderTimeout bounds the wait for response headers of one
	// attempt. S3 sends headers within tens of milliseconds (a few hundred
	// at its tail), whatever the object's size, so 10 s without them means
	// the connection or the server is stuck: give up on it and retry on a
	// new connection instead of waiting for more.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultRetryBudget bounds one call (HEAD, ranged GET, listing, ...)
	// from its first attempt to the response headers of its last, retries
	// and backoff included, so a server that accepts connections and never
	// answers costs a caller at most this long, not (retries+1) header
	// timeouts: 30 s lets two stuck attempts and their backoff run, then
	// fails with ErrUnavailable. Bodies are not timed (IdleTimeout watches
	// them), nor are uploads, which take as long as their bytes need.
	DefaultRetryBudget = 30 * time.Second
	// DefaultIdleTimeout is the longest a response body may make no progress
	// before it is aborted. There is deliberately no total timeout: a 100 GiB
	// body may take as long as it needs while it keeps moving.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultRegion is used when neither the config nor the AWS chain names one.
	DefaultRegion = "us-east-1"
)

// S3Config configures an S3 (or S3-compatible) origin.
type S3Config struct {
	// Endpoint is the base URL of an S3-compatible service
	// ("http://127.0.0.1:7070"); empty means AWS S3.
	Endpoint string
	// Region of the bucket(s); empty means the AWS chain's region, else
	// DefaultRegion.
	Region string
	// PathStyle addresses buckets as /bucket/key instead of bucket.host
	// (needed by most S3-compatible servers).
	PathStyle bool
	// MaxInFlight bounds concurrent GetRange requests, counted until the
	// body is closed (default DefaultMaxInFlight).
	MaxInFlight int
	// MaxRetries after the first attempt (default DefaultMaxRetries; -1
	// disables retries).
	MaxRetries int
	// RetryBaseDelay and RetryMaxBackoff shape the exponential backoff with
	// full jitter (defaults DefaultRetryBaseDelay, DefaultRetryMaxBackoff).
	RetryBaseDelay  time.Duration
	RetryMaxBackoff time.Duration
	// Timeouts per attempt; never a total timeout on a body.
	ConnectTimeout time.Duration // default DefaultConnectTimeout
	HeaderTimeout  time.Duration // default DefaultHeaderTimeout
	IdleTimeout    time.Duration // body read without progress; default DefaultIdleTimeout
	// RetryBudget bounds one call, every attempt and backoff up to the
	// response headers, after which it fails with ErrUnavailable (default
	// DefaultRetryBudget). PutObject, UploadPart and CompleteMultipartUpload
	// are not bounded by it (their duration follows the bytes sent).
	RetryBudget time.Duration
	// AccessKey and SecretKey (and optional SessionToken) are static
	// credentials. When empty, the standard AWS chain is used (environment,
	// shared config/profile, web identity, IMDS).
	AccessKey    string
	SecretKey    string
	SessionToken string
	// Profile selects a shared-config profile for the AWS chain (optional).
	Profile string
}

func (c *S3Config) setDefaults() {
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryBaseDelay == 0 {
		c.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if c.RetryMaxBackoff == 0 {
		c.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.RetryBudget == 0 {
		c.RetryBudget = DefaultRetryBudget
	}
}

// Validate reports a configuration error, wrapping ErrInvalidArgument. Zero
// values are valid (they select defaults).
func (c S3Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("origin: s3 config: "+format+": %w", append(a, ErrInvalidArgument)...)
	}
	switch {
	case c.MaxInFlight < 0:
		return bad("MaxInFlight %d < 0", c.MaxInFlight)
	case c.MaxRetries < -1:
		return bad("MaxRetries %d < -1", c.MaxRetries)
	case c.RetryBaseDelay < 0 || c.RetryMaxBackoff < 0:
		return bad("negative retry backoff")
	case c.ConnectTimeout < 0 || c.HeaderTimeout < 0 || c.IdleTimeout < 0 || c.RetryBudget < 0:
		return bad("negative timeout")
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return bad("AccessKey and SecretKey must be set together")
	case c.SessionToken != "" && c.AccessKey == "":
		return bad("SessionToken without AccessKey")
	}
	if c.Endpoint != "" {
		if err := validateEndpoint(c.Endpoint); err != nil {
			return bad("Endpoint %q: %v", c.Endpoint, err)
		}
	}
	return nil
}

// S3Option injects a collaborator into NewS3.
type S3Option func(*s3Options)

type s3Options struct {
	logger     *slog.Logger
	registerer prometheus.Registerer
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) S3Option { return func(o *s3Options) { o.logger = l } }

// WithRegisterer registers the origin's metrics (default: none registered).
func WithRegisterer(r prometheus.Registerer) S3Option {
	return func(o *s3Options) { o.registerer = r }
}
