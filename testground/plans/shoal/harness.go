package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/testground/sdk-go/network"
	"github.com/testground/sdk-go/run"
	"github.com/testground/sdk-go/runtime"
	tgsync "github.com/testground/sdk-go/sync"

	"github.com/shoal-cache/shoal/node"
)

// addrMsg announces one instance's node on the sync service.
type addrMsg struct {
	Seq   int      `json:"seq"`
	Addrs []string `json:"addrs"` // full multiaddrs (/p2p/<id>)
}

// objectMsg announces a seeded object: key and hex sha256.
type objectMsg struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

var (
	addrTopic    = tgsync.NewTopic("shoal-addrs", &addrMsg{})
	objectsTopic = tgsync.NewTopic("shoal-objects", &[]objectMsg{})
)

// instance is one running test instance: its parameters, sync client, node
// and origin.
type instance struct {
	runenv *runtime.RunEnv
	ic     *run.InitContext
	p      params
	seq, n int
	rawOrg node.Origin // the origin without counting (seeding, baseline)
	m      *member
	sum    summary
	closes []func() error

	marked       originCounts // origin counters at the last mark
	markedStatus node.Status  // node status at the last mark
}

// mark snapshots the origin counters and the node's status: the read
// phase's figures are counted from the last mark.
func (in *instance) mark(ctx context.Context) error {
	in.marked = in.m.origin.counts()
	st, err := in.m.node.Status(ctx)
	in.markedStatus = st
	return err
}

