package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SigV4 constants as AWS defines them.
const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	scopeDateFmt   = "20060102"
	// maxSkew is how far a signed request's date may be from the clock;
	// S3 uses 15 minutes.
	maxSkew = 15 * time.Minute
	// maxPresignExpiry is S3's limit for X-Amz-Expires: seven days.
	maxPresignExpiry = 7 * 24 * time.Hour

	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSignedPayload   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256              = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// sigV4Header is a parsed Authorization header.
type sigV4Header struct {
	accessKey     string
	date          string // yyyymmdd of the scope
	region        string
	service       string
	signedHeaders []string
	signature     string
}

// parseSigV4Header parses
// "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex".
func parseSigV4Header(h string) (sigV4Header, error) {
	var out sigV4Header
	rest, ok := strings.CutPrefix(h, sigV4Algorithm)
	if !ok || (rest != "" && rest[0] != ' ') {
		return out, errAuthHeaderMalformed.with("Unsupported authorization algorithm.")
	}
	var haveCred, haveSH, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return out, errAuthHeaderMalformed.with("The authorization header is malformed; expected Key=Value pairs.")
		}
		switch k {
		case "Credential":
			if haveCred {
				return out, errAuthHeaderMalformed.with("Duplicate Credential.")
			}
			haveCred = true
			if err := out.parseCredential(v); err != nil {
				return out, err
			}
		case "SignedHeaders":
			if haveSH {
				return out, errAuthHeaderMalformed.with("Duplicate SignedHeaders.")
			}
			haveSH = true
			sh, err := parseSignedHeaders(v)
			if err != nil {
				return out, err
			}
			out.signedHeaders = sh
		case "Signature":
			if haveSig {
				return out, errAuthHeaderMalformed.with("Duplicate Signature.")
			}
			haveSig = true
			if !isHexSig(v) {
				return out, errAuthHeaderMalformed.with("The signature is not 64 hex characters.")
			}
			out.signature = v
		default:
			return out, errAuthHeaderMalformed.with("Unknown authorization component.")
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return out, errAuthHeaderMalformed.with("The authorization header needs Credential, SignedHeaders and Signature.")
	}
	return out, nil
}

