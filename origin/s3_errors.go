package origin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// errRetryBudget is the cause of a call's context when its RetryBudget
// runs out.
var errRetryBudget = errors.New("retry budget exhausted")

// translateS3 maps an SDK error to this package's sentinels, keeping the
// cause: "origin: s3 GetObject b/k: origin: no such key: <sdk error>".
// Caller cancellation stays a context error, not ErrUnavailable; a call
// whose retry budget ran out (ctx from S3.budget) is ErrUnavailable.
func translateS3(ctx context.Context, op, target string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(context.Cause(ctx), errRetryBudget) {
		return fmt.Errorf("origin: s3 %s %s: no answer within the retry budget: %w: %w", op, target, ErrUnavailable, err)
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("origin: s3 %s %s: %w", op, target, err)
	}
	return fmt.Errorf("origin: s3 %s %s: %w: %w", op, target, classifyS3(err), err)
}

func classifyS3(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return ErrNotFound
		case "NoSuchBucket":
			return ErrNoSuchBucket
		case "NoSuchUpload":
			return ErrNoSuchUpload
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "InvalidToken", "ExpiredToken":
			return ErrAccessDenied
		case "PreconditionFailed":
			return ErrPreconditionFailed
		case "InvalidRange":
			return ErrInvalidRange
		case "InvalidArgument", "InvalidPart", "InvalidPartOrder", "InvalidBucketName", "KeyTooLongError",
			"EntityTooSmall", "EntityTooLarge", "MalformedXML", "InvalidRequest", "MissingContentLength", "InvalidDigest", "BadDigest":
			return ErrInvalidArgument
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException":
			return ErrUnavailable
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch code := respErr.HTTPStatusCode(); {
		case code == http.StatusNotFound:
			return ErrNotFound
		case code == http.StatusForbidden || code == http.StatusUnauthorized:
			return ErrAccessDenied
		case code == http.StatusPreconditionFailed:
			return ErrPreconditionFailed
		case code == http.StatusRequestedRangeNotSatisfiable:
			return ErrInvalidRange
		case code == http.StatusTooManyRequests || code >= 500:
			return ErrUnavailable
		case code >= 400:
			return ErrInvalidArgument
		}
	}
	// Network errors, timeouts, retry quota exhausted, truncated responses.
	return ErrUnavailable
}

func validateEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}
