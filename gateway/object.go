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
		setValidators(req, info)
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

	setObjectHeaders(req, info)
	for _, o := range responseOverrides {
		if v := q.Get(o[0]); v != "" {
			h.Set(o[1], v)
		}
	}
	req.setHeader("Content-Length", strconv.FormatInt(length, 10))
	if status == http.StatusOK && q.Get("partNumber") == "" && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		setChecksumHeaders(h, info.Checksums)
	}
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

// stream sends exactly length bytes of rc to the client. A reader that
// implements io.WriterTo (the node's chunk reader) writes its own buffers
// straight to the connection, saving a copy of every byte; any other is
// copied through a pooled fixed-size buffer. If the backend fails or ends
// early the connection is aborted, so the client sees a truncated transfer
// instead of short data; bytes beyond length are never sent.
func (g *Gateway) stream(req *request, rc io.Reader, length int64) {
	sw := &streamWriter{w: req.w, rctl: http.NewResponseController(req.w), left: length}
	var rerr error
	if wt, ok := rc.(io.WriterTo); ok {
		_, rerr = wt.WriteTo(sw)
	} else {
		rerr = g.copyTo(sw, rc)
	}
	switch {
	case sw.werr != nil:
		return // client went away; nothing more to do
	case sw.left == 0 && (rerr == nil || errors.Is(rerr, errStreamFull) || errors.Is(rerr, io.EOF)):
		return
	case req.r.Context().Err() != nil:
		return // the client went away; the backend saw the cancellation
	}
	if rerr == nil {
		rerr = io.ErrUnexpectedEOF
	}
	g.log.Warn("backend stream failed mid-transfer; aborting response",
		"request_id", req.id, "bucket", req.rt.bucket, "sent", length-sw.left, "want", length, "err", rerr)
	panic(http.ErrAbortHandler)
}

// copyTo copies rc to sw through a pooled buffer until sw is full or rc
// fails or ends.
func (g *Gateway) copyTo(sw *streamWriter, rc io.Reader) error {
	bp := g.bufs.Get().(*[]byte)
	defer g.bufs.Put(bp)
	buf := *bp
	for sw.left > 0 {
		n, rerr := rc.Read(buf[:min(int64(len(buf)), sw.left)])
		if n > 0 {
			if _, werr := sw.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if rerr != nil {
			return rerr
		}
	}
	return nil
}

// errStreamFull: the backend offered more bytes than the response length.
var errStreamFull = errors.New("gateway: backend stream longer than the response")

// streamWriter passes at most left bytes to the client, flushing after the
// first write when more is to come (time to first byte matters more than
// one extra packet; a body sent whole goes out when the handler returns),
// and records the client's write error apart from the backend's.
type streamWriter struct {
	w       io.Writer
	rctl    *http.ResponseController
	left    int64
	flushed bool
	werr    error // the client connection failed
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.werr != nil {
		return 0, s.werr
	}
	var full error
	if int64(len(p)) > s.left {
		p, full = p[:s.left], errStreamFull
	}
	if len(p) == 0 {
		return 0, full
	}
	n, err := s.w.Write(p)
	s.left -= int64(n)
	if err != nil {
		s.werr = err
		return n, err
	}
	if !s.flushed && s.left > 0 {
		_ = s.rctl.Flush()
	}
	s.flushed = true
	return n, full
}

// setValidators sets the headers a 304 carries.
func setValidators(req *request, info ObjectInfo) {
	if info.ETag != "" {
		req.setHeader("Etag", info.ETag)
	}
	if !info.LastModified.IsZero() {
		req.setHeader("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	}
}

func setObjectHeaders(req *request, info ObjectInfo) {
	setValidators(req, info)
	req.setHeader("Accept-Ranges", "bytes")
	ct := info.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	req.setHeader("Content-Type", ct)
	h := req.w.Header()
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

// setChecksumHeaders sets the whole object's checksums, the ones that are
// well-formed header values.
func setChecksumHeaders(h http.Header, c Checksums) {
	set := false
	for _, kv := range [][2]string{
		{"X-Amz-Checksum-Crc64nvme", c.CRC64NVME},
		{"X-Amz-Checksum-Crc32c", c.CRC32C},
		{"X-Amz-Checksum-Crc32", c.CRC32},
		{"X-Amz-Checksum-Sha1", c.SHA1},
		{"X-Amz-Checksum-Sha256", c.SHA256},
	} {
		if kv[1] != "" && !strings.ContainsAny(kv[1], "\r\n") {
			h.Set(kv[0], kv[1])
			set = true
		}
	}
	if set && c.Type != "" && !strings.ContainsAny(c.Type, "\r\n") {
		h.Set("X-Amz-Checksum-Type", c.Type)
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
	// As S3 does: a batch delete must carry a digest of its body. Neither
	// header can be set by a web page without a CORS preflight.
	if !hasBodyDigest(req.r, req.auth.payload) {
		return errInvalidRequest.with("Missing required header for this request: Content-MD5 or x-amz-checksum-*.")
	}
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
