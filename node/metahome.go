package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/node/placement"
	"github.com/shoal-cache/shoal/origin"
)

// Metadata from a key's home node: a metadata miss (HEAD) is sent to the
// key's home (placement.metaHomes), which answers from its catalog while
// fresh, else asks the origin, so the cluster HEADs each key about once
// per metadata TTL (S3 throttles per prefix; 10,000 nodes each sending a
// HEAD per object per minute are enough to be throttled).

// metaAnswer is a home node's answer to a metadata request (JSON).
type metaAnswer struct {
	// Status is "ok", "nokey" (NoSuchKey) or "nobucket" (NoSuchBucket).
	Status string          `json:"s"`
	Object *catalog.Object `json:"o,omitempty"`
	// Age is how long ago the origin confirmed Object, by the home's clock
	// (a duration, so clock skew between nodes does not matter).
	Age time.Duration `json:"a,omitempty"`
}

const (
	metaOK       = "ok"
	metaNoKey    = "nokey"
	metaNoBucket = "nobucket"
)

func encodeMetaAnswer(a metaAnswer) ([]byte, error) { return json.Marshal(a) }

// decodeMetaAnswer parses and validates a home's answer for bucket/key.
func decodeMetaAnswer(b []byte, bucket, key string) (metaAnswer, error) {
	var a metaAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return metaAnswer{}, fmt.Errorf("node: bad metadata answer: %w", err)
	}
	switch a.Status {
	case metaNoKey, metaNoBucket:
		return metaAnswer{Status: a.Status}, nil
	case metaOK:
	default:
		return metaAnswer{}, fmt.Errorf("node: bad metadata answer status %q", a.Status)
	}
	o := a.Object
	if o == nil || o.Bucket != bucket || o.Key != key || o.Size < 0 || a.Age < 0 || len(o.ETag) > maxETagLen {
		return metaAnswer{}, errors.New("node: bad metadata answer: object missing, negative or for another key")
	}
	return a, nil
}

// headFromHome asks bucket/key's home nodes (in rendezvous order, up to
// this node's own place) for its metadata. ok reports an answer; err is
// then nil or an authoritative origin.ErrNotFound / origin.ErrNoSuchBucket.
func (n *Node) headFromHome(ctx context.Context, bucket, key string, place placement.Placement) (o catalog.Object, ok bool, err error) {
	cl := n.cl
	var req []byte
	for _, p := range placement.Before(place.MetaHomes(bucket, key, n.cfg.Fetch.HomeCandidates), place.Self()) {
		if req == nil {
			req = encodeMetaKey(bucket, key)
		}
		b, err := cl.Transfer.Meta(ctx, p, req)
		if err != nil {
			if ctx.Err() != nil {
				return catalog.Object{}, false, nil
			}
			n.log.Debug("home node could not answer metadata", "home", p, "bucket", bucket, "key", key, "err", err)
			continue
		}
		a, err := decodeMetaAnswer(b, bucket, key)
		if err != nil {
			n.log.Warn("home node sent bad metadata", "home", p, "err", err)
			continue
		}
		n.m.metaHome.Add(1)
		switch a.Status {
		case metaNoKey:
			return catalog.Object{}, true, fmt.Errorf("%s/%s (home %s): %w", bucket, key, p, origin.ErrNotFound)
		case metaNoBucket:
			return catalog.Object{}, true, fmt.Errorf("%s (home %s): %w", bucket, p, origin.ErrNoSuchBucket)
		}
		o := *a.Object
		o.Metadata = maps.Clone(o.Metadata)
		o.CheckedAt = n.now().Add(-a.Age)
		return o, true, nil
	}
	return catalog.Object{}, false, nil
}
