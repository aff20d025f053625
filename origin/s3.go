package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3 is an origin backed by S3 or an S3-compatible service. It is safe for
// concurrent use.
type S3 struct {
	cfg    S3Config
	client *s3.Client
	sem    chan struct{} // one token per GetRange in flight, released on body Close
	log    *slog.Logger
	m      *metrics
}

// minPartSize is S3's minimum size of every part but the last.
const minPartSize = 5 << 20

// unknownSizePartSize is the part size used when PutObject gets a body of
// unknown length: one such buffer is held in memory at a time. It doubles
// every unknownSizePartStep parts so the 10,000-part limit allows ~500 GB.
const (
	unknownSizePartSize = 8 << 20
	unknownSizePartStep = 2000
	maxParts            = 10000
)

// NewS3 builds an S3 origin. Static credentials are used when set, else the
// standard AWS chain (env, shared config/profile, web identity, IMDS). No
// request is sent until the first call.
func NewS3(ctx context.Context, cfg S3Config, opts ...S3Option) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	var o s3Options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}

	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = cfg.ConnectTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = cfg.ConnectTimeout
			tr.ResponseHeaderTimeout = cfg.HeaderTimeout
			tr.MaxIdleConnsPerHost = cfg.MaxInFlight + 16
		})
	attempts := cfg.MaxRetries + 1
	if cfg.MaxRetries < 0 {
		attempts = 1
	}
	base, maxBackoff := cfg.RetryBaseDelay, cfg.RetryMaxBackoff
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.MaxBackoff = maxBackoff
			so.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
				return fullJitter(base, maxBackoff, attempt), nil
			})
			// The client-side retry quota would turn a long origin outage
			// into instant failures after it recovers; the caller's
			// de-duplication already bounds load.
			so.RateLimiter = ratelimit.None
		})
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(retryer),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("origin: s3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	cfg.Region = awsCfg.Region
	client := s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if cfg.Endpoint != "" {
			so.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		so.UsePathStyle = cfg.PathStyle
		// Checksums only where the API requires them: S3-compatible servers
		// differ in trailing-checksum support, and ranged GETs cannot be
		// validated against a whole-object checksum anyway.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3{
		cfg:    cfg,
		client: client,
		sem:    make(chan struct{}, cfg.MaxInFlight),
		log:    o.logger.With("component", "origin", "origin", "s3"),
		m:      newMetrics(o.registerer),
	}, nil
}

// fullJitter returns a random delay in [0, min(max, base*2^attempt)).
func fullJitter(base, maxBackoff time.Duration, attempt int) time.Duration {
	ceil := maxBackoff
	if attempt < 30 {
		if d := base << attempt; d > 0 && d < ceil {
			ceil = d
		}
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// unsignedPayload sends UNSIGNED-PAYLOAD instead of a SHA-256 of the body, so
// a streaming body is read once (and need not be seekable) even over plain
// HTTP. Integrity over the wire comes from TLS on real S3.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

func target(bucket, key string) string { return bucket + "/" + key }

// budget bounds one call by RetryBudget: its context ends with cause
// errRetryBudget when the budget runs out (translateS3 makes that
// ErrUnavailable). For calls whose answer is complete with its headers;
// GetRange keeps its body out of the budget itself.
func (s *S3) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.cfg.RetryBudget, errRetryBudget)
}

