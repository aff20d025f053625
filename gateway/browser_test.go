package gateway

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// port returns the test server's port.
func (e *testEnv) port() string {
	_, p, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	return p
}

// A DNS-rebinding page reaches the loopback gateway under its own name: the
// Host header is the only thing that tells the two apart.
func TestAnonymousGatewayRefusesForeignHosts(t *testing.T) {
	e := newEnv(t, false, false)
	e.be.put(testBucket, "k", []byte("private bytes"), nil)
	p := e.port()
	for _, tc := range []struct {
		host   string
		path   string
		status int
	}{
		{"127.0.0.1:" + p, "/" + testBucket + "/k", 200},
		{"localhost:" + p, "/" + testBucket + "/k", 200},
		{"LOCALHOST.:" + p, "/" + testBucket + "/k", 200},
		{"[::1]:" + p, "/" + testBucket + "/k", 200},
		{testBucket + ".localhost:" + p, "/k", 200},
		{testBucket + ".s3.local", "/k", 200},
		{testBucket + ".s3.local:" + p, "/k", 200},
		{"s3.local:8080", "/" + testBucket + "/k", 200},
		{"evil.example:" + p, "/" + testBucket + "/k", 403},
		{"evil.example", "/" + testBucket + "/k", 403},
		{testBucket + ".evil.example:" + p, "/k", 403},
		{"localhost.evil.example:" + p, "/" + testBucket + "/k", 403},
		{"localhost:1", "/" + testBucket + "/k", 403},
		{"127.0.0.1", "/" + testBucket + "/k", 403},
		{"127.0.0.2:" + p, "/" + testBucket + "/k", 403},
	} {
		t.Run(tc.host, func(t *testing.T) {
			status, h, body := e.do(t, "GET", tc.path, map[string]string{"Host": tc.host}, nil)
			if status != tc.status {
				t.Fatalf("%d %.200s, want %d", status, body, tc.status)
			}
			if status == 403 {
				if errCode(body) != "AccessDenied" || h.Get("Content-Type") != "application/xml" || strings.Contains(body, "private") {
					t.Fatalf("refusal is not a clean S3 error: %s", body)
				}
				if !strings.Contains(body, "Host") {
					t.Errorf("the error does not say what was wrong: %s", body)
				}
			}
		})
	}
}

func TestAllowedHostsOption(t *testing.T) {
	be := newFakeBackend(testBucket)
	be.put(testBucket, "k", []byte("v"), nil)
	gw, err := New(Config{AllowAnonymous: true, AllowedHosts: []string{"cache.internal", "proxy.example:8443"}}, be)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	e := &testEnv{srv: srv}
	for host, want := range map[string]int{
		"cache.internal":        200,
		"cache.internal:7070":   200,
		"proxy.example:8443":    200,
		"proxy.example":         403,
		"proxy.example:9000":    403,
		"b.cache.internal:7070": 403, // an allowed host is not a virtual-hosting domain
	} {
		if status, _, body := e.do(t, "GET", "/"+testBucket+"/k", map[string]string{"Host": host}, nil); status != want {
			t.Errorf("Host %s: %d %.120s, want %d", host, status, body, want)
		}
	}
	for _, bad := range [][]string{{"http://x"}, {"a/b"}, {""}, {"x:y"}, {"has space"}} {
		if _, err := New(Config{AllowAnonymous: true, AllowedHosts: bad}, be); err == nil {
			t.Errorf("AllowedHosts %q accepted", bad)
		}
	}
}

// Signed requests carry their Host inside the signature: a gateway with
// credentials answers them under any name the client signed.
func TestSignedRequestsAreNotHostChecked(t *testing.T) {
	e := newEnv(t, true, false)
	e.be.put(testBucket, "k", []byte("signed"), nil)
	addr := e.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := e.client(t, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://shoal.example.net:" + e.port())
		o.HTTPClient = &http.Client{Transport: tr}
	})
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("signed GET under a DNS name: %v", err)
	}
	out.Body.Close()
}

