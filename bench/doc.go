// Package bench owns Shoal's whole-system benchmark scenarios, the ones
// defined in the project's BENCHMARKS.md: real `shoal node` processes in
// front of a real S3-compatible origin (versitygw), driven over loopback by
// a plain-HTTP load generator, each figure measured side by side with its
// baseline in the same run and reported as a ratio.
//
// The package holds the load generator (loadgen.go), the statistics
// (stats.go), the result report (report.go) and the memory sampler of S8
// (procmem.go: VmRSS and VmHWM from /proc/PID/status); the scenarios themselves
// are the test TestScenarios, which runs only when SHOAL_BENCH=1:
//
//	SHOAL_BENCH=1 go test ./bench -run TestScenarios -count=1 -timeout 40m -v
//
// Environment (all optional):
//
//	SHOAL_BENCH_SCENARIOS  comma list of scenarios to run (default S1,S2; M1 and S8
//	                       run only when named: make bench-mount, make bench-mem)
//	SHOAL_BENCH_SIZE       S1 object size (default 1GiB; e.g. 64MiB for a quick run)
//	SHOAL_BENCH_RUNS       runs per figure, at least 3 (default 5 for S1, 3 for S2)
//	SHOAL_BENCH_OBJECTS    S2 object count (default 2000)
//	SHOAL_BENCH_CONNS      S2 concurrent connections (default 64)
//	SHOAL_BENCH_DURATION   S2 measured time per run (default 8s, after a 1s warm-up)
//	SHOAL_BENCH_S8_CHUNKS  blocks S8's idle node indexes (default 1000000)
//	SHOAL_BENCH_S8_SIZE    object S8 streams through the gateway (default 10GiB)
//	SHOAL_BENCH_HASH       the nodes' chunk hash, sha2-256 or blake3 (default: the
//	                       node's, sha2-256)
//	SHOAL_BENCH_OUT        JSON results file (default <module root>/.bench/results.json;
//	                       a relative path is taken from the module root)
//	SHOAL_BIN              a prebuilt shoal binary (default: internal/testenv builds ./cmd/shoal)
//
// The load generator sends plain GETs of ready-made URLs: presigned URLs for
// the origin (so the client pays no signing cost) and anonymous loopback URLs
// for the gateway, through the same tuned http.Transport. Every body is read
// to the end and its length checked; wrong statuses and sizes are counted as
// errors, and a figure with errors is reported as such. Content is verified
// (SHA-256) on the warm-up reads, outside the timed runs. Each scenario also
// reports a "generator ceiling": the same generator against an in-process
// server answering from memory, the most any figure can reach on the
// machine. Targets are reported (met yes/no), never asserted.
package bench
