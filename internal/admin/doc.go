// Package admin owns a node's admin HTTP API and its client (used by the
// `shoal` client commands):
//
//	GET  /healthz      200 while the process serves
//	GET  /readyz       200 once the node is ready, 503 before/while stopping
//	GET  /metrics      Prometheus text format
//	GET  /v1/status    node status as JSON
//	POST /v1/pin       {"bucket":"b","prefix":"p/"} -> result JSON
//	POST /v1/unpin     same body
//	POST /v1/prefetch  same body
//	/v1/jobs, /v1/where, /v1/cached, /v1/peers: see Ops (jobs and
//	introspection, served when the Backend implements Ops)
//
// The API has no authentication: the caller (cmd/shoal) binds it to
// loopback unless explicitly told otherwise. So that web pages in a user's
// browser cannot use it either, every request must name the listener in
// its Host header (its address, localhost at its port, or a
// Config.AllowedHosts name), requests a browser marks as sent by another
// site (Origin, Sec-Fetch-Site) are refused, and anything but GET/HEAD
// needs Content-Type: application/json. Extra handlers (WithHandler, e.g.
// pprof) sit behind the same checks. Errors are JSON {"error":"..."} with
// a 4xx/5xx status.
package admin
