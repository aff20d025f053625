package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

// rawRequest sends bytes on a fresh connection and returns the status line
// ("" if the server closed the connection without answering).
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return ""
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestBadInputNeverCrashes(t *testing.T) {
	t.Parallel()
	s, n := startS3Node(t, "robust", testenv.NodeOptions{})
	good := []byte("still here")
	s.PutObject(t, "robust", "good.txt", good)
	for _, k := range []string{"a/../b", "ünï/日本語.txt", "sp ace+plus"} {
		s.PutObject(t, "robust", k, []byte("k:"+k))
	}
	c := n.Client(t)
	ctx := ctxT(t)
	mustGet(t, c, "robust", "good.txt", good)

	_, _, err := get(ctx, c, "no-such-bucket", "x", "")
	if httpStatus(err) != 404 || errorCode(err) != "NoSuchBucket" {
		// Not fatal: the rest of this test checks that bad input never crashes the node.
		t.Errorf("unknown bucket: %v, want 404 NoSuchBucket", err)
	}
	_, _, err = get(ctx, c, "robust", "no/such/key", "")
	wantStatus(t, "unknown key", err, 404, "NoSuchKey")
	// Unusual but legal keys round-trip as S3 keys, never as paths.
	mustGet(t, c, "robust", "ünï/日本語.txt", []byte("k:ünï/日本語.txt"))
	mustGet(t, c, "robust", "sp ace+plus", []byte("k:sp ace+plus"))
	if got, _, err := get(ctx, c, "robust", "a/../b", ""); err == nil && string(got) != "k:a/../b" {
		t.Fatalf(`"a/../b" served %q`, got)
	}

	base := n.Endpoint
	paths := []string{
		"/robust/%00", "/robust/a%00b", "/robust/..%2f..%2fetc%2fpasswd", "/robust/../../etc/passwd",
		"/%zz", "//", "/robust//x", "/" + strings.Repeat("a", 300), "/robust/" + strings.Repeat("k", 2000),
		"/robust?list-type=2&max-keys=-5", "/robust?list-type=2&max-keys=abc", "/robust?list-type=2&continuation-token=%%%",
		"/robust/other.txt?partNumber=99", "/robust?acl", "/UPPER/x", "/ab/x",
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete} {
			req, err := http.NewRequestWithContext(ctx, m, base+p, nil)
			if err != nil {
				continue // not even a URL
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 && resp.StatusCode != 501 && resp.StatusCode != 503 {
				t.Errorf("%s %s: %d", m, p, resp.StatusCode)
			}
		}
	}
	// Malformed HTTP and absurd headers on raw connections (named by the
	// gateway's own address, so that they reach the S3 code).
	for name, req := range map[string]string{
		"huge header":  "GET /robust/good.txt HTTP/1.1\r\nHost: " + n.GatewayAddr + "\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n",
		"many headers": "GET /robust/good.txt HTTP/1.1\r\nHost: " + n.GatewayAddr + "\r\n" + strings.Repeat("X-A: b\r\n", 20000) + "\r\n",
		"garbage":      "\x00\x01\x02 nonsense\r\n\r\n",
		"bad range":    "GET /robust/good.txt HTTP/1.1\r\nHost: " + n.GatewayAddr + "\r\nRange: bytes=--1,zz\r\nConnection: close\r\n\r\n",
		"bad length":   "PUT /robust/x HTTP/1.1\r\nHost: " + n.GatewayAddr + "\r\nContent-Length: -7\r\n\r\n",
		"bad chunked":  "PUT /robust/x HTTP/1.1\r\nHost: " + n.GatewayAddr + "\r\nTransfer-Encoding: chunked\r\nx-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\nConnection: close\r\n\r\nzz\r\n",
		"bad xml":      "POST /robust/x?uploadId=abc HTTP/1.1\r\nHost: " + n.GatewayAddr + "\r\nContent-Length: 9\r\nConnection: close\r\n\r\n<<<<<<<<<",
	} {
		status := rawRequest(t, n.GatewayAddr, req)
		if strings.Contains(status, " 500 ") {
			t.Errorf("%s: %q", name, status)
		}
	}
	if !n.Running() {
		t.Fatal("node died")
	}
	mustGet(t, c, "robust", "good.txt", good)
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("robust"), Key: aws.String("good.txt")})
	if err != nil || aws.ToInt64(h.ContentLength) != int64(len(good)) {
		t.Fatalf("HEAD after the abuse: %v", err)
	}
}
