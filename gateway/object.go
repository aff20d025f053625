package gateway

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxUserMetadataBytes is S3's limit on the total size of x-amz-meta-*.
const maxUserMetadataBytes = 2 << 10

// responseOverrides are GET query parameters that replace response headers.
var responseOverrides = [][2]string{
	{"response-content-type", "Content-Type"},
	{"response-content-language", "Content-Language"},
	{"response-expires", "Expires"},
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
}

func (g *Gateway) getObject(req *request) error {
	r, q := req.r, req.q
	isHead := r.Method == http.MethodHead
	if pn, ok := q["partNumber"]; ok {
		if len(pn) != 1 {
			return errInvalidArgument.with("Invalid partNumber.")
		}
		n, err := strconv.Atoi(pn[0])
		if err != nil || n < 1 || n > 10000 {
			return errInvalidArgument.with("Part number must be an integer between 1 and 10000, inclusive.")
		}
		if n != 1 {
			return errNotImplemented.with("Reading single parts of an object is not supported.")
		}
	}
	for _, o := range responseOverrides {
		if v, ok := q[o[0]]; ok && (len(v) != 1 || strings.ContainsAny(v[0], "\r\n")) {
			return errInvalidArgument.with("Invalid " + o[0] + ".")
		}
	}

	info, err := g.be.HeadObject(r.Context(), req.rt.bucket, req.rt.key)
	if err != nil {
		return err
	}
	h := req.w.Header()
	switch evalConditions(r.Header, info.ETag, info.LastModified) {
	case condPreconditionFailed:
		return errPreconditionFailed
	case condNotModified:
		setValidators(h, info)
		req.w.WriteHeader(http.StatusNotModified)
		return nil
	}

	off, length := int64(0), info.Size
	status := http.StatusOK
	if br, ok := parseRange(r.Header.Get("Range")); ok && q.Get("partNumber") == "" {
		o, n, satisfiable := br.resolve(info.Size)
		if !satisfiable {
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
			return errInvalidRange
		}
		off, length, status = o, n, http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", o, o+n-1, info.Size))
	}

	setObjectHeaders(h, info)
	for _, o := range responseOverrides {
		if v := q.Get(o[0]); v != "" {
			h.Set(o[1], v)
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if q.Get("partNumber") != "" {
		h.Set("x-amz-mp-parts-count", "1")
	}
	if isHead || length == 0 {
		req.w.WriteHeader(status)
		return nil
	}

	rc, err := g.be.GetObject(r.Context(), info, off, length)
	if err != nil {
		h.Del("Content-Range")
		return err
	}
	defer rc.Close()
	req.w.WriteHeader(status)
	g.stream(req, rc, length)
	return nil
}

// stream copies exactly length bytes of rc to the client through a pooled
// fixed-size buffer. If the backend fails or ends early the connection is
// aborted, so the client sees a truncated transfer instead of short data.
func (g *Gateway) stream(req *request, rc io.Reader, length int64) {
	bp := g.bufs.Get().(*[]byte)
	defer g.bufs.Put(bp)
	buf := *bp
	rctl := http.NewResponseController(req.w)
	var sent int64
	flushed := false
	for sent < length {
		n, rerr := rc.Read(buf[:min(int64(len(buf)), length-sent)])
		if n > 0 {
			if _, werr := req.w.Write(buf[:n]); werr != nil {
				return // client went away; nothing more to do
			}
			sent += int64(n)
			if !flushed {
				// Send headers and the first bytes now: time to first
				// byte matters more than one extra packet.
				_ = rctl.Flush()
				flushed = true
			}
		}
		if rerr != nil {
			if rerr == io.EOF && sent == length {
				break
			}
			if req.r.Context().Err() != nil {
				return // the client went away; the backend saw the cancellation
			}
			g.log.Warn("backend stream failed mid-transfer; aborting response",
				"request_id", req.id, "bucket", req.rt.bucket, "sent", sent, "want", length, "err", rerr)
			panic(http.ErrAbortHandler)
		}
	}
}

// setValidators sets the headers a 304 carries.
func setValidators(h http.Header, info ObjectInfo) {
	if info.ETag != "" {
		h.Set("ETag", info.ETag)
	}
	if !info.LastModified.IsZero() {
		h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	}
}

func setObjectHeaders(h http.Header, info ObjectInfo) {
	setValidators(h, info)
	h.Set("Accept-Ranges", "bytes")
	ct := info.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	for _, kv := range [][2]string{
		{"Cache-Control", info.CacheControl},
		{"Content-Disposition", info.ContentDisposition},
		{"Content-Encoding", info.ContentEncoding},
		{"Content-Language", info.ContentLanguage},
	} {
		if kv[1] != "" && !strings.ContainsAny(kv[1], "\r\n") {
			h.Set(kv[0], kv[1])
		}
	}
	for k, v := range info.Metadata {
		if k != "" && !strings.ContainsAny(k+v, "\r\n") {
			h["X-Amz-Meta-"+http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
}

// userMetadata collects x-amz-meta-* headers (lower-case names without the
// prefix) and enforces S3's 2 KiB limit.
func userMetadata(h http.Header) (map[string]string, error) {
	var meta map[string]string
	total := 0
	for k, vs := range h {
		lk := strings.ToLower(k)
		name, ok := strings.CutPrefix(lk, "x-amz-meta-")
		if !ok {
			continue
		}
		if name == "" {
			return nil, errInvalidArgument.with("Empty user metadata name.")
		}
		v := strings.Join(vs, ",")
		total += len(name) + len(v)
		if total > maxUserMetadataBytes {
			return nil, errMetadataTooLarge
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[name] = v
	}
	return meta, nil
}

func (g *Gateway) putObject(req *request) error {
	r := req.r
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return errNotImplemented.with("CopyObject is not supported.")
	}
	meta, err := userMetadata(r.Header)
	if err != nil {
		return err
	}
	body, size, err := g.uploadBody(r, req.auth)
	if err != nil {
		return err
	}
	if size < 0 {
		return errMissingContentLength
	}
	info, err := g.be.PutObject(r.Context(), PutParams{
		Bucket:      req.rt.bucket,
		Key:         req.rt.key,
		Body:        body,
		Size:        size,
		ContentType: r.Header.Get("Content-Type"),
		Metadata:    meta,
	})
	if verr := body.Err(); verr != nil {
		return verr // the body failed verification: report that, not the backend's reaction
	}
	if err != nil {
		return err
	}
	if info.ETag != "" {
		req.w.Header().Set("ETag", info.ETag)
	}
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) deleteObject(req *request) error {
	err := g.be.DeleteObject(req.r.Context(), req.rt.bucket, req.rt.key)
	if err != nil && !errors.Is(err, ErrNoSuchKey) { // S3 deletes are idempotent
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxDeleteObjects is S3's limit of keys per DeleteObjects request.
const maxDeleteObjects = 1000

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name        `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedObject `xml:"Deleted"`
	Errors  []deleteError   `xml:"Error"`
}

type deletedObject struct {
	Key string `xml:"Key"`
}

type deleteError struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (g *Gateway) deleteObjects(req *request) error {
	var in deleteRequest
	if err := g.readXML(req, &in); err != nil {
		return err
	}
	if len(in.Objects) == 0 || len(in.Objects) > maxDeleteObjects {
		return errMalformedXML
	}
	var out deleteResult
	for _, o := range in.Objects {
		var err error
		switch {
		case o.Key == "":
			err = errInvalidArgument.with("Empty key.")
		case len(o.Key) > maxKeyBytes:
			err = errKeyTooLong
		case strings.IndexByte(o.Key, 0) >= 0:
			err = errInvalidArgument.with("Object key must not contain NUL.")
		case o.VersionID != "" && o.VersionID != "null":
			err = errNotImplemented.with("Object versions are not supported.")
		default:
			err = g.be.DeleteObject(req.r.Context(), req.rt.bucket, o.Key)
			if errors.Is(err, ErrNoSuchKey) {
				err = nil
			}
		}
		if err != nil {
			if errors.Is(err, ErrNoSuchBucket) {
				return err
			}
			se := mapError(err)
			out.Errors = append(out.Errors, deleteError{Key: o.Key, Code: se.Code, Message: se.Message})
			continue
		}
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deletedObject{Key: o.Key})
		}
	}
	return g.writeXML(req, out)
}

// readXML decodes a bounded, verified XML request body into v.
func (g *Gateway) readXML(req *request, v any) error {
	r := req.r
	if r.ContentLength > maxXMLBodyBytes {
		return errMalformedXML.with("The XML body is too large.")
	}
	body, _, err := g.uploadBody(r, req.auth)
	if err != nil {
		return err
	}
	lim := http.MaxBytesReader(req.w, io.NopCloser(body), maxXMLBodyBytes)
	data, err := io.ReadAll(lim)
	if verr := body.Err(); verr != nil {
		return verr
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errMalformedXML.with("The XML body is too large.")
		}
		return err
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return errMalformedXML
	}
	return nil
}
