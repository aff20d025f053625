package integration

// Requests shaped like those a web page in the user's browser can make
// (docs/SECURITY.md, "A web page"), against real node processes.

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// browserRequest sends one request to addr with the given headers ("Host"
// sets the Host header, as a DNS-rebinding page does) and returns status
// and body.
func browserRequest(t *testing.T, method, addr, path string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// originHas reports whether the origin still holds bucket/key.
func originHas(t *testing.T, s *testenv.S3, bucket, key string) bool {
	t.Helper()
	_, err := s.Client(t).HeadObject(ctxT(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	if httpStatus(err) == 404 {
		return false
	}
	t.Fatalf("HEAD at the origin: %v", err)
	return false
}

func TestWebPagesCannotUseTheAnonymousGateway(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "web", testenv.NodeOptions{})
	secret := []byte("a private object")
	s.PutObject(t, "web", "victim", secret)
	_, port, _ := net.SplitHostPort(n.GatewayAddr)

	// DNS rebinding: the page's own name, now resolving to 127.0.0.1.
	status, body := browserRequest(t, "GET", n.GatewayAddr, "/web/victim", map[string]string{"Host": "rebind.evil.example:" + port}, "")
	if status != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") || strings.Contains(body, string(secret)) {
		t.Fatalf("GET under a foreign Host: %d %s", status, body)
	}
	// The user's own names keep working, virtual-hosted style too.
	for _, host := range []string{n.GatewayAddr, "localhost:" + port, "web.localhost:" + port} {
		path := "/web/victim"
		if strings.HasPrefix(host, "web.") {
			path = "/victim"
		}
		if status, body := browserRequest(t, "GET", n.GatewayAddr, path, map[string]string{"Host": host}, ""); status != 200 || body != string(secret) {
			t.Fatalf("GET with Host %s: %d %.200s", host, status, body)
		}
	}

	// A form or text/plain fetch needs no preflight.
	deleteXML := "<Delete><Object><Key>victim</Key></Object></Delete>"
	sum := md5.Sum([]byte(deleteXML))
	for name, hdr := range map[string]map[string]string{
		"from another site": {"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		"no digest":         {"Content-Type": "text/plain"},
		"foreign Host":      {"Host": "rebind.evil.example:" + port, "Content-MD5": base64.StdEncoding.EncodeToString(sum[:])},
	} {
		status, body := browserRequest(t, "POST", n.GatewayAddr, "/web?delete", hdr, deleteXML)
		if status != 403 && status != 400 {
			t.Errorf("POST ?delete %s: %d %.300s", name, status, body)
		}
		if !originHas(t, s, "web", "victim") {
			t.Fatalf("POST ?delete %s deleted the object at the origin (%d %s)", name, status, body)
		}
	}
	if status, body := browserRequest(t, "POST", n.GatewayAddr, "/web?delete", map[string]string{"Content-Type": "text/plain"}, deleteXML); status != 400 || !strings.Contains(body, "Content-MD5") {
		t.Errorf("POST ?delete without a digest: %d %s, want 400 naming Content-MD5", status, body)
	}
	if status, _ := browserRequest(t, "PUT", n.GatewayAddr, "/web/victim", map[string]string{"Origin": "http://evil.example"}, "overwritten"); status != 403 {
		t.Errorf("cross-site PUT: %d", status)
	}
	mustGet(t, n.Client(t), "web", "victim", secret)

	// The SDK sends a checksum with DeleteObjects: it still works.
	out, err := n.Client(t).DeleteObjects(ctxT(t), &s3.DeleteObjectsInput{Bucket: aws.String("web"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("victim")}}}})
	if err != nil || len(out.Deleted) != 1 {
		t.Fatalf("SDK DeleteObjects: %v %+v", err, out)
	}
	if originHas(t, s, "web", "victim") {
		t.Fatal("SDK DeleteObjects did not delete at the origin")
	}
}

