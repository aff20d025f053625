package gateway

import (
	"net/http"
	"strings"
	"time"
)

// condResult is the outcome of evaluating conditional request headers.
type condResult int

const (
	condProceed condResult = iota
	condNotModified
	condPreconditionFailed
)

// evalConditions applies RFC 9110 section 13.2.2 in its order: If-Match,
// else If-Unmodified-Since; then If-None-Match, else If-Modified-Since
// (the last two only for GET and HEAD, which are the only callers).
func evalConditions(h http.Header, etag string, lastModified time.Time) condResult {
	lm := lastModified.UTC().Truncate(time.Second)
	if im := h.Get("If-Match"); im != "" {
		if !etagListMatch(im, etag, false) {
			return condPreconditionFailed
		}
	} else if ius := h.Get("If-Unmodified-Since"); ius != "" {
		if t, err := http.ParseTime(ius); err == nil && lm.After(t) {
			return condPreconditionFailed
		}
	}
	if inm := h.Get("If-None-Match"); inm != "" {
		if etagListMatch(inm, etag, true) {
			return condNotModified
		}
	} else if ims := h.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !lm.After(t) {
			return condNotModified
		}
	}
	return condProceed
}

// etagListMatch reports whether the comma-separated entity-tag list (or
// "*") matches current. weak selects weak comparison (If-None-Match);
// strong comparison (If-Match) never matches a weak tag. Unquoted tags are
// accepted as S3 does.
func etagListMatch(list, current string, weak bool) bool {
	if current == "" {
		return false
	}
	list = strings.TrimSpace(list)
	if list == "*" {
		return true
	}
	curWeak, curTag := splitETag(current)
	if curWeak && !weak {
		return false
	}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if item == "*" {
			return true
		}
		isWeak, tag := splitETag(item)
		if isWeak && !weak {
			continue
		}
		if tag == curTag {
			return true
		}
	}
	return false
}

// splitETag returns whether t is weak and its opaque tag without quotes.
func splitETag(t string) (weak bool, tag string) {
	if strings.HasPrefix(t, "W/") {
		weak, t = true, t[2:]
	}
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		t = t[1 : len(t)-1]
	}
	return weak, t
}
