package node

import (
	"context"
	"io"

	"github.com/shoal-cache/shoal/gateway"
)

// Writes pass through to the origin; then the node forgets what it cached
// for the key (metadata, chunk index, negative entry) and the bucket's
// listings, so the next read sees the new version.

// invalidate forgets cached state for bucket/key.
func (n *Node) invalidate(ctx context.Context, bucket, key string) {
	n.writeGen.Add(1)
	// The invalidation must happen even if the caller's request is gone.
	ctx = context.WithoutCancel(ctx)
	if o, err := n.cat.GetObject(ctx, bucket, key); err == nil {
		n.forget(ctx, o)
	}
	n.neg.delete(objKey(bucket, key))
	n.listc.deletePrefix(bucket + "\x00")
}

// PutObject writes through to the origin.
func (n *Node) PutObject(ctx context.Context, p gateway.PutParams) (gateway.ObjectInfo, error) {
	info, err := n.org.PutObject(ctx, toOriginPut(p))
	n.invalidate(ctx, p.Bucket, p.Key) // also on error: the write may have landed
	if err != nil {
		return gateway.ObjectInfo{}, mapErr("put "+p.Bucket+"/"+p.Key, err)
	}
	return toGatewayInfo(info), nil
}

// DeleteObject deletes at the origin.
func (n *Node) DeleteObject(ctx context.Context, bucket, key string) error {
	err := n.org.DeleteObject(ctx, bucket, key)
	n.invalidate(ctx, bucket, key)
	return mapErr("delete "+bucket+"/"+key, err)
}

// CreateMultipartUpload passes through.
func (n *Node) CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	id, err := n.org.CreateMultipartUpload(ctx, bucket, key, contentType, meta)
	return id, mapErr("create multipart "+bucket+"/"+key, err)
}

// UploadPart passes through.
func (n *Node) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error) {
	etag, err := n.org.UploadPart(ctx, bucket, key, uploadID, partNumber, body, size)
	return etag, mapErr("upload part "+bucket+"/"+key, err)
}

// CompleteMultipartUpload passes through, then invalidates the key.
func (n *Node) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []gateway.CompletedPart) (gateway.ObjectInfo, error) {
	info, err := n.org.CompleteMultipartUpload(ctx, bucket, key, uploadID, toOriginParts(parts))
	n.invalidate(ctx, bucket, key)
	if err != nil {
		return gateway.ObjectInfo{}, mapErr("complete multipart "+bucket+"/"+key, err)
	}
	return toGatewayInfo(info), nil
}

// AbortMultipartUpload passes through.
func (n *Node) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	return mapErr("abort multipart "+bucket+"/"+key, n.org.AbortMultipartUpload(ctx, bucket, key, uploadID))
}