// HeadObject returns an object's metadata. S3 answers a HEAD on a missing
// bucket with a bare 404, so that case is reported as ErrNotFound.
func (s *S3) HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	bctx, cancel := s.budget(ctx)
	defer cancel()
	out, err := s.client.HeadObject(bctx, &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
		// Ask for the object's checksums: integrity data the node can
		// check a whole object against (S3 sends none without it).
		ChecksumMode: types.ChecksumModeEnabled,
	})
	err = translateS3(bctx, "HeadObject", target(bucket, key), err)
	if errors.Is(err, ErrNotFound) {
		// A HEAD answer has no body, so S3 cannot say whether the key or the
		// bucket is missing; ask, so that callers can answer NoSuchBucket.
		if _, berr := s.HeadBucket(ctx, bucket); errors.Is(berr, ErrNoSuchBucket) {
			err = berr
		}
	}
	s.m.observe("head", err)
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{
		Bucket:             bucket,
		Key:                key,
		ETag:               aws.ToString(out.ETag),
		Size:               aws.ToInt64(out.ContentLength),
		ContentType:        aws.ToString(out.ContentType),
		LastModified:       aws.ToTime(out.LastModified),
		Metadata:           lowerKeys(out.Metadata),
		CacheControl:       aws.ToString(out.CacheControl),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		Checksums: Checksums{
			CRC64NVME: aws.ToString(out.ChecksumCRC64NVME),
			CRC32C:    aws.ToString(out.ChecksumCRC32C),
			CRC32:     aws.ToString(out.ChecksumCRC32),
			SHA1:      aws.ToString(out.ChecksumSHA1),
			SHA256:    aws.ToString(out.ChecksumSHA256),
			Type:      string(out.ChecksumType),
		},
		ETagIsMD5: etagIsPlainMD5(aws.ToString(out.ETag)) && etagKeepsMD5(out.ServerSideEncryption, aws.ToString(out.SSECustomerAlgorithm)),
	}, nil
}

// etagKeepsMD5 reports whether S3 keeps a single-part ETag the MD5 of the
// bytes under this encryption: yes with none or SSE-S3 (AES256); no with
// SSE-KMS, DSSE-KMS or SSE-C, and unknown (so no) with anything newer.
func etagKeepsMD5(sse types.ServerSideEncryption, customerAlgorithm string) bool {
	return customerAlgorithm == "" && (sse == "" || sse == types.ServerSideEncryptionAes256)
}

// GetRange streams n bytes at off (n < 0: to the end; n == 0: an empty body
// without a request). A non-empty etag is sent as If-Match, so a changed
// object fails with ErrPreconditionFailed. The request holds one of
// MaxInFlight slots until the body is closed; callers must close it. The
// attempts up to the response headers are bounded by RetryBudget; a body
// that makes no progress for IdleTimeout fails with ErrUnavailable.
func (s *S3) GetRange(ctx context.Context, bucket, key, etag string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("origin: s3 GetObject %s: offset %d: %w", target(bucket, key), off, ErrInvalidRange)
	}
	if n == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("origin: s3 GetObject %s: waiting for an in-flight slot: %w", target(bucket, key), ctx.Err())
	}
	s.m.inflight.Inc()
	// The retry budget covers the attempts up to the response headers; the
	// body lives on in gctx until it is closed.
	gctx, cancel := context.WithCancelCause(ctx)
	budget := time.AfterFunc(s.cfg.RetryBudget, func() { cancel(errRetryBudget) })
	var once sync.Once
	release := func() {
		once.Do(func() {
			budget.Stop()
			cancel(nil)
			s.m.inflight.Dec()
			<-s.sem
		})
	}
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	ranged := off > 0 || n > 0
	if ranged {
		r := fmt.Sprintf("bytes=%d-", off)
		if n > 0 {
			r = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
		}
		in.Range = aws.String(r)
	}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	out, err := s.client.GetObject(gctx, in)
	if err == nil && !budget.Stop() {
		// The budget ran out as the headers came: the body's context is gone.
		out.Body.Close()
		err = errRetryBudget
	}
	err = translateS3(gctx, "GetObject", target(bucket, key), err)
	if err == nil && ranged && out.ContentRange == nil {
		out.Body.Close()
		err = fmt.Errorf("origin: s3 GetObject %s: server ignored the Range header: %w", target(bucket, key), ErrUnavailable)
	}
	s.m.observe("get", err)
	if err != nil {
		release()
		return nil, err
	}
	return newIdleBody(out.Body, s.cfg.IdleTimeout, release, s.m.readBytes), nil
}

