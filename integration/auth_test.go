package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shoal-cache/shoal/internal/testenv"
)

func TestSigV4(t *testing.T) {
	t.Parallel()
	const ak, sk = "SHOALTESTKEY", "shoal-test-secret"
	s, n := startS3Node(t, "auth", testenv.NodeOptions{AccessKey: ak, SecretKey: sk})
	s.PutObject(t, "auth", "secret.txt", []byte("for signed eyes only"))
	ctx := ctxT(t)

	mustGet(t, n.Client(t), "auth", "secret.txt", []byte("for signed eyes only"))

	_, _, err := get(ctx, n.ClientWithKeys(t, ak, "wrong-secret"), "auth", "secret.txt", "")
	wantStatus(t, "wrong secret", err, 403, "SignatureDoesNotMatch")
	_, _, err = get(ctx, n.ClientWithKeys(t, "NOSUCHKEY", sk), "auth", "secret.txt", "")
	wantStatus(t, "unknown access key", err, 403, "InvalidAccessKeyId")
	_, _, err = get(ctx, n.ClientWithKeys(t, "", ""), "auth", "secret.txt", "")
	wantStatus(t, "anonymous", err, 403, "AccessDenied")

	// Plain HTTP without a signature.
	resp, err := http.Get(n.Endpoint + "/auth/secret.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || strings.Contains(string(body), "signed eyes") {
		t.Fatalf("unsigned GET: %d %q", resp.StatusCode, body)
	}

	// Presigned URLs: accepted, and refused once expired.
	pc := s3.NewPresignClient(n.Client(t))
	req, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("secret.txt")},
		s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "for signed eyes only" {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, body)
	}

	short, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("secret.txt")},
		s3.WithPresignExpires(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // X-Amz-Expires is in whole seconds
	resp, err = http.Get(short.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "AccessDenied") {
		t.Fatalf("expired presigned GET: %d %q", resp.StatusCode, body)
	}

	// A tampered presigned URL (other key) is refused.
	resp, err = http.Get(strings.Replace(req.URL, "secret.txt", "other.txt", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("tampered presigned GET: %d", resp.StatusCode)
	}
}

func TestAnonymousRefusedOnNonLoopback(t *testing.T) {
	t.Parallel()
	_, stderr, code := testenv.RunShoal(t, nil, "node", "--origin", "file://"+t.TempDir(),
		"--data-dir", t.TempDir(), "--gateway-listen", "0.0.0.0:0", "--admin-listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "loopback") {
		t.Fatalf("exit %d, stderr %q; want 2 and a message about loopback", code, stderr)
	}
	_, stderr, code = testenv.RunShoal(t, nil, "node", "--origin", "file://"+t.TempDir(),
		"--data-dir", t.TempDir(), "--gateway-listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(stderr, "admin") {
		t.Fatalf("exit %d, stderr %q; want 2 and a message about the admin API", code, stderr)
	}
}
