package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebugServesPprof(t *testing.T) {
	srv := httptest.NewServer(debugHandler())
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d %.80q", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.80q", code, body)
	}
}

// /debug/pprof/cmdline prints the command line; a secret passed on it is
// not shown.
func TestDebugCmdlineRedactsSecrets(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"shoal", "node", "--gateway-access-key", "AK", "--gateway-secret-key", "hunter2-secret", "--mem-cache=1GiB"}
	rec := httptest.NewRecorder()
	debugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/cmdline", nil))
	body := rec.Body.String()
	if strings.Contains(body, "hunter2") {
		t.Fatalf("cmdline shows the secret: %q", body)
	}
	if want := "shoal\x00node\x00--gateway-access-key\x00AK\x00--gateway-secret-key\x00REDACTED\x00--mem-cache=1GiB"; body != want {
		t.Fatalf("cmdline = %q, want %q", body, want)
	}
}

func TestSecretKeyFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	code, _, errs := runArgs(t, env, "config", "--gateway-access-key", "AK", "--gateway-secret-key-file", file)
	if code != exitOK {
		t.Fatalf("config: exit %d %s", code, errs)
	}
	c, err := loadConfig(env2(nil), "node", []string{"--gateway-access-key", "AK", "--gateway-secret-key-file", file})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := gatewayCredentials(c)
	if err != nil || len(creds) != 1 || creds[0].SecretKey != "from-a-file" {
		t.Fatalf("credentials %+v %v", creds, err)
	}
	for _, body := range []string{"", "\n", "two\nlines\n"} {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := gatewayCredentials(c); err == nil || !strings.Contains(err.Error(), "gateway-secret-key-file") {
			t.Errorf("secret file %q: %v", body, err)
		}
	}
	c.GatewaySecretKeyFile = filepath.Join(dir, "missing")
	if _, err := gatewayCredentials(c); err == nil {
		t.Error("missing secret file accepted")
	}
}

func env2(vars map[string]string) env {
	return env{stdout: io.Discard, stderr: io.Discard, lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
}