// idleBody aborts a body read that makes no progress for timeout, counts
// bytes, and releases the in-flight slot on Close. Time the consumer spends
// between reads does not count (that is backpressure, not a stall).
type idleBody struct {
	rc       io.ReadCloser
	timeout  time.Duration
	timer    *time.Timer
	timedOut atomic.Bool
	release  func()
	bytes    interface{ Add(float64) }
}

func newIdleBody(rc io.ReadCloser, timeout time.Duration, release func(), bytes interface{ Add(float64) }) *idleBody {
	b := &idleBody{rc: rc, timeout: timeout, release: release, bytes: bytes}
	b.timer = time.AfterFunc(time.Hour, func() {
		b.timedOut.Store(true)
		b.rc.Close()
	})
	b.timer.Stop()
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if n > 0 {
		b.bytes.Add(float64(n))
	}
	if err != nil && err != io.EOF {
		if b.timedOut.Load() {
			err = fmt.Errorf("origin: s3 GetObject body: no progress for %v: %w", b.timeout, ErrUnavailable)
		} else if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("origin: s3 GetObject body: %w: %w", ErrUnavailable, err)
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.release()
	return err
}

// ListObjects returns one page of ListObjectsV2.
func (s *S3) ListObjects(ctx context.Context, p ListParams) (ListResult, error) {
	if p.MaxKeys < 0 {
		return ListResult{}, fmt.Errorf("origin: s3 ListObjects %s: MaxKeys %d: %w", p.Bucket, p.MaxKeys, ErrInvalidArgument)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(p.Bucket)}
	if p.Prefix != "" {
		in.Prefix = aws.String(p.Prefix)
	}
	if p.Delimiter != "" {
		in.Delimiter = aws.String(p.Delimiter)
	}
	if p.ContinuationToken != "" {
		in.ContinuationToken = aws.String(p.ContinuationToken)
	}
	if p.StartAfter != "" {
		in.StartAfter = aws.String(p.StartAfter)
	}
	if p.MaxKeys > 0 {
		in.MaxKeys = aws.Int32(int32(min(p.MaxKeys, 1000)))
	}
	bctx, cancel := s.budget(ctx)
	defer cancel()
	out, err := s.client.ListObjectsV2(bctx, in)
	err = translateS3(bctx, "ListObjectsV2", p.Bucket, err)
	s.m.observe("list", err)
	if err != nil {
		return ListResult{}, err
	}
	res := ListResult{
		IsTruncated:           aws.ToBool(out.IsTruncated),
		NextContinuationToken: aws.ToString(out.NextContinuationToken),
	}
	for _, o := range out.Contents {
		res.Entries = append(res.Entries, ListEntry{
			Key:          aws.ToString(o.Key),
			Size:         aws.ToInt64(o.Size),
			ETag:         aws.ToString(o.ETag),
			LastModified: aws.ToTime(o.LastModified),
		})
	}
	for _, cp := range out.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, aws.ToString(cp.Prefix))
	}
	return res, nil
}

// ListBuckets returns all buckets the credentials can see.
func (s *S3) ListBuckets(ctx context.Context) ([]Bucket, error) {
	var buckets []Bucket
	in := &s3.ListBucketsInput{}
	for {
		bctx, cancel := s.budget(ctx)
		out, err := s.client.ListBuckets(bctx, in)
		err = translateS3(bctx, "ListBuckets", "", err)
		cancel()
		s.m.observe("list_buckets", err)
		if err != nil {
			return nil, err
		}
		for _, b := range out.Buckets {
			buckets = append(buckets, Bucket{Name: aws.ToString(b.Name), CreationDate: aws.ToTime(b.CreationDate)})
		}
		if aws.ToString(out.ContinuationToken) == "" {
			return buckets, nil
		}
		in.ContinuationToken = out.ContinuationToken
	}
}

