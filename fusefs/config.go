package fusefs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidConfig: Config.Validate refused the configuration.
var ErrInvalidConfig = errors.New("fusefs: invalid config")

// Defaults of Config.
const (
	// DefaultMetadataTTL is the node's own --metadata-ttl default: the
	// kernel keeps an attribute or entry no longer than the node trusts it.
	DefaultMetadataTTL = 30 * time.Second
	// DefaultImmutableTTL: objects under an immutable prefix never change,
	// so the kernel may keep their attributes for a long time; an hour
	// still lets a mount notice a key deleted at the origin.
	DefaultImmutableTTL = time.Hour
	// DefaultNegativeTTL is the node's --list-ttl default: a name that was
	// missing is asked again about as soon as a new listing would show it.
	DefaultNegativeTTL = 2 * time.Second
	// DefaultListPage is S3's largest ListObjectsV2 page.
	DefaultListPage = 1000
	// DefaultOpTimeout bounds one lookup or listing page. It is above the
	// node's --origin-wait (15 s, after which an uncached HEAD fails) and
	// below the minutes that make a stuck `ls` look hung.
	DefaultOpTimeout = 20 * time.Second
	// DefaultSequentialAfter: two kernel requests of the largest size in
	// order make a handle stream to the end of the object. Smaller runs
	// (a header read, the kernel's read-ahead around a random pread) ask
	// for their exact range.
	DefaultSequentialAfter = 2 * DefaultMaxRead
	// DefaultMaxRead is the largest read request the kernel sends (max_read,
	// and max_pages on Linux 4.20+): 1 MiB, the kernel's own ceiling,
	// against its 128 KiB default.
	DefaultMaxRead = 1 << 20
)

// Config configures a mount. The zero value of each field takes its
// default.
type Config struct {
	// Dir is the mount point: an existing, empty directory that is not a
	// mount point already.
	Dir string
	// Bucket, when set, puts that bucket's keys at the root; otherwise each
	// top-level directory is a bucket.
	Bucket string
	// AllowOther lets other users than the mounting one see the files
	// (FUSE allow_other; a non-root user needs user_allow_other in
	// /etc/fuse.conf).
	AllowOther bool
	// MetadataTTL: attribute and entry timeouts of the kernel (the node's
	// --metadata-ttl).
	MetadataTTL time.Duration
	// Immutable lists "bucket/prefix" patterns (the node's --immutable):
	// their attributes are kept ImmutableTTL.
	Immutable    []string
	ImmutableTTL time.Duration
	// NegativeTTL: how long the kernel remembers that a name is missing.
	NegativeTTL time.Duration
	// ListPage: keys per listing page (1..1000).
	ListPage int
	// OpTimeout bounds one lookup, attribute refresh, open or listing page.
	OpTimeout time.Duration
	// SequentialAfter: bytes read in order before a handle streams ahead.
	SequentialAfter int64
	// MaxRead: largest kernel read request (4 KiB..1 MiB).
	MaxRead int
}

func (c *Config) setDefaults() {
	if c.MetadataTTL == 0 {
		c.MetadataTTL = DefaultMetadataTTL
	}
	if c.ImmutableTTL == 0 {
		c.ImmutableTTL = DefaultImmutableTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.ListPage == 0 {
		c.ListPage = DefaultListPage
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.MaxRead == 0 {
		c.MaxRead = DefaultMaxRead
	}
	if c.SequentialAfter == 0 {
		c.SequentialAfter = 2 * int64(c.MaxRead)
	}
}

// Validate reports what is wrong with c (after defaults).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if c.Dir == "" {
		bad("no mount point (Dir)")
	}
	if strings.Contains(c.Bucket, "/") {
		bad("bucket %q contains a slash", c.Bucket)
	}
	for _, p := range c.Immutable {
		if b, _, _ := strings.Cut(p, "/"); b == "" {
			bad("immutable pattern %q names no bucket", p)
		}
	}
	if c.MetadataTTL < 0 || c.ImmutableTTL < 0 || c.NegativeTTL < 0 || c.OpTimeout < 0 || c.SequentialAfter < 0 {
		bad("negative duration or size")
	}
	if c.ListPage < 1 || c.ListPage > 1000 {
		bad("list page %d outside 1..1000", c.ListPage)
	}
	if c.MaxRead < 4096 || c.MaxRead > 1<<20 {
		bad("max read %d outside 4 KiB..1 MiB", c.MaxRead)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// attrTTL is how long the kernel may keep the attributes of bucket/key.
func (c *Config) attrTTL(bucket, key string) time.Duration {
	for _, p := range c.Immutable {
		b, prefix, _ := strings.Cut(p, "/")
		if b == bucket && strings.HasPrefix(key, prefix) {
			return c.ImmutableTTL
		}
	}
	return c.MetadataTTL
}
