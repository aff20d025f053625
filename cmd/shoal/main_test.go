package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func runArgs(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, exitUsage, "Usage"},
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"--help"}, exitOK, "shoal node"},
		{[]string{"version"}, exitOK, "shoal "},
		{[]string{"node", "--help"}, exitOK, "SHOAL_MEM_CACHE"},
		{[]string{"node", "--mem-cache", "lots"}, exitUsage, "mem-cache"},
		{[]string{"node", "--origin", "file:///x", "--gateway-listen", "0.0.0.0:0"}, exitUsage, "loopback"},
		{[]string{"node", "--origin", "file:///x", "--admin-listen", "0.0.0.0:0"}, exitUsage, "admin-allow-remote"},
		{[]string{"config", "--hash", "md5"}, exitUsage, "hash"},
		{[]string{"config", "--mem-cache", "2GiB"}, exitOK, "mem-cache: 2GiB"},
		{[]string{"pin"}, exitUsage, "exactly one"},
		{[]string{"pin", "bucket/x"}, exitUsage, "s3://"},
		{[]string{"pin", "--admin", "ftp://x", "s3://bkt/x"}, exitUsage, "bad address"},
		{[]string{"status", "extra"}, exitUsage, "no arguments"},
		{[]string{"status", "--help"}, exitOK, "--admin"},
		{[]string{"status", "--admin", "127.0.0.1:1"}, exitError, "admin"},
		{[]string{"node", "--mount-bucket", "b"}, exitUsage, "need --mount"},
		{[]string{"node", "--mount", "/x", "--mount-bucket", "a/b"}, exitUsage, "no slash"},
		{[]string{"mount"}, exitUsage, "exactly one directory"},
		{[]string{"mount", "--help"}, exitOK, "reads through the gateway"},
		{[]string{"mount", "/nonexistent-shoal-mount-point"}, exitUsage, "does not exist"},
		{[]string{"mount", "/proc"}, exitUsage, "already a mount point"},
		{[]string{"mount", "--log-level", "loud", "/tmp"}, exitUsage, "log-level"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runArgs(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.want) {
				t.Fatalf("exit %d (want %d); output lacks %q?\nstdout: %s\nstderr: %s", code, tt.code, tt.want, out, errs)
			}
		})
	}
}

func TestNodeRefusesBadOriginBeforeListening(t *testing.T) {
	code, _, errs := runArgs(t, nil, "node", "--origin", "file://"+t.TempDir()+"/missing",
		"--data-dir", t.TempDir(), "--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	if code != exitError || !strings.Contains(errs, "origin") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}

func TestParseInterspersed(t *testing.T) {
	code, out, _ := runArgs(t, map[string]string{"SHOAL_ADMIN": "127.0.0.1:1"}, "pin", "s3://bkt/p", "--help")
	if code != exitOK || !strings.Contains(out, "--admin") {
		t.Fatalf("flag after the argument was not parsed: %d %s", code, out)
	}
}

func TestMountPointRefusedBeforeStarting(t *testing.T) {
	full := t.TempDir()
	writeTestFile(t, full+"/keep.txt")
	code, _, errs := runArgs(t, nil, "node", "--origin", "file://"+t.TempDir(), "--data-dir", t.TempDir(),
		"--gateway-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--mount", full)
	if code != exitUsage || !strings.Contains(errs, "is not empty") || !strings.Contains(errs, "keep.txt") {
		t.Fatalf("node --mount on a non-empty directory: exit %d, stderr %s", code, errs)
	}
	// shoal mount with no node behind --admin: an error naming the cause.
	code, _, errs = runArgs(t, nil, "mount", t.TempDir(), "--admin", "127.0.0.1:1")
	if code != exitError || !strings.Contains(errs, "gateway") {
		t.Fatalf("shoal mount without a node: exit %d, stderr %s", code, errs)
	}
}

func writeTestFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}