// HeadBucket checks that a bucket exists and is accessible and returns its
// region (the configured region when the server does not say).
func (s *S3) HeadBucket(ctx context.Context, bucket string) (string, error) {
	bctx, cancel := s.budget(ctx)
	defer cancel()
	out, err := s.client.HeadBucket(bctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	err = translateS3(bctx, "HeadBucket", bucket, err)
	if errors.Is(err, ErrNotFound) {
		err = fmt.Errorf("origin: s3 HeadBucket %s: %w", bucket, ErrNoSuchBucket)
	}
	s.m.observe("head_bucket", err)
	if err != nil {
		return "", err
	}
	if r := aws.ToString(out.BucketRegion); r != "" {
		return r, nil
	}
	return s.cfg.Region, nil
}

// PutObject writes an object. With Size >= 0 the body is streamed once with
// that Content-Length. With Size < 0 the body is read in parts of a few MiB:
// a short body becomes one PUT, a longer one a multipart upload (aborted on
// error), so memory stays bounded either way.
func (s *S3) PutObject(ctx context.Context, p PutParams) (ObjectInfo, error) {
	if p.Body == nil {
		p.Body = bytes.NewReader(nil)
		if p.Size < 0 {
			p.Size = 0
		}
	}
	if p.Size < 0 {
		return s.putUnknownSize(ctx, p)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(p.Bucket),
		Key:           aws.String(p.Key),
		Body:          p.Body,
		ContentLength: aws.Int64(p.Size),
		Metadata:      p.Metadata,
	}
	if p.ContentType != "" {
		in.ContentType = aws.String(p.ContentType)
	}
	out, err := s.client.PutObject(ctx, in, unsignedPayload)
	err = translateS3(ctx, "PutObject", target(p.Bucket, p.Key), err)
	s.m.observe("put", err)
	if err != nil {
		return ObjectInfo{}, err
	}
	info := ObjectInfo{
		Bucket:       p.Bucket,
		Key:          p.Key,
		ETag:         aws.ToString(out.ETag),
		Size:         p.Size,
		ContentType:  p.ContentType,
		Metadata:     lowerKeys(p.Metadata),
		LastModified: responseDate(out.ResultMetadata),
		ETagIsMD5:    etagIsPlainMD5(aws.ToString(out.ETag)) && etagKeepsMD5(out.ServerSideEncryption, aws.ToString(out.SSECustomerAlgorithm)),
	}
	return info, nil
}

func (s *S3) putUnknownSize(ctx context.Context, p PutParams) (ObjectInfo, error) {
	buf := make([]byte, unknownSizePartSize)
	n, err := io.ReadFull(p.Body, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		p.Body, p.Size = bytes.NewReader(buf[:n]), int64(n)
		return s.PutObject(ctx, p)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("origin: s3 PutObject %s: read body: %w", target(p.Bucket, p.Key), err)
	}
	id, err := s.CreateMultipartUpload(ctx, p.Bucket, p.Key, p.ContentType, p.Metadata)
	if err != nil {
		return ObjectInfo{}, err
	}
	abort := func(cause error) (ObjectInfo, error) {
		// Abort with a fresh context: the caller's may be what failed.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if aerr := s.AbortMultipartUpload(actx, p.Bucket, p.Key, id); aerr != nil {
			s.log.Warn("abort multipart upload", "bucket", p.Bucket, "err", aerr)
		}
		return ObjectInfo{}, cause
	}
	var parts []CompletedPart
	var total int64
	for part := int32(1); ; part++ {
		if part > maxParts {
			return abort(fmt.Errorf("origin: s3 PutObject %s: body exceeds %d parts: %w", target(p.Bucket, p.Key), maxParts, ErrInvalidArgument))
		}
		etag, err := s.UploadPart(ctx, p.Bucket, p.Key, id, part, bytes.NewReader(buf[:n]), int64(n))
		if err != nil {
			return abort(err)
		}
		parts = append(parts, CompletedPart{PartNumber: part, ETag: etag})
		total += int64(n)
		size := unknownSizePartSize << (int(part) / unknownSizePartStep)
		if size > len(buf) {
			buf = make([]byte, size)
		}
		n, err = io.ReadFull(p.Body, buf[:size])
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return abort(fmt.Errorf("origin: s3 PutObject %s: read body: %w", target(p.Bucket, p.Key), err))
		}
		if err == io.ErrUnexpectedEOF { // last, short part
			etag, err := s.UploadPart(ctx, p.Bucket, p.Key, id, part+1, bytes.NewReader(buf[:n]), int64(n))
			if err != nil {
				return abort(err)
			}
			parts = append(parts, CompletedPart{PartNumber: part + 1, ETag: etag})
			total += int64(n)
			break
		}
	}
	info, err := s.CompleteMultipartUpload(ctx, p.Bucket, p.Key, id, parts)
	if err != nil {
		return abort(err)
	}
	if info.Size == 0 {
		info.Size = total
	}
	return info, nil
}

