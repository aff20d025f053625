// Command shoal is the Testground plan for Shoal's swarm scenarios
// (BENCHMARKS.md S4, S5, S7): every instance runs a real Shoal node
// in-process, built as `shoal node` builds one, and the instances form a
// private cluster through the sync service.
//
// Test cases:
//
//   - swarm-read (S4): all instances read the same cold object at once.
//   - prefetch-then-read (S5): one instance prefetches a prefix of M
//     objects, then every instance reads all of them.
//   - provide-find (S7): every instance stores and provides chunks; the
//     others measure time-to-findable and FindProviders latency.
//
// Each instance records metrics with runenv.R().RecordPoint and writes
// summary.json to its outputs directory. Run outside Testground as
// `shoal summarize DIR` it prints the report for every summary.json below
// DIR (run-local.sh uses this on the collected outputs).
package main

import (
	"fmt"
	"os"

	"github.com/testground/sdk-go/run"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "summarize" {
		if err := summarize(os.Stdout, os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "summarize:", err)
			os.Exit(1)
		}
		return
	}
	run.InvokeMap(map[string]any{
		"swarm-read":         swarmRead,
		"prefetch-then-read": prefetchThenRead,
		"provide-find":       provideFind,
	})
}
