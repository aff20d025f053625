package main

import (
	"net/http"
	"net/http/pprof"
	"os"
	"strings"

	"github.com/shoal-cache/shoal/internal/config"
)

// debugHandler serves Go's profiling endpoints under /debug/pprof/. cmd/shoal
// mounts it on the admin listener only with --pprof, behind the admin API's
// guard (Host allow-list, no cross-site requests) and its trust: loopback
// only unless --admin-allow-remote, no authentication.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// redactedCmdline is pprof.Cmdline without the values of secret options.
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	args, _ := config.RedactArgs(os.Args)
	_, _ = w.Write([]byte(strings.Join(args, "\x00")))
}
