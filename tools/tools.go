//go:build tools

// Package tools pins the third-party programs that Shoal's tests and
// benchmarks run (a real S3-compatible server), without adding them to the
// product's dependency graph.
package tools

import (
	_ "github.com/versity/versitygw/cmd/versitygw"
)