// A web page can send simple requests (form posts, text/plain fetches)
// without a preflight; the browser marks them with Origin and
// Sec-Fetch-Site, and those are refused for anything that changes data.
func TestAnonymousGatewayRefusesCrossSiteWrites(t *testing.T) {
	e := newEnv(t, false, false)
	p := e.port()
	self := "http://127.0.0.1:" + p
	deleteXML := "<Delete><Object><Key>victim</Key></Object></Delete>"
	sum := md5.Sum([]byte(deleteXML))
	md5b64 := base64.StdEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
	}{
		{"delete objects from another site", "POST", "/" + testBucket + "?delete", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain", "Content-MD5": md5b64}, deleteXML, 403},
		{"delete objects, cross-site fetch", "POST", "/" + testBucket + "?delete", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain", "Content-MD5": md5b64}, deleteXML, 403},
		{"delete objects, same-site fetch", "POST", "/" + testBucket + "?delete", map[string]string{"Sec-Fetch-Site": "same-site", "Content-MD5": md5b64}, deleteXML, 403},
		{"delete from a sandboxed page", "DELETE", "/" + testBucket + "/victim", map[string]string{"Origin": "null"}, "", 403},
		{"delete from another local port", "DELETE", "/" + testBucket + "/victim", map[string]string{"Origin": "http://localhost:3000"}, "", 403},
		{"put from another site", "PUT", "/" + testBucket + "/victim", map[string]string{"Origin": "http://evil.example"}, "overwritten", 403},
		{"create upload from another site", "POST", "/" + testBucket + "/victim?uploads", map[string]string{"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"}, "", 403},
		{"read from another site", "GET", "/" + testBucket + "/victim", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "", 200},
		{"same-origin put", "PUT", "/" + testBucket + "/mine", map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, "ok", 200},
		{"typed into the address bar", "PUT", "/" + testBucket + "/mine2", map[string]string{"Sec-Fetch-Site": "none"}, "ok", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.be.put(testBucket, "victim", []byte("keep me"), nil)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			status, _, rb := e.do(t, tc.method, tc.path, tc.hdr, body)
			if status != tc.status {
				t.Fatalf("%d %.200s, want %d", status, rb, tc.status)
			}
			if status == 403 && errCode(rb) != "AccessDenied" {
				t.Errorf("code %q: %s", errCode(rb), rb)
			}
			if d, ok := e.be.object(testBucket, "victim"); !ok || string(d) != "keep me" {
				t.Errorf("victim after the request: %q (exists %v)", d, ok)
			}
		})
	}
}

// S3 requires Content-MD5 or an x-amz-checksum-* header on DeleteObjects;
// neither can be set by a page without a preflight.
func TestDeleteObjectsNeedsABodyDigest(t *testing.T) {
	e := newEnv(t, false, false)
	xmlBody := "<Delete><Object><Key>victim</Key></Object></Delete>"
	sum := md5.Sum([]byte(xmlBody))
	crc := crc32.ChecksumIEEE([]byte(xmlBody))
	crcB64 := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	for _, tc := range []struct {
		name    string
		hdr     map[string]string
		status  int
		code    string
		deleted bool
	}{
		{"no digest", map[string]string{"Content-Type": "text/plain"}, 400, "InvalidRequest", false},
		{"wrong md5", map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(make([]byte, 16))}, 400, "BadDigest", false},
		{"wrong checksum", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}, 400, "BadDigest", false},
		{"md5", map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(sum[:])}, 200, "", true},
		{"crc32", map[string]string{"X-Amz-Checksum-Crc32": crcB64}, 200, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.be.put(testBucket, "victim", []byte("keep me"), nil)
			status, _, body := e.do(t, "POST", "/"+testBucket+"?delete", tc.hdr, strings.NewReader(xmlBody))
			if status != tc.status || (tc.code != "" && errCode(body) != tc.code) {
				t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.code)
			}
			if tc.code == "InvalidRequest" && !strings.Contains(body, "Content-MD5") {
				t.Errorf("the error does not name the missing header: %s", body)
			}
			if _, ok := e.be.object(testBucket, "victim"); ok == tc.deleted {
				t.Errorf("victim exists %v after the request", ok)
			}
		})
	}
	t.Run("the SDK sends a checksum", func(t *testing.T) {
		e.be.put(testBucket, "victim", []byte("x"), nil)
		c := e.client(t, func(o *s3.Options) { o.Credentials = aws.AnonymousCredentials{} })
		if _, err := c.DeleteObjects(context.Background(), &s3.DeleteObjectsInput{Bucket: aws.String(testBucket),
			Delete: deleteOf("victim")}); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.be.object(testBucket, "victim"); ok {
			t.Error("not deleted")
		}
	})
}

func TestBodyTimeoutIsRequestTimeout(t *testing.T) {
	// What a read deadline on the connection makes a request body return.
	err := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	if se := mapError(err); se.Code != "RequestTimeout" || se.Status != 400 {
		t.Fatalf("a body read past its deadline maps to %s %d", se.Code, se.Status)
	}
}

func deleteOf(keys ...string) *types.Delete {
	d := &types.Delete{}
	for _, k := range keys {
		d.Objects = append(d.Objects, types.ObjectIdentifier{Key: aws.String(k)})
	}
	return d
}
