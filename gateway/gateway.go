package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// copyBufferSize is the buffer GET bodies are streamed through: large
// enough that per-call overhead is negligible at tens of Gbit/s, small
// enough that thousands of concurrent downloads stay within a few hundred
// MiB.
const copyBufferSize = 256 << 10

// maxXMLBodyBytes bounds request XML bodies (CompleteMultipartUpload with
// 10,000 parts, DeleteObjects with 1,000 keys of 1,024 bytes).
const maxXMLBodyBytes = 4 << 20

// Gateway is the S3-compatible HTTP handler of a node.
type Gateway struct {
	cfg     Config
	be      Backend
	log     *slog.Logger
	now     func() time.Time
	secrets map[string]string // access key -> secret key; read-only after New
	metrics *metrics
	bufs    sync.Pool // *[]byte of copyBufferSize

	idPrefix string
	idSeq    atomic.Uint64
}

var _ http.Handler = (*Gateway)(nil)

// Option injects a collaborator into New.
type Option func(*options)

type options struct {
	log *slog.Logger
	reg prometheus.Registerer
	now func() time.Time
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the gateway's metrics with reg (default: none).
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithClock sets the clock used for SigV4 time checks (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New validates cfg and returns a Gateway serving be.
func New(cfg Config, be Backend, opts ...Option) (*Gateway, error) {
	if be == nil {
		return nil, fmt.Errorf("%w: nil Backend", ErrInvalidConfig)
	}
	cfg.Domains = append([]string(nil), cfg.Domains...)
	cfg.Credentials = append([]Credential(nil), cfg.Credentials...)
	cfg.AllowedHosts = append([]string(nil), cfg.AllowedHosts...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	m, err := newMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	var prefix [6]byte
	_, _ = rand.Read(prefix[:])
	g := &Gateway{
		cfg:      cfg,
		be:       be,
		log:      o.log.With("component", "gateway"),
		now:      o.now,
		secrets:  make(map[string]string, len(cfg.Credentials)),
		metrics:  m,
		idPrefix: hex.EncodeToString(prefix[:]),
	}
	for _, c := range cfg.Credentials {
		g.secrets[c.AccessKey] = c.SecretKey
	}
	g.bufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	return g, nil
}

// request is the per-request state handlers share.
type request struct {
	w     *responseWriter
	r     *http.Request
	q     url.Values
	rt    route
	id    string
	auth  authResult
	start time.Time

	// hv backs the values of response headers set with setHeader.
	hv    [8]string
	hvLen int
}

// setHeader sets a response header whose key is already in canonical form,
// taking its one-element value slice from the request's own backing array:
// the headers every GET sets then cost no allocation each.
func (req *request) setHeader(key, v string) {
	h := req.w.Header()
	if req.hvLen == len(req.hv) {
		h[key] = []string{v}
		return
	}
	i := req.hvLen
	req.hv[i] = v
	req.hvLen++
	h[key] = req.hv[i : i+1 : i+1]
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &request{
		w:     &responseWriter{ResponseWriter: w, status: http.StatusOK},
		r:     r,
		id:    g.idPrefix + strconv.FormatUint(g.idSeq.Add(1), 16),
		start: time.Now(),
		rt:    route{op: opUnknown},
	}
	req.setHeader("X-Amz-Request-Id", req.id)
	req.setHeader("X-Amz-Id-2", req.id)
	req.setHeader("Server", g.cfg.ServerName)
	defer g.observe(req)

	if err := g.serve(req); err != nil {
		g.writeError(req, err)
	}
}

func (g *Gateway) serve(req *request) error {
	r := req.r
	if n := headerBytes(r); n > g.cfg.MaxHeaderBytes {
		return errHeaderTooLarge
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errInvalidURI.with("The query string is malformed.")
	}
	req.q = q
	// Who is asking comes before what is asked: a foreign page learns
	// nothing from how its requests would have been routed.
	if req.auth, err = g.authenticate(r, q); err != nil {
		return err
	}
	if req.auth.anonymous {
		if err := g.checkBrowser(r); err != nil {
			return err
		}
	}
	rt, err := parseRoute(r.Method, r.Host, r.URL.Path, q, g.cfg.Domains)
	req.rt = rt
	if err != nil {
		if rt.op == "" {
			req.rt.op = opUnknown
		}
		return err
	}
	switch rt.op {
	case opListBuckets:
		return g.listBuckets(req)
	case opHeadBucket:
		return g.headBucket(req)
	case opGetBucketLocation:
		return g.bucketLocation(req)
	case opListObjectsV2:
		return g.listObjects(req, true)
	case opListObjects:
		return g.listObjects(req, false)
	case opGetObject, opHeadObject:
		return g.getObject(req)
	case opPutObject:
		return g.putObject(req)
	case opDeleteObject:
		return g.deleteObject(req)
	case opDeleteObjects:
		return g.deleteObjects(req)
	case opCreateMultipart:
		return g.createMultipart(req)
	case opUploadPart:
		return g.uploadPart(req)
	case opCompleteMultipart:
		return g.completeMultipart(req)
	case opAbortMultipart:
		return g.abortMultipart(req)
	}
	return errNotImplemented
}

// headerBytes approximates the size of the request line and headers.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Host) + 16
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// writeError writes err as an S3 XML error (no body for HEAD) if nothing
// was written yet.
func (g *Gateway) writeError(req *request, err error) {
	se := mapError(err)
	if se == errInternal || se.Code == errInternal.Code {
		g.log.Error("request failed", "op", string(req.rt.op), "request_id", req.id, "err", err)
	} else {
		g.log.Debug("request refused", "op", string(req.rt.op), "code", se.Code, "request_id", req.id, "err", err)
	}
	if req.w.wroteHeader {
		return
	}
	// Drop object headers a handler may have set before failing; keep the
	// request ID, Server and a 416's Content-Range.
	h := req.w.Header()
	for k := range h {
		switch k {
		case "X-Amz-Request-Id", "X-Amz-Id-2", "Server":
		case "Content-Range":
			if se.Status != http.StatusRequestedRangeNotSatisfiable {
				delete(h, k)
			}
		default:
			delete(h, k)
		}
	}
	if d := retryAfter(err, se); d > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
		h.Set("X-Amz-Retry-After", strconv.FormatInt(d.Milliseconds(), 10))
	}
	if req.r.Method == http.MethodHead {
		req.w.WriteHeader(se.Status)
		return
	}
	resource := req.r.URL.Path
	body, _ := xml.Marshal(errorBody{Code: se.Code, Message: se.Message, Resource: resource, RequestID: req.id})
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	req.w.WriteHeader(se.Status)
	_, _ = io.WriteString(req.w, xml.Header)
	_, _ = req.w.Write(body)
}

// writeXML writes v as an XML document with status 200.
func (g *Gateway) writeXML(req *request, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("gateway: marshal response: %w", err)
	}
	h := req.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	req.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(req.w, xml.Header)
	_, _ = req.w.Write(body)
	return nil
}

// responseWriter records status and bytes for metrics and whether the
// header was sent; Unwrap keeps http.ResponseController working.
type responseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.status, w.wroteHeader = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
