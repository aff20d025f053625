package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// ceilingServer starts an in-process net/http server that serves an object
// of size bytes (a repeated pattern) from memory, with single byte ranges.
// The load generator against it shows the most it can read on this machine,
// which bounds every ratio the scenarios can show.
func ceilingServer(t *testing.T, size int64) *httptest.Server {
	t.Helper()
	pattern := make([]byte, 1<<20)
	for i := range pattern {
		pattern[i] = byte(i * 7)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		off, n := int64(0), size
		status := http.StatusOK
		if rng := r.Header.Get("Range"); rng != "" {
			var first, last int64
			if _, err := fmt.Sscanf(rng, "bytes=%d-%d", &first, &last); err != nil || first > last || last >= size {
				http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
				return
			}
			off, n, status = first, last-first+1, http.StatusPartialContent
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(status)
		for n > 0 {
			p := pattern[off%int64(len(pattern)):]
			p = p[:min(int64(len(p)), n)]
			if _, err := w.Write(p); err != nil {
				return
			}
			off += int64(len(p))
			n -= int64(len(p))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCeilingServerServesRanges(t *testing.T) {
	srv := ceilingServer(t, 3<<20+5)
	for _, streams := range []int{1, 8} {
		if _, err := ReadObject(t.Context(), testClient(t, 8), srv.URL, 3<<20+5, streams); err != nil {
			t.Errorf("%d streams: %v", streams, err)
		}
	}
	if _, err := Get(t.Context(), testClient(t, 1), srv.URL, "bytes=5-2", -1, make([]byte, 64), nil); err == nil {
		t.Error("an inverted range was served")
	}
}
