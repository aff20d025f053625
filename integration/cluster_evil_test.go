package integration

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// liar is a member that serves the object's manifest honestly (so a cold
// node learns the chunk CIDs from it) and wrong bytes for every chunk.
type liar struct {
	honest map[cid.Cid][]byte
	sizes  map[cid.Cid]int
}

func (l liar) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	if b, ok := l.honest[c]; ok {
		return b, nil
	}
	n, ok := l.sizes[c]
	if !ok {
		return nil, transfer.ErrNotFound
	}
	return bytes.Repeat([]byte{0xEE}, n), nil
}

func (l liar) Fetch(context.Context, []byte) (cid.Cid, []byte, error) {
	return cid.Undef, nil, transfer.ErrNotFound
}

func (l liar) Meta(context.Context, []byte) ([]byte, error) { return nil, transfer.ErrNotFound }

// inProcessMember starts a libp2p host with the cluster's swarm key and a
// DHT on it, connected to the given nodes.
func inProcessMember(t *testing.T, ctx context.Context, swarmKeyFile string, nodes ...*testenv.Node) (host.Host, *routing.Router) {
	t.Helper()
	key, err := routing.LoadSwarmKey(swarmKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := routing.NewHost(ctx, routing.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, PrivKey: priv, SwarmKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r, err := routing.NewDHT(ctx, h, routing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, n := range nodes {
		ai, err := peer.AddrInfoFromString(n.P2PAddrs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, *ai); err != nil {
			t.Fatalf("connect to node %s: %v", n.PeerID, err)
		}
	}
	return h, r
}

// A member that serves corrupt bytes is caught: the reader gets the right
// bytes and the node counts the corruption.
func TestClusterDetectsCorruptPeer(t *testing.T) {
	t.Parallel()
	const chunks = 4
	const size = chunks * mib
	data := randomBytes(size, 106)
	keyFile := testenv.NewSwarmKey(t)
	opts := clusterOpts()
	opts.SwarmKeyFile = keyFile
	// Node A alone reads the object (so it is the only honest holder of
	// every chunk); node C joins afterwards, cold.
	s, nodes := startS3Cluster(t, "evil", 1, opts)
	s.PutObject(t, "evil", "obj.bin", data)
	a := nodes[0]
	mustGet(t, a.Client(t), "evil", "obj.bin", data)
	opts.Origin, opts.S3 = "s3", s
	opts.Bootstrap = a.P2PAddrs
	// Node C must learn the chunk CIDs from the manifest record (the
	// evil member's announcements are what this test is about): on a
	// loaded machine the DHT lookup, with node A just killed, can take
	// longer than the default 100 ms a fetch waits for it before it goes
	// to the origin, and C would read the object without meeting the liar.
	opts.ExtraArgs = append(opts.ExtraArgs, "--manifest-wait", "10s")
	c := testenv.StartNode(t, opts)
	testenv.WaitMembers(t, a, c)

	// The chunk CIDs, computed as the nodes do: sha2-256 raw CIDs of 1 MiB
	// slices.
	sizes := map[cid.Cid]int{}
	var cids []cid.Cid
	for off := 0; off < size; off += mib {
		chunk := data[off:min(off+mib, size)]
		id := content.Sum(content.SHA256, chunk)
		sizes[id] = len(chunk)
		cids = append(cids, id)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	evilHost, evilDHT := inProcessMember(t, ctx, keyFile, a, c)

	// The evil member copies the manifest from node A (the only holder of
	// its record and block, having read the object alone), re-publishes the
	// record and will serve the manifest block: node C can then learn the
	// chunk CIDs with A gone, and finds the evil member as their provider.
	head, err := a.Client(t).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("evil"), Key: aws.String("obj.bin")})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(head.ETag)
	var rec routing.ManifestRecord
	for _, e := range []string{etag, strings.Trim(etag, `"`)} {
		var recs []routing.ManifestRecord
		if recs, err = evilDHT.GetManifestRecords(ctx, "evil", "obj.bin", e, mib, string(content.SHA256)); err == nil {
			rec = recs[0]
			break
		}
	}
	if err != nil {
		t.Fatalf("manifest record of the object not found through node A: %v", err)
	}
	if err := evilDHT.PutManifestRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	client, err := transfer.NewClient(evilHost, transfer.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	aID, err := peer.Decode(a.PeerID)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := client.GetBlock(ctx, rec.Manifest, []peer.AddrInfo{{ID: aID}})
	if err != nil {
		t.Fatalf("manifest block from node A: %v", err)
	}
	srv, err := transfer.NewServer(evilHost, liar{honest: map[cid.Cid][]byte{rec.Manifest: manifest}, sizes: sizes}, transfer.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	srvCtx, srvCancel := context.WithCancel(context.Background())
	go func() { srvDone <- srv.Run(srvCtx) }()
	t.Cleanup(func() {
		srvCancel()
		if err := <-srvDone; err != nil {
			t.Errorf("evil server: %v", err)
		}
	})
	<-srv.Ready()
	cids = append(cids, rec.Manifest)
	for _, id := range cids {
		if err := evilDHT.Provide(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the lie is findable through the cluster's DHT (a probe
	// member asks).
	_, probe := inProcessMember(t, ctx, keyFile, c)
	for _, id := range cids {
		for {
			ais, err := probe.FindProviders(ctx, id, 0)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			if slices.ContainsFunc(ais, func(ai peer.AddrInfo) bool { return ai.ID == evilHost.ID() }) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the evil peer's announcement of %s never became findable", id)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	a.Kill() // fewer honest providers
	before := metricSum(t, c, "shoal_transfer_corrupt_total")
	mustGet(t, c.Client(t), "evil", "obj.bin", data)
	after := metricSum(t, c, "shoal_transfer_corrupt_total")
	t.Logf("corrupt providers caught by node C: %v; origin %+v", after-before, s.Counts())
	if after <= before {
		t.Fatalf("node C read the object correctly but did not count the corrupt peer (shoal_transfer_corrupt_total %v -> %v)\n%s",
			before, after, tail(c.Log(), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