// parseCredential parses AK/yyyymmdd/region/service/aws4_request. The
// access key itself must not contain '/'.
func (s *sigV4Header) parseCredential(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return errAuthHeaderMalformed.with("The Credential is malformed; expected \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	if _, err := time.Parse(scopeDateFmt, parts[1]); err != nil || len(parts[1]) != 8 {
		return errAuthHeaderMalformed.with("The Credential date is malformed.")
	}
	s.accessKey, s.date, s.region, s.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func parseSignedHeaders(v string) ([]string, error) {
	if v == "" {
		return nil, errAuthHeaderMalformed.with("SignedHeaders is empty.")
	}
	hs := strings.Split(v, ";")
	for i, h := range hs {
		if h == "" || h != strings.ToLower(h) || containsStr(hs[:i], h) {
			return nil, errAuthHeaderMalformed.with("SignedHeaders must be lower-case and unique.")
		}
	}
	return hs, nil
}

func isHexSig(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// authResult is what a verified request carries on to payload decoding.
type authResult struct {
	anonymous  bool
	accessKey  string
	signingKey []byte
	amzDate    string
	scope      string
	seedSig    string // the request signature, seed of chunk signatures
	// payload is the request's x-amz-content-sha256 value, the one the
	// signature covered: what the body is decoded and verified by.
	payload string
}

// declaredPayload returns the x-amz-content-sha256 a request declares, the
// one value both the signature check and the body check use. A presigned
// URL's query parameter is signed, so it wins; a header that says anything
// else is refused rather than ignored.
func declaredPayload(r *http.Request, q url.Values) (string, error) {
	hv := r.Header.Values("X-Amz-Content-Sha256")
	qv := q["X-Amz-Content-Sha256"]
	if len(hv) > 1 || len(qv) > 1 {
		return "", errInvalidArgument.with("x-amz-content-sha256 is given more than once.")
	}
	switch {
	case len(qv) == 1 && len(hv) == 1 && qv[0] != hv[0]:
		return "", errInvalidArgument.with("The x-amz-content-sha256 header conflicts with the X-Amz-Content-Sha256 query parameter.")
	case len(qv) == 1:
		return qv[0], nil
	case len(hv) == 1:
		return hv[0], nil
	}
	return "", nil
}

// authenticate verifies the request's SigV4 signature (header or presigned
// query). With no credentials configured, everything is anonymous.
func (g *Gateway) authenticate(r *http.Request, q url.Values) (authResult, error) {
	payload, err := declaredPayload(r, q)
	if err != nil {
		return authResult{}, err
	}
	res, err := g.verify(r, q, payload)
	res.payload = payload
	return res, err
}

func (g *Gateway) verify(r *http.Request, q url.Values, payload string) (authResult, error) {
	if len(g.secrets) == 0 {
		return authResult{anonymous: true}, nil
	}
	authz := r.Header.Get("Authorization")
	switch {
	case authz != "":
		if strings.HasPrefix(authz, "AWS ") {
			return authResult{}, errAccessDenied.with("Signature Version 2 is not supported; use AWS Signature Version 4.")
		}
		if q.Has("X-Amz-Signature") {
			return authResult{}, errInvalidArgument.with("Only one auth mechanism allowed.")
		}
		return g.verifyHeaderAuth(r, q, authz, payload)
	case q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential"):
		return g.verifyPresigned(r, q, payload)
	case q.Has("AWSAccessKeyId") || q.Has("Signature"):
		return authResult{}, errAccessDenied.with("Signature Version 2 is not supported; use AWS Signature Version 4.")
	}
	if g.cfg.AllowAnonymous {
		return authResult{anonymous: true}, nil
	}
	return authResult{}, errAccessDenied.with("Anonymous access is not allowed.")
}

func (g *Gateway) verifyHeaderAuth(r *http.Request, q url.Values, authz, payload string) (authResult, error) {
	sh, err := parseSigV4Header(authz)
	if err != nil {
		return authResult{}, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		amzDate = r.Header.Get("Date")
		if t, err := http.ParseTime(amzDate); err == nil {
			amzDate = t.UTC().Format(amzDateFormat)
		}
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return authResult{}, errAccessDenied.with("AWS authentication requires a valid Date or x-amz-date header.")
	}
	if err := g.checkScope(sh, amzDate, errAuthHeaderMalformed); err != nil {
		return authResult{}, err
	}
	if skew := g.now().Sub(t); skew > maxSkew || skew < -maxSkew {
		return authResult{}, errRequestTimeTooSkewed
	}
	if !containsStr(sh.signedHeaders, "host") {
		return authResult{}, errAuthHeaderMalformed.with("The host header must be signed.")
	}
	if r.Header.Get("X-Amz-Content-Sha256") == "" {
		return authResult{}, errMissingSecurityHeader.with("Missing required header for this request: x-amz-content-sha256")
	}
	secret, ok := g.secrets[sh.accessKey]
	if !ok {
		return authResult{}, errInvalidAccessKeyID
	}
	creq := canonicalRequest(r, q, sh.signedHeaders, payload, false)
	return g.checkSignature(secret, sh, amzDate, creq)
}

func (g *Gateway) verifyPresigned(r *http.Request, q url.Values, payload string) (authResult, error) {
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[k]) != 1 {
			return authResult{}, errAuthQueryMalformed.with("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if q.Get("X-Amz-Algorithm") != sigV4Algorithm {
		return authResult{}, errAuthQueryMalformed.with("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".")
	}
	var sh sigV4Header
	if err := sh.parseCredential(q.Get("X-Amz-Credential")); err != nil {
		return authResult{}, errAuthQueryMalformed.with("Error parsing the X-Amz-Credential parameter.")
	}
	hs, err := parseSignedHeaders(q.Get("X-Amz-SignedHeaders"))
	if err != nil {
		return authResult{}, errAuthQueryMalformed.with("X-Amz-SignedHeaders is malformed.")
	}
	sh.signedHeaders = hs
	sh.signature = q.Get("X-Amz-Signature")
	if !isHexSig(sh.signature) {
		return authResult{}, errAuthQueryMalformed.with("X-Amz-Signature is malformed.")
	}
	amzDate := q.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return authResult{}, errAuthQueryMalformed.with("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".")
	}
	exp, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || exp < 0 {
		return authResult{}, errAuthQueryMalformed.with("X-Amz-Expires should be a number.")
	}
	if time.Duration(exp)*time.Second > maxPresignExpiry {
		return authResult{}, errAuthQueryMalformed.with("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds.")
	}
	if err := g.checkScope(sh, amzDate, errAuthQueryMalformed); err != nil {
		return authResult{}, err
	}
	now := g.now()
	if t.Sub(now) > maxSkew {
		return authResult{}, errAccessDenied.with("Request is not valid yet")
	}
	if now.After(t.Add(time.Duration(exp) * time.Second)) {
		return authResult{}, errExpiredRequest
	}
	if !containsStr(sh.signedHeaders, "host") {
		return authResult{}, errAuthQueryMalformed.with("The host header must be signed.")
	}
	secret, ok := g.secrets[sh.accessKey]
	if !ok {
		return authResult{}, errInvalidAccessKeyID
	}
	if payload == "" {
		payload = unsignedPayload
	}
	creq := canonicalRequest(r, q, sh.signedHeaders, payload, true)
	return g.checkSignature(secret, sh, amzDate, creq)
}

// checkScope checks the credential scope against the request date, the
// configured region and the service.
func (g *Gateway) checkScope(sh sigV4Header, amzDate string, malformed *s3Error) error {
	if !strings.HasPrefix(amzDate, sh.date) {
		return malformed.with("The credential scope date does not match the request date.")
	}
	if sh.region != g.cfg.Region {
		return malformed.with("The authorization header is malformed; the region '" + truncate(sh.region, 64) + "' is wrong; expecting '" + g.cfg.Region + "'")
	}
	if sh.service != "s3" {
		return malformed.with("The credential scope must name the s3 service.")
	}
	return nil
}

func (g *Gateway) checkSignature(secret string, sh sigV4Header, amzDate, creq string) (authResult, error) {
	scope := sh.date + "/" + sh.region + "/" + sh.service + "/aws4_request"
	key := signingKey(secret, sh.date, sh.region, sh.service)
	sts := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(creq))
	want := hex.EncodeToString(hmacSHA256(key, []byte(sts)))
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(sh.signature))) != 1 {
		return authResult{}, errSignatureMismatch
	}
	return authResult{accessKey: sh.accessKey, signingKey: key, amzDate: amzDate, scope: scope, seedSig: want}, nil
}

// canonicalRequest builds the SigV4 canonical request as S3 defines it:
// the path is URI-encoded once (S3 does not double-encode), the query is
// sorted by encoded key and value, headers are lower-case with trimmed,
// space-collapsed values.
func canonicalRequest(r *http.Request, q url.Values, signed []string, payload string, presigned bool) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(uriEncode(path, false))
	b.WriteByte('\n')

	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		ek := uriEncode(k, true)
		for _, v := range vs {
			pairs = append(pairs, kv{ek, uriEncode(v, true)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	b.WriteByte('\n')

	for _, h := range signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		vals = r.TransferEncoding
	default:
		vals = r.Header.Values(name)
	}
	out := make([]string, len(vals)) // never modify the request's header slices
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// uriEncode percent-encodes everything but RFC 3986 unreserved characters;
// '/' is kept unless encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
