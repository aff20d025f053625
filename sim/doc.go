// Package sim owns Shoal's scale simulation: what a cluster of thousands
// of nodes would do, where real processes cannot reach (X1 of the
// project's benchmark list).
//
// It is a flow-level model, not a packet one: links (every node's NIC up
// and down, every node's path to the origin, the origin's own link, rack
// uplinks and downlinks with their oversubscription) have capacities, and
// the flows over them share them max-min fairly (flow.go); a peer that is
// streamed a chunk its home is still reading from the origin cannot get
// ahead of the home's origin read (cut-through).
//
// Who is home is never computed here: the simulation imports the read
// path's own placement (package node/placement: the rendezvous order,
// balanced windows, home read-ahead's own chunks, the origin share of a
// version) and the read path's defaults (package node: chunk size,
// read-ahead, origin streams, home candidates, providers; package
// transfer: providers pulled from at once). What it models of the read
// path's policy is written next to each scenario (cold.go, cache.go),
// together with what it leaves out.
//
// The scenarios run over many seeds (a seed draws the nodes' identities
// and the objects' names, hence the placement; and, in the cache scenario,
// the request stream) and report p5, p50 and p95 across seeds (report.go).
// `make bench-sim` runs them and writes .bench/sim.json.
package sim
