package integration

import (
	"context"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-cache/shoal/internal/content"
	"github.com/shoal-cache/shoal/internal/integrity"
	"github.com/shoal-cache/shoal/internal/testenv"
	"github.com/shoal-cache/shoal/node"
	"github.com/shoal-cache/shoal/routing"
	"github.com/shoal-cache/shoal/transfer"
)

// originCRC is the full-object CRC the origin reports for an object (with
// checksum mode on, as the node asks), as a manifest checksum algorithm
// and a function of the bytes; SumNone if it reports none.
func originCRC(t *testing.T, s *testenv.S3, bucket, key string) (byte, func([]byte) uint64) {
	t.Helper()
	h, err := s.Client(t).HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("origin integrity data: type %q crc64nvme %q crc32c %q crc32 %q etag %s", h.ChecksumType,
		aws.ToString(h.ChecksumCRC64NVME), aws.ToString(h.ChecksumCRC32C), aws.ToString(h.ChecksumCRC32), aws.ToString(h.ETag))
	if h.ChecksumType != "" && h.ChecksumType != types.ChecksumTypeFullObject {
		return node.SumNone, nil
	}
	switch {
	case aws.ToString(h.ChecksumCRC64NVME) != "":
		return node.SumCRC64NVME, integrity.ChecksumCRC64NVME
	case aws.ToString(h.ChecksumCRC32C) != "":
		return node.SumCRC32C, func(b []byte) uint64 { return uint64(integrity.ChecksumCRC32C(b)) }
	case aws.ToString(h.ChecksumCRC32) != "":
		return node.SumCRC32, func(b []byte) uint64 { return uint64(crc32.ChecksumIEEE(b)) }
	}
	return node.SumNone, nil
}

// An evil member (a real libp2p peer holding the swarm key) publishes a
// signed manifest record for an object's version, dated before the honest
// one so that it wins the DHT's selection, naming a forged manifest whose
// chunk CIDs and checksums match bytes it made up, and serves those blocks.
// A node that joins cold reads the origin's bytes all the same: the
// origin's full-object CRC disproves the manifest, the publisher is
// penalized and no forged block is kept. The honest node's record is
// refused too when dated far ahead (the clock-skew bound).
func TestClusterRefusesForgedManifest(t *testing.T) {
	t.Parallel()
	const size = 4 * mib
	data := randomBytes(size, 207)
	keyFile := testenv.NewSwarmKey(t)
	opts := clusterOpts()
	opts.SwarmKeyFile = keyFile
	s, nodes := startS3Cluster(t, "forge", 1, opts)
	s.PutObject(t, "forge", "model.bin", data)
	alg, sum := originCRC(t, s, "forge", "model.bin")
	if alg == node.SumNone {
		t.Skip("the S3 server reports no full-object CRC for a PutObject: this case needs one (spot checks cover the rest, see node tests)")
	}
	a := nodes[0]
	mustGet(t, a.Client(t), "forge", "model.bin", data)
	head, err := a.Client(t).HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("forge"), Key: aws.String("model.bin")})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(head.ETag)

	// The forgery: other bytes of the same size, chunked as the nodes do.
	forged := randomBytes(size, 208)
	m := node.Manifest{Bucket: "forge", Key: "model.bin", ETag: etag, Size: size, ChunkSize: mib,
		Hash: content.SHA256, SumAlg: alg}
	blocks := map[cid.Cid][]byte{}
	sizes := map[cid.Cid]int{}
	for off := 0; off < size; off += mib {
		b := forged[off : off+mib]
		c := content.Sum(content.SHA256, b)
		m.Chunks = append(m.Chunks, c)
		m.Sums = append(m.Sums, sum(b))
		blocks[c], sizes[c] = b, len(b)
	}
	mc, mb := m.CID()
	blocks[mc] = mb

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	evilHost, evilDHT := inProcessMember(t, ctx, keyFile, a)
	srv, err := transfer.NewServer(evilHost, liar{honest: blocks, sizes: sizes}, transfer.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, srvCancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	t.Cleanup(func() {
		srvCancel()
		if err := <-srvDone; err != nil {
			t.Errorf("evil server: %v", err)
		}
	})
	<-srv.Ready()
	for c := range blocks {
		if err := evilDHT.Provide(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	rec := routing.ManifestRecord{Bucket: "forge", Key: "model.bin", ETag: etag, Size: size, ChunkSize: mib,
		Hash: string(content.SHA256), Manifest: mc}
	// Dated far ahead ("newest wins" would have made it stick): refused.
	rec.Timestamp = time.Now().Add(24 * time.Hour)
	if err := evilDHT.PutManifestRecord(ctx, rec); !errors.Is(err, routing.ErrBadRecord) {
		t.Fatalf("a record dated a day ahead: %v, want refused as a bad record", err)
	}
	// Dated a little before the honest one: valid, and the DHT prefers it.
	rec.Timestamp = time.Now().Add(-time.Minute)
	for {
		err := evilDHT.PutManifestRecord(ctx, rec)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the member's table fills as identify confirms its peers
	}
	recs, err := evilDHT.GetManifestRecords(ctx, "forge", "model.bin", etag, mib, string(content.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	if !recs[0].Manifest.Equals(mc) {
		t.Fatalf("test setup: the DHT settles on %s, not the forged manifest %s", recs[0].Manifest, mc)
	}

	// A node joins cold and reads the object.
	opts.Origin, opts.S3 = "s3", s
	opts.Bootstrap = a.P2PAddrs
	c := testenv.StartNode(t, opts)
	testenv.WaitMembers(t, a, c)
	mustGet(t, c.Client(t), "forge", "model.bin", data)
	// SDKs that validate checksums check Shoal too: the gateway passes the
	// origin's on.
	out, err := c.Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("forge"), Key: aws.String("model.bin"),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if got := firstNonEmpty(aws.ToString(out.ChecksumCRC64NVME), aws.ToString(out.ChecksumCRC32C), aws.ToString(out.ChecksumCRC32)); got == "" {
		t.Error("the gateway did not pass the origin's checksum header on")
	} else if _, err := base64.StdEncoding.DecodeString(got); err != nil {
		t.Errorf("checksum header %q: %v", got, err)
	}

	rejected := metricSum(t, c, "shoal_node_manifests_rejected_total")
	penalized := metricSum(t, c, "shoal_node_lies_penalized_total")
	t.Logf("node C: manifests rejected %v, liars penalized %v, conflicts %v, forgeries %v", rejected, penalized,
		metricSum(t, c, "shoal_node_manifest_conflicts_total"), metricSum(t, c, "shoal_node_forgeries_total"))
	if rejected < 1 || penalized < 1 {
		t.Errorf("node C did not refuse the forged manifest and penalize its publisher (rejected %v, penalized %v)\n%s",
			rejected, penalized, tail(c.Log(), 4000))
	}
	if !strings.Contains(c.Log(), "disproved by the origin") {
		t.Error("node C logged nothing about the disproved manifest")
	}
	// No forged block is kept (or served) by node C.
	client, err := transfer.NewClient(evilHost, transfer.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cID, err := peer.Decode(c.PeerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, fc := range m.Chunks {
		if _, err := client.GetBlock(ctx, fc, []peer.AddrInfo{{ID: cID}}); err == nil {
			t.Errorf("node C serves the forged block %s", fc)
		}
	}
	// With the honest node gone, node C still serves the origin's bytes
	// (from its store).
	a.Kill()
	mustGet(t, c.Client(t), "forge", "model.bin", data)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
