package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/shoal-cache/shoal/gateway"
)

// Remote is a Backend that reads through a running node's S3 gateway over
// HTTP: HEAD for versions, ranged GETs pinned to the version with If-Match
// (the node serves them from its chunks: memory, SSD, peers, origin), and
// ListObjectsV2/ListBuckets. It is what the separate `shoal mount` process
// uses; inside `shoal node --mount` the node itself is the Backend and no
// HTTP is involved.
type Remote struct {
	c  *s3.Client
	tr *http.Transport
}

// RemoteConfig says where the gateway is and how to sign.
type RemoteConfig struct {
	Endpoint string // http://host:port of the node's gateway
	Region   string // the gateway's region (default us-east-1)
	// AccessKey/SecretKey sign requests (SigV4); empty: anonymous, which
	// a node accepts on a loopback gateway without credentials.
	AccessKey, SecretKey string
}

// NewRemote builds a Remote for the gateway at cfg.Endpoint.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		return nil, fmt.Errorf("%w: gateway endpoint %q: want http://host:port", ErrInvalidConfig, cfg.Endpoint)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")
	}
	ep := cfg.Endpoint
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The kernel sends reads of several files at once.
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr}
	return &Remote{tr: tr, c: s3.New(s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: &ep,
		UsePathStyle: true,
		Credentials:  creds,
		HTTPClient:   hc,
		// The node answers a 503 after its own --origin-wait; the mount's
		// operation bound is what a caller waits, so one retry at most.
		RetryMaxAttempts: 2,
		// Ranged GETs carry no checksums; whole-object ones are checked
		// by the node against the origin already.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})}, nil
}

var _ Backend = (*Remote)(nil)

// Close drops the idle connections to the gateway.
func (r *Remote) Close() error {
	r.tr.CloseIdleConnections()
	return nil
}

func (r *Remote) HeadObject(ctx context.Context, bucket, key string) (gateway.ObjectInfo, error) {
	out, err := r.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return gateway.ObjectInfo{}, remoteErr("head "+bucket+"/"+key, err)
	}
	return gateway.ObjectInfo{Bucket: bucket, Key: key, ETag: aws.ToString(out.ETag), Size: aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType), LastModified: aws.ToTime(out.LastModified), Metadata: out.Metadata}, nil
}

func (r *Remote) GetObject(ctx context.Context, info gateway.ObjectInfo, off, length int64) (io.ReadCloser, error) {
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	rng := fmt.Sprintf("bytes=%d-%d", off, off+length-1)
	out, err := r.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &info.Bucket, Key: &info.Key, Range: &rng, IfMatch: &info.ETag})
	if err != nil {
		return nil, remoteErr("get "+info.Bucket+"/"+info.Key, err)
	}
	if n := aws.ToInt64(out.ContentLength); n != length {
		out.Body.Close()
		return nil, fmt.Errorf("fusefs: get %s/%s %s: %d bytes in the answer: %w", info.Bucket, info.Key, rng, n, gateway.ErrUnavailable)
	}
	return out.Body, nil
}

func (r *Remote) ListObjectsV2(ctx context.Context, p gateway.ListParams) (gateway.ListResult, error) {
	in := &s3.ListObjectsV2Input{Bucket: &p.Bucket, Prefix: &p.Prefix, Delimiter: &p.Delimiter}
	if p.ContinuationToken != "" {
		in.ContinuationToken = &p.ContinuationToken
	}
	if p.StartAfter != "" {
		in.StartAfter = &p.StartAfter
	}
	if p.MaxKeys > 0 {
		in.MaxKeys = aws.Int32(int32(p.MaxKeys))
	}
	out, err := r.c.ListObjectsV2(ctx, in)
	if err != nil {
		return gateway.ListResult{}, remoteErr("list "+p.Bucket+"/"+p.Prefix, err)
	}
	res := gateway.ListResult{IsTruncated: aws.ToBool(out.IsTruncated), NextContinuationToken: aws.ToString(out.NextContinuationToken)}
	for _, o := range out.Contents {
		res.Entries = append(res.Entries, gateway.ListEntry{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size),
			ETag: aws.ToString(o.ETag), LastModified: aws.ToTime(o.LastModified)})
	}
	for _, cp := range out.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, aws.ToString(cp.Prefix))
	}
	return res, nil
}

func (r *Remote) ListBuckets(ctx context.Context) ([]gateway.Bucket, error) {
	out, err := r.c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return nil, remoteErr("list buckets", err)
	}
	bs := make([]gateway.Bucket, 0, len(out.Buckets))
	for _, b := range out.Buckets {
		bs = append(bs, gateway.Bucket{Name: aws.ToString(b.Name), CreationDate: aws.ToTime(b.CreationDate)})
	}
	return bs, nil
}

// remoteErr translates a gateway answer to the gateway's sentinels; a node
// that cannot be reached is ErrUnavailable.
func remoteErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("fusefs: %s: %w", op, err)
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var s error
	switch {
	case code == "NoSuchBucket":
		s = gateway.ErrNoSuchBucket
	case status == http.StatusNotFound:
		s = gateway.ErrNoSuchKey
	case status == http.StatusPreconditionFailed:
		s = gateway.ErrPreconditionFailed
	case status == http.StatusForbidden:
		s = gateway.ErrAccessDenied
	case status == http.StatusBadRequest:
		s = gateway.ErrInvalidArgument
	case code == "SlowDown":
		s = gateway.ErrSlowDown
	default:
		s = gateway.ErrUnavailable
	}
	return fmt.Errorf("fusefs: %s: %w (%w)", op, s, err)
}
