package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"os"
	"time"
)

// s3Error is an error the gateway itself detects, carrying its S3 code and
// HTTP status. Values below are sentinels: compare with errors.Is, which
// matches on Code, so a copy with a more specific Message still matches.
type s3Error struct {
	Code    string
	Status  int
	Message string
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *s3Error with the same code.
func (e *s3Error) Is(target error) bool {
	t, ok := target.(*s3Error)
	return ok && t.Code == e.Code
}

// with returns a copy of e with a more specific message.
func (e *s3Error) with(msg string) *s3Error {
	return &s3Error{Code: e.Code, Status: e.Status, Message: msg}
}

// Gateway-internal error sentinels.
var (
	errInvalidRange          = &s3Error{"InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable."}
	errInvalidArgument       = &s3Error{"InvalidArgument", http.StatusBadRequest, "Invalid argument."}
	errInvalidRequest        = &s3Error{"InvalidRequest", http.StatusBadRequest, "Invalid request."}
	errInvalidBucketName     = &s3Error{"InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid."}
	errKeyTooLong            = &s3Error{"KeyTooLongError", http.StatusBadRequest, "Your key is too long."}
	errMethodNotAllowed      = &s3Error{"MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."}
	errMalformedXML          = &s3Error{"MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."}
	errEntityTooLarge        = &s3Error{"EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."}
	errSignatureMismatch     = &s3Error{"SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	errInvalidAccessKeyID    = &s3Error{"InvalidAccessKeyId", http.StatusForbidden, "The AWS Access Key Id you provided does not exist in our records."}
	errRequestTimeTooSkewed  = &s3Error{"RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the current time is too large."}
	errAuthHeaderMalformed   = &s3Error{"AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed."}
	errAuthQueryMalformed    = &s3Error{"AuthorizationQueryParametersError", http.StatusBadRequest, "Error parsing the X-Amz-Credential parameter."}
	errMissingContentLength  = &s3Error{"MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header."}
	errInternal              = &s3Error{"InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again."}
	errAccessDenied          = &s3Error{"AccessDenied", http.StatusForbidden, "Access Denied."}
	errNotImplemented        = &s3Error{"NotImplemented", http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented."}
	errContentSHA256Mismatch = &s3Error{"XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."}
	errBadDigest             = &s3Error{"BadDigest", http.StatusBadRequest, "The Content-MD5 or checksum you specified did not match what we received."}
	errInvalidDigest         = &s3Error{"InvalidDigest", http.StatusBadRequest, "The Content-MD5 or checksum you specified is not valid."}
	errIncompleteBody        = &s3Error{"IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	errInvalidPartOrder      = &s3Error{"InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order of part number."}
	errMetadataTooLarge      = &s3Error{"MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size."}
	errHeaderTooLarge        = &s3Error{"RequestHeaderSectionTooLarge", http.StatusBadRequest, "Your request header section exceeds the maximum allowed size."}
	errInvalidURI            = &s3Error{"InvalidURI", http.StatusBadRequest, "Couldn't parse the specified URI."}
	errMissingSecurityHeader = &s3Error{"MissingSecurityHeader", http.StatusBadRequest, "Your request is missing a required header."}
	errExpiredRequest        = &s3Error{"AccessDenied", http.StatusForbidden, "Request has expired"}
	errPreconditionFailed    = &s3Error{"PreconditionFailed", http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold"}
	errForeignHost           = &s3Error{"AccessDenied", http.StatusForbidden, "The Host header does not name this gateway."}
	errCrossSite             = &s3Error{"AccessDenied", http.StatusForbidden, "Anonymous requests that change data are not accepted from other web sites (Origin or Sec-Fetch-Site header)."}
	errRequestTimeout        = &s3Error{"RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."}
)

// mapError is the single place that turns any error into the S3 error code,
// HTTP status and client-visible message. Unknown errors become
// InternalError without leaking their text.
func mapError(err error) *s3Error {
	var se *s3Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, ErrNoSuchKey):
		return &s3Error{"NoSuchKey", http.StatusNotFound, "The specified key does not exist."}
	case errors.Is(err, ErrNoSuchBucket):
		return &s3Error{"NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist."}
	case errors.Is(err, ErrNoSuchUpload):
		return &s3Error{"NoSuchUpload", http.StatusNotFound, "The specified multipart upload does not exist."}
	case errors.Is(err, ErrAccessDenied):
		return errAccessDenied
	case errors.Is(err, ErrPreconditionFailed):
		return errPreconditionFailed
	case errors.Is(err, ErrInvalidArgument):
		return errInvalidArgument
	case errors.Is(err, ErrUnavailable):
		return &s3Error{"ServiceUnavailable", http.StatusServiceUnavailable, "The service is unavailable. Please retry."}
	case errors.Is(err, ErrSlowDown):
		return &s3Error{"SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate."}
	case errors.Is(err, ErrNotImplemented):
		return errNotImplemented
	case errors.Is(err, http.ErrBodyReadAfterClose), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return errRequestTimeout
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errEntityTooLarge
		}
		return errInternal
	}
}

// Retry-After of a 503 whose error carries no hint of its own.
const (
	// retryAfterUnavailable: the node keeps trying its origin in the
	// background; a client back after 5 s finds the answer or a fresh
	// attempt under way, where an immediate retry finds the same wait.
	retryAfterUnavailable = 5 * time.Second
	// retryAfterSlowDown: overload passes quickly or not at all; one
	// second spreads the retries of a burst without idling the clients.
	retryAfterSlowDown = time.Second
)

// WithRetryAfter wraps err with how long a client should wait before it
// retries. When err maps to a 503 (ErrUnavailable, ErrSlowDown) the
// gateway sends d as Retry-After (whole seconds, rounded up) and as
// x-amz-retry-after (milliseconds, which AWS SDKs read). Any error with a
// method RetryAfter() time.Duration does the same.
func WithRetryAfter(err error, d time.Duration) error { return &retryAfterError{err: err, d: d} }

type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.d }

// retryAfter is how long a client should wait before retrying a request
// that failed with err, mapped to se by mapError: the error's own hint, else
// a default by code; 0 (no header) for anything but a 503.
func retryAfter(err error, se *s3Error) time.Duration {
	if se.Status != http.StatusServiceUnavailable {
		return 0
	}
	var hint interface{ RetryAfter() time.Duration }
	if errors.As(err, &hint) && hint.RetryAfter() > 0 {
		return hint.RetryAfter()
	}
	if se.Code == "SlowDown" {
		return retryAfterSlowDown
	}
	return retryAfterUnavailable
}

// errorBody is the S3 XML error document.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}
