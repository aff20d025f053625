package gateway

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAWSCLI drives the gateway with the aws CLI when it is installed:
// upload (multipart for the large file), listing, download, head, delete.
func TestAWSCLI(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not installed")
	}
	if testing.Short() {
		t.Skip("slow: starts the aws CLI several times")
	}
	e := newEnv(t, true, false)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	writeFile(t, cfgFile, "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    multipart_threshold = 8MB\n    multipart_chunksize = 8MB\n")
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append([]string{"--endpoint-url", e.srv.URL}, args...)...)
		cmd.Env = []string{
			"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "AWS_CONFIG_FILE=" + cfgFile,
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
			"AWS_ACCESS_KEY_ID=" + testAK, "AWS_SECRET_ACCESS_KEY=" + testSK,
			"AWS_EC2_METADATA_DISABLED=true",
		}
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return out.String()
	}
	small, large := randBytes(t, 1000), randBytes(t, 9<<20)
	writeFile(t, filepath.Join(dir, "small"), string(small))
	writeFile(t, filepath.Join(dir, "large"), string(large))

	run("s3", "cp", filepath.Join(dir, "small"), "s3://"+testBucket+"/cli/small.bin")
	run("s3", "cp", filepath.Join(dir, "large"), "s3://"+testBucket+"/cli/large.bin")
	if got, _ := e.be.object(testBucket, "cli/large.bin"); !bytes.Equal(got, large) {
		t.Fatalf("large upload stored %d bytes", len(got))
	}
	ls := run("s3", "ls", "s3://"+testBucket+"/cli/")
	if !strings.Contains(ls, "small.bin") || !strings.Contains(ls, "large.bin") {
		t.Errorf("ls: %s", ls)
	}
	run("s3", "cp", "s3://"+testBucket+"/cli/large.bin", filepath.Join(dir, "back"))
	if got, _ := os.ReadFile(filepath.Join(dir, "back")); !bytes.Equal(got, large) {
		t.Errorf("download returned %d bytes", len(got))
	}
	if head := run("s3api", "head-object", "--bucket", testBucket, "--key", "cli/small.bin"); !strings.Contains(head, `"ContentLength": 1000`) {
		t.Errorf("head-object: %s", head)
	}
	run("s3", "rm", "s3://"+testBucket+"/cli/small.bin")
	if _, ok := e.be.object(testBucket, "cli/small.bin"); ok {
		t.Error("rm did not delete")
	}
	// A recursive rm is a DeleteObjects batch, which needs a body digest.
	run("s3", "rm", "--recursive", "s3://"+testBucket+"/cli/")
	if _, ok := e.be.object(testBucket, "cli/large.bin"); ok {
		t.Error("rm --recursive did not delete")
	}
}