// runCase parses the parameters, sets the instance up (seed runs on
// instance 1 only), forms the cluster, runs body and finishes (summary,
// final barrier, close).
func runCase(runenv *runtime.RunEnv, ic *run.InitContext,
	seed func(context.Context, *instance) ([]objectMsg, error),
	body func(context.Context, *instance, []objectMsg) error,
) error {
	p, err := parseParams(func(name string) string {
		if !runenv.IsParamSet(name) {
			return ""
		}
		return runenv.StringParam(name)
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	in, objs, err := setup(ctx, runenv, ic, p, seed)
	if err == nil {
		err = in.formCluster(ctx)
	}
	if err == nil {
		err = body(ctx, in, objs)
	}
	if err == nil {
		err = in.m.failed()
	}
	return in.finish(ctx, err)
}

// setup shapes the network when the runner can, opens the origin, lets
// instance 1 seed the objects (seed returns them) and starts the node. The
// objects are returned on every instance. The instance is returned even on
// error, for finish.
func setup(ctx context.Context, runenv *runtime.RunEnv, ic *run.InitContext, p params, seed func(context.Context, *instance) ([]objectMsg, error)) (*instance, []objectMsg, error) {
	in := &instance{runenv: runenv, ic: ic, p: p, seq: int(ic.GlobalSeq), n: runenv.TestInstanceCount}
	in.sum = summary{TestCase: runenv.TestCase, Run: runenv.TestRun, Instance: in.seq, Instances: in.n,
		ObjectSize: p.ObjectSize, ChunkSize: p.ChunkSize, Bandwidth: p.Bandwidth, BootstrapK: p.BootstrapK, Objects: 1}

	if err := in.shape(ctx); err != nil {
		return in, nil, err
	}
	org, closeOrg, err := openOrigin(ctx, p, runenv.TestRun)
	if err != nil {
		return in, nil, err
	}
	in.rawOrg = org
	in.closes = append(in.closes, closeOrg)

	var objs []objectMsg
	if in.seq == 1 {
		start := time.Now()
		objs, err = seed(ctx, in)
		if err != nil {
			return in, nil, err
		}
		runenv.RecordMessage("seeded %d objects in %v", len(objs), time.Since(start))
		if _, err := ic.SyncClient.Publish(ctx, objectsTopic, &objs); err != nil {
			return in, nil, err
		}
	} else {
		ch := make(chan *[]objectMsg, 1)
		sub, err := ic.SyncClient.Subscribe(ctx, objectsTopic, ch)
		if err != nil {
			return in, nil, err
		}
		select {
		case o := <-ch:
			objs = *o
		case err := <-sub.Done():
			return in, nil, fmt.Errorf("waiting for the seeded objects: %w", err)
		case <-ctx.Done():
			return in, nil, fmt.Errorf("waiting for the seeded objects: %w", ctx.Err())
		}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if runenv.BooleanParam("debug") {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ip := ic.NetClient.MustGetDataNetworkIP() // 127.0.0.1 under local:exec
	in.m, err = newMember(ctx, memberConfig{
		ListenAddr: fmt.Sprintf("/ip4/%s/tcp/0", ip),
		SwarmKey:   swarmKeyFor(runenv.TestRun),
		Membership: p.Membership,
		DataDir:    runenv.TestTempPath,
		ChunkSize:  p.ChunkSize,
		MemCache:   p.MemCache,
		DiskCache:  p.DiskCache,
	}, org, log)
	if err != nil {
		return in, nil, err
	}
	in.closes = append(in.closes, in.m.Close)
	return in, objs, nil
}

// shape applies the bandwidth limit through the sidecar. local:exec has no
// sidecar (no traffic shaping): the limit is then only reported.
func (in *instance) shape(ctx context.Context) error {
	if !in.runenv.TestSidecar {
		if in.p.Bandwidth > 0 {
			in.runenv.RecordMessage("bandwidth %d B/s NOT applied: this runner has no traffic shaping", in.p.Bandwidth)
		}
		return nil
	}
	in.ic.NetClient.MustWaitNetworkInitialized(ctx)
	if in.p.Bandwidth == 0 {
		return nil
	}
	if err := in.ic.NetClient.ConfigureNetwork(ctx, &network.Config{
		Network:        network.DefaultDataNetwork,
		Enable:         true,
		Default:        network.LinkShape{Bandwidth: uint64(in.p.Bandwidth)},
		CallbackState:  "network-shaped",
		CallbackTarget: in.runenv.TestInstanceCount,
		RoutingPolicy:  network.AllowAll,
	}); err != nil {
		return fmt.Errorf("shaping the network: %w", err)
	}
	in.sum.Shaped = true
	return nil
}

// barrier signals state and waits for every instance.
func (in *instance) barrier(ctx context.Context, state string) error {
	if _, err := in.ic.SyncClient.SignalAndWait(ctx, tgsync.State(state), in.n); err != nil {
		return fmt.Errorf("barrier %s: %w", state, err)
	}
	return nil
}

// formCluster publishes this node's addresses, connects to its bootstrap
// targets, waits until it sees every peer it should (its targets and the
// instances that target it) as members, refreshes the DHT and waits on the
// "ready" barrier.
func (in *instance) formCluster(ctx context.Context) error {
	h := in.m.host
	msg := addrMsg{Seq: in.seq}
	for _, a := range h.Addrs() {
		msg.Addrs = append(msg.Addrs, a.String()+"/p2p/"+h.ID().String())
	}
	ch := make(chan *addrMsg, in.n)
	_, sub, err := in.ic.SyncClient.PublishSubscribe(ctx, addrTopic, &msg, ch)
	if err != nil {
		return err
	}
	all := map[int]peer.AddrInfo{}
	for len(all) < in.n {
		select {
		case a := <-ch:
			infos, err := parseAddrs(a.Addrs)
			if err != nil {
				return fmt.Errorf("instance %d addresses: %w", a.Seq, err)
			}
			all[a.Seq] = infos
		case err := <-sub.Done():
			return fmt.Errorf("collecting addresses: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("collecting addresses: %w", ctx.Err())
		}
	}
	for _, t := range bootstrapTargets(in.seq, in.n, in.p.BootstrapK) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := h.Connect(cctx, all[t])
		cancel()
		if err != nil {
			return fmt.Errorf("connecting to instance %d: %w", t, err)
		}
	}
	if err := in.barrier(ctx, "connected"); err != nil {
		return err
	}
	want := len(expectedNeighbours(in.seq, in.n, in.p.BootstrapK))
	for len(in.m.members.Members()) < want || in.m.router.RoutingTableSize() < min(want, 1) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d members (have %d): %w", want, len(in.m.members.Members()), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = in.m.router.Bootstrap(bctx)
	cancel()
	if err != nil {
		return err
	}
	if err := in.mark(ctx); err != nil {
		return err
	}
	if err := in.barrier(ctx, "ready"); err != nil {
		return err
	}
	in.sum.Peers = len(in.m.members.Members())
	in.runenv.RecordMessage("cluster ready: %d members, routing table %d", in.sum.Peers, in.m.router.RoutingTableSize())
	return nil
}

func parseAddrs(addrs []string) (peer.AddrInfo, error) {
	var out peer.AddrInfo
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return out, err
		}
		if out.ID != "" && out.ID != ai.ID {
			return out, errors.New("addresses of two peers")
		}
		out.ID = ai.ID
		out.Addrs = append(out.Addrs, ai.Addrs...)
	}
	if out.ID == "" {
		return out, errors.New("no address")
	}
	return out, nil
}

// status copies the node's chunk-source counters into the summary
// (difference since before).
func (in *instance) chunkSources(ctx context.Context, before node.Status) error {
	st, err := in.m.node.Status(ctx)
	if err != nil {
		return err
	}
	in.sum.ChunkHits = st.ChunkHits - before.ChunkHits
	in.sum.ChunkPeer = st.ChunkPeer - before.ChunkPeer
	in.sum.ChunkHome = st.ChunkHome - before.ChunkHome
	in.sum.ChunkOrigin = st.ChunkOrigin - before.ChunkOrigin
	return nil
}

// finish records the summary's metrics, writes summary.json, waits for
// every instance to be done (so no node leaves while others still read
// from it) and closes everything. The seeder removes a per-run origin
// directory it created.
func (in *instance) finish(ctx context.Context, runErr error) error {
	if runErr != nil {
		in.sum.Error = runErr.Error()
	}
	{
		r := in.runenv.R()
		for name, v := range map[string]float64{
			"read_seconds":     in.sum.ReadSeconds,
			"read_bytes":       float64(in.sum.ReadBytes),
			"origin_bytes":     float64(in.sum.OriginBytes),
			"origin_gets":      float64(in.sum.OriginGets),
			"baseline_seconds": in.sum.BaselineSeconds,
			"prefetch_seconds": in.sum.PrefetchSeconds,
			"chunks_peer":      float64(in.sum.ChunkPeer),
			"chunks_home":      float64(in.sum.ChunkHome),
			"chunks_origin":    float64(in.sum.ChunkOrigin),
		} {
			r.RecordPoint(name, v)
		}
		for _, v := range in.sum.FindMillis {
			r.RecordPoint("find_providers_ms", v)
		}
		for _, v := range in.sum.FindableMillis {
			r.RecordPoint("time_to_findable_ms", v)
		}
	}
	var errs []error
	if runErr != nil {
		errs = append(errs, runErr)
	}
	b, err := json.MarshalIndent(in.sum, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(in.runenv.TestOutputsPath, summaryFile), b, 0o644)
	}
	errs = append(errs, err)
	if runErr == nil {
		// On error, do not wait: the others fail on their own barriers or
		// timeouts, and waiting here would only hide the first error.
		errs = append(errs, in.barrier(ctx, "end"))
	}
	if in.m != nil {
		in.runenv.RecordMessage("read %d bytes in %.3f s; origin %d bytes, %d GETs", in.sum.ReadBytes, in.sum.ReadSeconds, in.sum.OriginBytes, in.sum.OriginGets)
	}
	for i := len(in.closes) - 1; i >= 0; i-- {
		errs = append(errs, in.closes[i]())
	}
	if in.seq == 1 && in.p.Origin == originDir && in.p.OriginDir == "" {
		errs = append(errs, os.RemoveAll(sharedOriginDir(in.p, in.runenv.TestRun)))
	}
	return errors.Join(errs...)
}

// expectedNeighbours returns the instances seq ends up connected to: its
// bootstrap targets and the instances whose targets include seq.
func expectedNeighbours(seq, n, k int) []int {
	var out []int
	for j := 1; j <= n; j++ {
		if j == seq {
			continue
		}
		if contains(bootstrapTargets(seq, n, k), j) || contains(bootstrapTargets(j, n, k), seq) {
			out = append(out, j)
		}
	}
	return out
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
