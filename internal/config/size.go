package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. It parses "2GiB", "512MiB", "4MB", "10k", and
// plain byte counts; it prints itself in the largest binary unit that
// divides it exactly.
type Size int64

// ErrBadSize: a size could not be parsed.
var ErrBadSize = errors.New("config: bad size")

// unit multipliers, lower-case; binary (KiB) and decimal (KB) as S3 tools use both.
var units = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12},
	{"b", 1},
}

// ParseSize parses a size such as "2GiB", "1.5GiB", "512MiB", "4MB" or "1048576".
func ParseSize(s string) (Size, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadSize)
	}
	lower := strings.ToLower(in)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			lower = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix))
			break
		}
	}
	if lower == "" {
		return 0, fmt.Errorf("%w: %q has no number", ErrBadSize, s)
	}
	if n, err := strconv.ParseInt(lower, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%w: %q is negative", ErrBadSize, s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%w: %q is too large", ErrBadSize, s)
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(lower, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: %q (want e.g. 2GiB, 512MiB, 4MB or a byte count)", ErrBadSize, s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%w: %q is negative", ErrBadSize, s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q is too large", ErrBadSize, s)
	}
	return Size(v), nil
}

// String prints the size in the largest binary unit that divides it exactly.
func (s Size) String() string {
	n := int64(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// MarshalYAML prints the size in its human form.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }
