// Package swarm owns Shoal's multi-node benchmark scenarios S3 and S4 of the
// project's BENCHMARKS.md, and L1 (the lone cold reader) added to them: real `shoal node` processes, each in its own Linux
// network namespace, joined through a bridge by veth links that tc shapes to
// a rate B in both directions (tbf; netem is not available here), in front
// of a real S3-compatible origin (versitygw) in a namespace of its own whose
// link is shaped the same way.
//
// The package holds the lab (namespaces, bridge, veth pairs, tc: lab.go;
// sockets opened inside a namespace: netns.go), the origin with its
// counting proxy (origin.go), the node processes (nodes.go), the reader
// that runs in a node's namespace and times and hashes one GET (reader.go),
// the scenarios (scenarios.go, s3.go, l1.go), L1's narrow origin paths
// (htb.go), the settings (settings.go) and the report (report.go,
// l1report.go). The scenarios are the test TestSwarmScenarios, which runs only
// as root with SHOAL_BENCH_SWARM=1:
//
//	SHOAL_BENCH_SWARM=1 go test ./bench/swarm -run TestSwarmScenarios -count=1 -timeout 60m -v
//
// Environment (all optional):
//
//	SHOAL_SWARM_SCENARIOS  comma list: S3, S4, L1 (default S3,S4; L1 is opt-in)
//	SHOAL_SWARM_NODES      S4 and L1 node count N (default 8; 16 and 32 work too)
//	SHOAL_SWARM_SIZE       S4 and L1 object size S (default 256MiB)
//	SHOAL_SWARM_RATE       S4 and L1 link rate B in bits per second: 200mbit, 1gbit, ... (default 200mbit)
//	SHOAL_SWARM_ORIGIN_PATH_RATE  L1's per-node origin path rate B_o, same
//	                       forms as SHOAL_SWARM_RATE (default B/4)
//	SHOAL_SWARM_RUNS       runs per figure, at least 1; medians need 3 (default 3)
//	SHOAL_SWARM_S3_SIZE    S3 object size (default 1GiB)
//	SHOAL_SWARM_CHUNK      node chunk size (default: the node's own)
//	SHOAL_SWARM_NODE_ARGS  extra `shoal node` flags, space separated
//	SHOAL_SWARM_DIRECT     0 skips S4's direct-from-origin baseline (N*S/B
//	                       per run) for quick iterations (default 1)
//	SHOAL_SWARM_OUT        JSON results file (default <module root>/.bench/swarm.json)
//	SHOAL_SWARM_KEEP       keep node logs and data directories in this directory (default: removed)
//	SHOAL_BIN, SHOAL_VERSITYGW  binaries to use (default: built like the tests do)
//	SHOAL_IPFS             kubo's ipfs binary for the S3 baseline (default
//	                       <module root>/bin/ipfs, built there by BuildKubo if
//	                       missing: several minutes, once); "none" skips kubo
//
// S4 per run: the N node namespaces first read the object straight from the
// origin (presigned GETs, the baseline), then N fresh (cold) nodes start,
// wait until each sees the other N-1, and all read it through their own
// gateways at one common instant. Per-node time runs from that instant to
// the last byte; every body is SHA-256-checked. The origin proxy counts
// object GETs, distinct ranges, bytes and the time of its last byte (so a
// run shows how long the origin link set the pace and how long the fan-out
// after it took); the machine's CPU busy fraction during the read is
// recorded too, and each node's CPU-seconds during the read (/proc/PID/stat)
// per GiB its reader received: the cluster mean and the busiest node. One
// iperf3 stream over a shaped link gives the goodput B allows (a little
// below B: headers).
//
// S3 per run: a fresh node B reads the object through its gateway while
// node A holds it (A read it once through its own gateway); iperf3 (one
// stream, B receiving) and kubo (`ipfs cat` on B of a file added on A, B's
// blocks garbage-collected between runs) run between the same two
// namespaces, on unshaped links. Cost: A's and B's CPU-seconds per GiB
// during B's read, next to iperf3's two processes and kubo's two daemons;
// run 1 saves CPU profiles of A and B beside the results
// (s3-A-send.cpu.pprof, s3-B-receive.cpu.pprof; the nodes run with --pprof).
//
// L1, the lone cold reader (issue 3, point 5: a cold read by one node pulls
// different chunks through many home nodes at once, so a lone reader is
// faster than from the origin alone). The premise is that each node's path
// to the origin (S3 per-connection caps, a NAT gateway, another region) is
// narrower than the fabric between nodes. The lab is S4's (N nodes, every
// link tbf-shaped to B) plus, on the origin's side of its veth, an htb root
// with one class per node address (u32 `ip dst` filters) at rate = ceil =
// B_o under a parent class at B_origin = N x B_o, so each node reads the
// origin at most at B_o while the origin's own link is never the
// bottleneck; the bridge side of the origin's link (requests) is a tbf at
// B_origin. One iperf3 stream from the origin to the reader checks the
// shaping (a little below B_o). Per run, all in the reader's namespace
// (host 1): (a) one GET straight from the origin; (b) a standalone node
// (no cluster, fresh data dir) reads the object cold through its gateway
// (the same software with its parallel ranged GETs, over the one narrow
// path); then N fresh nodes start as a cluster, wait to see each other,
// and only the reader reads the object through its gateway. Every body is
// SHA-256-checked and the origin proxy counts bytes and GETs of each read.
// Figures: the cluster read's time against S/B, S/B_o and both baselines;
// speedup = (b) / cluster (ideal min(B, N x B_o) / B_o); origin bytes / S.
// A second pass at B_o = B (skipped when B_o is B already) is the case
// with nothing to gain, where the honest expectation is about 1x.
//
// Every run builds a fresh lab and removes it on the way out, success or
// not; a lab left behind by a crashed run (its lock file no longer held) is
// removed at the start of the next one. Names carry the prefix "shs<id>-"
// (namespaces), "shb<id>" (bridge) and addresses are in 10.77.<id>.0/24,
// which exist only inside the namespaces the lab creates.
//
// When the shoal binary has no --p2p-listen flag (a tree without the
// cluster), S4 still runs with independent nodes, so the lab, the shaping,
// the origin counting and the baselines can be checked; the report says
// p2p=false.
package swarm
