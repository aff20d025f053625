package main

import (
	"net/http"
	"net/http/pprof"
)

// withDebug serves Go's profiling endpoints under /debug/pprof/ next to the
// admin API h. They share the admin listener and its trust: loopback only
// unless --admin-allow-remote, no authentication.
func withDebug(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
