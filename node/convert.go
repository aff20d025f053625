package node

import (
	"maps"

	"github.com/shoal-cache/shoal/catalog"
	"github.com/shoal-cache/shoal/gateway"
	"github.com/shoal-cache/shoal/origin"
)

// Object metadata crosses three boundaries: the origin describes a version
// (origin.ObjectInfo), the catalog keeps that same value with the time the
// origin confirmed it (catalog.Object embeds origin.ObjectInfo), and the
// gateway, which imports nothing of ours, has its own ObjectInfo of the
// same shape. The conversions to and from the gateway's types are here,
// and only here; convert_test.go checks that every field crosses.

// fromOriginInfo is the catalog record of a version the origin described,
// not yet stamped with CheckedAt.
func fromOriginInfo(i origin.ObjectInfo) catalog.Object {
	i.Metadata = maps.Clone(i.Metadata)
	return catalog.Object{ObjectInfo: i}
}

// toGatewayInfo is a version's metadata as the gateway serves it.
func toGatewayInfo(o origin.ObjectInfo) gateway.ObjectInfo {
	return gateway.ObjectInfo{
		Bucket: o.Bucket, Key: o.Key, ETag: o.ETag, Size: o.Size,
		ContentType: o.ContentType, LastModified: o.LastModified, Metadata: maps.Clone(o.Metadata),
		CacheControl: o.CacheControl, ContentDisposition: o.ContentDisposition,
		ContentEncoding: o.ContentEncoding, ContentLanguage: o.ContentLanguage,
		Checksums: gateway.Checksums(o.Checksums),
	}
}

// toOriginPut is an upload as the origin takes it.
func toOriginPut(p gateway.PutParams) origin.PutParams {
	return origin.PutParams{Bucket: p.Bucket, Key: p.Key, Body: p.Body,
		Size: p.Size, ContentType: p.ContentType, Metadata: p.Metadata}
}

// toGatewayList is a listing page as the gateway serves it.
func toGatewayList(r origin.ListResult) gateway.ListResult {
	out := gateway.ListResult{
		CommonPrefixes: append([]string(nil), r.CommonPrefixes...),
		IsTruncated:    r.IsTruncated, NextContinuationToken: r.NextContinuationToken,
		Entries: make([]gateway.ListEntry, len(r.Entries)),
	}
	for i, e := range r.Entries {
		out.Entries[i] = gateway.ListEntry{Key: e.Key, Size: e.Size, ETag: e.ETag, LastModified: e.LastModified}
	}
	return out
}

// toOriginList is a listing request as the origin takes it.
func toOriginList(p gateway.ListParams) origin.ListParams {
	return origin.ListParams{Bucket: p.Bucket, Prefix: p.Prefix, Delimiter: p.Delimiter,
		ContinuationToken: p.ContinuationToken, StartAfter: p.StartAfter, MaxKeys: p.MaxKeys}
}

// toOriginParts is a multipart completion as the origin takes it.
func toOriginParts(parts []gateway.CompletedPart) []origin.CompletedPart {
	ps := make([]origin.CompletedPart, len(parts))
	for i, p := range parts {
		ps[i] = origin.CompletedPart{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	return ps
}