func TestWebPagesCannotUseTheAdminAPI(t *testing.T) {
	t.Parallel()
	const ak, sk = "WEBTESTKEY", "argv-secret-do-not-show"
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "data", "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data", "big", "x.bin"), randomBytes(1000, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	n := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + root, AccessKey: ak, SecretKey: sk, ExtraArgs: []string{"--pprof"}})
	_, port, _ := net.SplitHostPort(n.AdminAddr)
	pins := func() float64 {
		t.Helper()
		v, _ := n.Status(t)["Pins"].(float64)
		return v
	}

	pin := `{"bucket":"data","prefix":"big/"}`
	for name, hdr := range map[string]map[string]string{
		"text/plain":             {"Content-Type": "text/plain"},
		"form":                   {"Content-Type": "application/x-www-form-urlencoded"},
		"JSON from another site": {"Content-Type": "application/json", "Origin": "https://evil.example"},
		"JSON, cross-site fetch": {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
		"JSON, foreign Host":     {"Content-Type": "application/json", "Host": "rebind.evil.example:" + port},
	} {
		if status, body := browserRequest(t, "POST", n.AdminAddr, "/v1/pin", hdr, pin); status != 415 && status != 403 {
			t.Errorf("POST /v1/pin %s: %d %s", name, status, body)
		}
	}
	if p := pins(); p != 0 {
		t.Fatalf("a refused request pinned: %v pins", p)
	}
	if status, _ := browserRequest(t, "GET", n.AdminAddr, "/v1/status", map[string]string{"Host": "rebind.evil.example:" + port}, ""); status != 403 {
		t.Errorf("GET /v1/status under a foreign Host: %d", status)
	}

	// pprof (on with --pprof) never shows the secret, and is refused under
	// a foreign Host.
	status, body := browserRequest(t, "GET", n.AdminAddr, "/debug/pprof/cmdline", nil, "")
	if status != 200 || strings.Contains(body, sk) || !strings.Contains(body, "REDACTED") || !strings.Contains(body, "--pprof") {
		t.Fatalf("/debug/pprof/cmdline: %d %q", status, body)
	}
	if status, body := browserRequest(t, "GET", n.AdminAddr, "/debug/pprof/cmdline", map[string]string{"Host": "rebind.evil.example:" + port}, ""); status != 403 || strings.Contains(body, "gateway") {
		t.Fatalf("/debug/pprof/cmdline under a foreign Host: %d %q", status, body)
	}
	if strings.Contains(n.Log(), sk) {
		t.Error("the secret is in the node's log")
	}
	if !strings.Contains(n.Log(), "secret is on the command line") {
		t.Error("no warning about the secret on the command line")
	}

	// The CLI keeps working.
	if stdout, stderr, code := n.CLI(t, "pin", "s3://data/big/"); code != 0 {
		t.Fatalf("shoal pin: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if p := pins(); p != 1 {
		t.Fatalf("after shoal pin: %v pins", p)
	}
}

func TestSecretKeyFromAFileOrTheEnvironment(t *testing.T) {
	t.Parallel()
	const ak, sk = "FILEKEY", "secret-from-a-file"
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data", "k"), []byte("v"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(keyFile, []byte(sk+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + root,
		ExtraArgs: []string{"--gateway-access-key", ak, "--gateway-secret-key-file", keyFile}})
	fromEnv := testenv.StartNode(t, testenv.NodeOptions{Origin: "file://" + root,
		Env: []string{"SHOAL_GATEWAY_ACCESS_KEY=" + ak, "SHOAL_GATEWAY_SECRET_KEY=" + sk}})
	for name, n := range map[string]*testenv.Node{"file": fromFile, "env": fromEnv} {
		mustGet(t, n.ClientWithKeys(t, ak, sk), "data", "k", []byte("v"))
		_, _, err := get(ctxT(t), n.ClientWithKeys(t, "", ""), "data", "k", "")
		wantStatus(t, name+": anonymous", err, 403, "AccessDenied")
		// pprof is off unless asked for.
		if status, _ := browserRequest(t, "GET", n.AdminAddr, "/debug/pprof/cmdline", nil, ""); status != 404 {
			t.Errorf("%s: /debug/pprof/cmdline without --pprof: %d", name, status)
		}
		if strings.Contains(n.Log(), "secret is on the command line") {
			t.Errorf("%s: warned about a secret on the command line", name)
		}
	}
	_, err := fromFile.ClientWithKeys(t, ak, "wrong").ListBuckets(context.Background(), &s3.ListBucketsInput{})
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
		t.Fatalf("wrong secret: %v", err)
	}
}
