package gateway

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

const (
	// maxListKeys is S3's page size cap for ListObjects.
	maxListKeys = 1000
	s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"
	// iso8601Millis is the timestamp format of S3 XML bodies.
	iso8601Millis = "2006-01-02T15:04:05.000Z"
)

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type listAllMyBucketsResult struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

func (g *Gateway) listBuckets(req *request) error {
	bs, err := g.be.ListBuckets(req.r.Context())
	if err != nil {
		return err
	}
	out := listAllMyBucketsResult{Owner: owner{ID: "shoal", DisplayName: "shoal"}}
	for _, b := range bs {
		out.Buckets = append(out.Buckets, bucketEntry{Name: b.Name, CreationDate: xmlTime(b.CreationDate)})
	}
	if req.r.Method == http.MethodHead {
		req.w.WriteHeader(http.StatusOK)
		return nil
	}
	return g.writeXML(req, out)
}

func (g *Gateway) headBucket(req *request) error {
	region, err := g.be.BucketLocation(req.r.Context(), req.rt.bucket)
	if err != nil {
		return err
	}
	if region == "" {
		region = DefaultRegion
	}
	req.w.Header().Set("x-amz-bucket-region", region)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Region  string   `xml:",chardata"`
}

func (g *Gateway) bucketLocation(req *request) error {
	region, err := g.be.BucketLocation(req.r.Context(), req.rt.bucket)
	if err != nil {
		return err
	}
	if region == DefaultRegion {
		region = ""
	}
	return g.writeXML(req, locationConstraint{Region: region})
}

type listEntryXML struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefixXML struct {
	Prefix string `xml:"Prefix"`
}

// listBucketResult serves both ListObjects (v1) and ListObjectsV2; the
// version-specific fields are omitted when empty.
type listBucketResult struct {
	XMLName               xml.Name          `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string            `xml:"Name"`
	Prefix                string            `xml:"Prefix"`
	Marker                *string           `xml:"Marker"`
	NextMarker            string            `xml:"NextMarker,omitempty"`
	ContinuationToken     string            `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string            `xml:"NextContinuationToken,omitempty"`
	StartAfter            string            `xml:"StartAfter,omitempty"`
	KeyCount              *int              `xml:"KeyCount"`
	MaxKeys               int               `xml:"MaxKeys"`
	Delimiter             string            `xml:"Delimiter,omitempty"`
	EncodingType          string            `xml:"EncodingType,omitempty"`
	IsTruncated           bool              `xml:"IsTruncated"`
	Contents              []listEntryXML    `xml:"Contents"`
	CommonPrefixes        []commonPrefixXML `xml:"CommonPrefixes"`
}

func (g *Gateway) listObjects(req *request, v2 bool) error {
	q := req.q
	for _, k := range []string{"prefix", "delimiter", "continuation-token", "start-after", "marker", "max-keys", "encoding-type"} {
		if vs := q[k]; len(vs) > 1 || (len(vs) == 1 && !utf8.ValidString(vs[0])) {
			return errInvalidArgument.with("Invalid " + k + ".")
		}
	}
	maxKeys := maxListKeys
	if s, ok := q["max-keys"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 0 {
			return errInvalidArgument.with("Provided max-keys not an integer or within integer range.")
		}
		maxKeys = min(n, maxListKeys)
	}
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return errInvalidArgument.with("Invalid Encoding Method specified in Request.")
	}
	p := ListParams{
		Bucket:    req.rt.bucket,
		Prefix:    q.Get("prefix"),
		Delimiter: q.Get("delimiter"),
		MaxKeys:   maxKeys,
	}
	if v2 {
		p.ContinuationToken = q.Get("continuation-token")
		p.StartAfter = q.Get("start-after")
		if _, ok := q["continuation-token"]; ok && p.ContinuationToken == "" {
			return errInvalidArgument.with("The continuation token provided is incorrect.")
		}
	} else {
		p.StartAfter = q.Get("marker")
	}

	var res ListResult
	if maxKeys == 0 {
		// Nothing to list, but the bucket must exist.
		if _, err := g.be.BucketLocation(req.r.Context(), p.Bucket); err != nil {
			return err
		}
	} else {
		var err error
		if res, err = g.be.ListObjectsV2(req.r.Context(), p); err != nil {
			return err
		}
	}

	e := func(s string) string {
		if enc == "url" {
			return uriEncode(s, false)
		}
		return s
	}
	out := listBucketResult{
		Name:         p.Bucket,
		Prefix:       e(p.Prefix),
		MaxKeys:      maxKeys,
		Delimiter:    e(p.Delimiter),
		EncodingType: enc,
		IsTruncated:  res.IsTruncated,
	}
	for _, en := range res.Entries {
		out.Contents = append(out.Contents, listEntryXML{
			Key: e(en.Key), LastModified: xmlTime(en.LastModified), ETag: en.ETag, Size: en.Size, StorageClass: "STANDARD",
		})
	}
	for _, cp := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefixXML{Prefix: e(cp)})
	}
	if v2 {
		kc := len(res.Entries) + len(res.CommonPrefixes)
		out.KeyCount = &kc
		out.ContinuationToken = p.ContinuationToken
		out.StartAfter = e(p.StartAfter)
		if res.IsTruncated {
			out.NextContinuationToken = res.NextContinuationToken
		}
	} else {
		m := e(p.StartAfter)
		out.Marker = &m
		if res.IsTruncated {
			// The next marker is the greatest key or prefix returned.
			last := ""
			if n := len(res.Entries); n > 0 {
				last = res.Entries[n-1].Key
			}
			if n := len(res.CommonPrefixes); n > 0 && res.CommonPrefixes[n-1] > last {
				last = res.CommonPrefixes[n-1]
			}
			out.NextMarker = e(last)
		}
	}
	return g.writeXML(req, out)
}

func xmlTime(t time.Time) string {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return t.UTC().Format(iso8601Millis)
}
