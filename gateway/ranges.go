package gateway

import (
	"strconv"
	"strings"
)

// byteRange is a parsed single Range header: bytes=start-end,
// bytes=start- (end < 0) or bytes=-suffix (start < 0, end = suffix length).
type byteRange struct {
	start, end int64
}

// parseRange parses a Range header. ok is false when the header is absent,
// syntactically invalid, names another unit or several ranges: S3 then
// serves the whole object, and so does the gateway.
func parseRange(h string) (r byteRange, ok bool) {
	h = strings.TrimSpace(h)
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return r, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return r, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return r, false
		}
		return byteRange{start: -1, end: n}, true
	}
	a, ok := parseDigits(first)
	if !ok {
		return r, false
	}
	if last == "" {
		return byteRange{start: a, end: -1}, true
	}
	b, ok := parseDigits(last)
	if !ok || b < a {
		return r, false
	}
	return byteRange{start: a, end: b}, true
}

func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// resolve returns offset and length of r within an object of size bytes,
// or satisfiable=false (416).
func (r byteRange) resolve(size int64) (off, length int64, satisfiable bool) {
	switch {
	case r.start < 0: // suffix
		if r.end == 0 || size == 0 {
			return 0, 0, false
		}
		n := min(r.end, size)
		return size - n, n, true
	case r.start >= size:
		return 0, 0, false
	case r.end < 0 || r.end >= size:
		return r.start, size - r.start, true
	default:
		return r.start, r.end - r.start + 1, true
	}
}
