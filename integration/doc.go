// Package integration holds Shoal's end-to-end tests: they build the real
// `shoal` binary, start real `shoal node` processes and a real S3-compatible
// server (versitygw) on loopback ports, and drive the gateway with the
// aws-sdk-go-v2 client, plain HTTP and the shoal CLI. Nothing here is
// mocked. The harness lives in internal/testenv.
//
// Run with `make test-integration` (or `go test ./integration/...`; the
// shoal and versitygw binaries are built on first use, or taken from
// $SHOAL_BIN and $SHOAL_VERSITYGW).
package integration