// DeleteObject removes an object; deleting a missing key succeeds (as in S3).
func (s *S3) DeleteObject(ctx context.Context, bucket, key string) error {
	bctx, cancel := s.budget(ctx)
	defer cancel()
	_, err := s.client.DeleteObject(bctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	err = translateS3(bctx, "DeleteObject", target(bucket, key), err)
	s.m.observe("delete", err)
	return err
}

// CreateMultipartUpload starts a multipart upload and returns its ID.
func (s *S3) CreateMultipartUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), Metadata: meta}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	bctx, cancel := s.budget(ctx)
	defer cancel()
	out, err := s.client.CreateMultipartUpload(bctx, in)
	err = translateS3(bctx, "CreateMultipartUpload", target(bucket, key), err)
	s.m.observe("create_multipart", err)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart uploads one part and returns its ETag. size should be the exact
// body length; with size < 0 the part is buffered in memory to learn it.
func (s *S3) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int32, body io.Reader, size int64) (string, error) {
	if partNumber < 1 || partNumber > maxParts {
		return "", fmt.Errorf("origin: s3 UploadPart %s: part number %d: %w", target(bucket, key), partNumber, ErrInvalidArgument)
	}
	if body == nil {
		body, size = bytes.NewReader(nil), 0
	}
	if size < 0 {
		data, err := io.ReadAll(body)
		if err != nil {
			return "", fmt.Errorf("origin: s3 UploadPart %s: read body: %w", target(bucket, key), err)
		}
		body, size = bytes.NewReader(data), int64(len(data))
	}
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		UploadId:      aws.String(uploadID),
		PartNumber:    aws.Int32(partNumber),
		Body:          body,
		ContentLength: aws.Int64(size),
	}, unsignedPayload)
	err = translateS3(ctx, "UploadPart", target(bucket, key), err)
	s.m.observe("upload_part", err)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// CompleteMultipartUpload assembles the parts and returns the new object's
// info (from a HEAD after completion when the server allows it).
func (s *S3) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart) (ObjectInfo, error) {
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(p.PartNumber), ETag: aws.String(p.ETag)}
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
	})
	err = translateS3(ctx, "CompleteMultipartUpload", target(bucket, key), err)
	s.m.observe("complete_multipart", err)
	if err != nil {
		return ObjectInfo{}, err
	}
	etag := aws.ToString(out.ETag)
	info, herr := s.HeadObject(ctx, bucket, key)
	if herr != nil || info.ETag != etag {
		// Completed, but the HEAD failed or raced a newer write: report
		// what the completion told us.
		if herr != nil {
			s.log.Debug("head after complete", "bucket", bucket, "err", herr)
		}
		return ObjectInfo{Bucket: bucket, Key: key, ETag: etag, LastModified: responseDate(out.ResultMetadata)}, nil
	}
	return info, nil
}

// AbortMultipartUpload discards an upload and its parts.
func (s *S3) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	bctx, cancel := s.budget(ctx)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(bctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	err = translateS3(bctx, "AbortMultipartUpload", target(bucket, key), err)
	s.m.observe("abort_multipart", err)
	return err
}

func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// responseDate is the server's Date header of a response, or now.
func responseDate(md middleware.Metadata) time.Time {
	if raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && raw != nil && raw.Response != nil {
		if t, err := http.ParseTime(raw.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}
