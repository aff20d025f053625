package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testAK     = "AKIDSHOALTEST"
	testSK     = "shoal-test-secret-key"
	testBucket = "test-bucket"
)

type testEnv struct {
	srv *httptest.Server
	be  *fakeBackend
	gw  *Gateway
	reg *prometheus.Registry
	// seen records the x-amz-content-sha256 header of every request.
	seen chan string
}

// newEnv serves a Gateway over the fake backend. With auth, testAK/testSK
// are the only credentials; without, the gateway is anonymous.
func newEnv(t testing.TB, auth, useTLS bool, opts ...Option) *testEnv {
	t.Helper()
	cfg := Config{Domains: []string{"s3.local"}}
	if auth {
		cfg.Credentials = []Credential{{AccessKey: testAK, SecretKey: testSK}}
	} else {
		cfg.AllowAnonymous = true
	}
	e := &testEnv{be: newFakeBackend(testBucket, "other-bucket"), reg: prometheus.NewRegistry(), seen: make(chan string, 1024)}
	gw, err := New(cfg, e.be, append([]Option{WithRegisterer(e.reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case e.seen <- r.Header.Get("X-Amz-Content-Sha256"):
		default:
		}
		gw.ServeHTTP(w, r)
	})
	if useTLS {
		e.srv = httptest.NewTLSServer(h)
	} else {
		e.srv = httptest.NewServer(h)
	}
	t.Cleanup(e.srv.Close)
	return e
}

func staticCreds(ak, sk string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, Source: "test"}, nil
	})
}

// client returns a path-style SDK client with the test credentials.
func (e *testEnv) client(t *testing.T, fns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	o := s3.Options{
		Region:       "us-east-1",
		Credentials:  staticCreds(testAK, testSK),
		BaseEndpoint: aws.String(e.srv.URL),
		UsePathStyle: true,
		HTTPClient:   e.srv.Client(),
		Retryer:      aws.NopRetryer{},
	}
	for _, fn := range fns {
		fn(&o)
	}
	return s3.New(o)
}

// vhostClient returns a virtual-hosted-style client: bucket.s3.local:port,
// with every connection routed to the test server.
func (e *testEnv) vhostClient(t *testing.T) *s3.Client {
	t.Helper()
	addr := e.srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return e.client(t, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://s3.local:" + port)
		o.UsePathStyle = false
		o.HTTPClient = &http.Client{Transport: tr}
	})
}

// apiCode returns the S3 error code and HTTP status of an SDK error.
func apiCode(t *testing.T, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// do sends a raw request to the test server and returns status, headers
// and body.
func (e *testEnv) do(t *testing.T, method, path string, hdr map[string]string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// errCode extracts <Code> from an S3 XML error body.
func errCode(body string) string {
	_, rest, ok := strings.Cut(body, "<Code>")
	if !ok {
		return ""
	}
	code, _, _ := strings.Cut(rest, "</Code>")
	return code
}
