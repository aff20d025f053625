package config

import (
	"strings"
	"testing"
	"time"
)

func TestHTTPDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPIdleTimeout != 60*time.Second || c.HTTPBodyTimeout != 60*time.Second {
		t.Errorf("timeouts = %s %s", c.HTTPIdleTimeout, c.HTTPBodyTimeout)
	}
	if c.GatewayMaxConns != 0 || c.AdminMaxConns != 64 || c.Pprof || len(c.AllowedHosts) != 0 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestHTTPOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--http-idle-timeout", "0s"}, want: "http-idle-timeout"},
		{args: []string{"--http-body-timeout", "-1s"}, want: "http-body-timeout"},
		{args: []string{"--gateway-max-conns", "-1"}, want: "gateway-max-conns"},
		{args: []string{"--admin-max-conns", "0"}, want: "admin-max-conns"},
		{args: []string{"--allowed-hosts", "http://shoal.example"}, want: "allowed-hosts"},
		{args: []string{"--allowed-hosts", "shoal.example:port"}, want: "allowed-hosts"},
		{env: map[string]string{"SHOAL_ALLOWED_HOSTS": "a.example,b/c"}, want: "allowed-hosts"},
		{args: []string{"--gateway-access-key", "AK", "--gateway-secret-key", "s", "--gateway-secret-key-file", "/f"}, want: "gateway-secret-key-file"},
		{args: []string{"--gateway-secret-key-file", "/f"}, want: "gateway-access-key"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := load(t, tt.args, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one about %s", err, tt.want)
			}
		})
	}
	c, err := load(t, []string{"--allowed-hosts", "shoal.example, [::1]:8080", "--allowed-hosts", "cache:7070",
		"--gateway-access-key", "AK", "--gateway-secret-key-file", "/run/secrets/key", "--pprof"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.AllowedHosts, " ") != "shoal.example [::1]:8080 cache:7070" || !c.Pprof || c.GatewaySecretKeyFile != "/run/secrets/key" {
		t.Fatalf("parsed %+v", c)
	}
}

func TestRedactArgs(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"shoal node --gateway-secret-key s3cr3t --mem-cache 1GiB", "shoal node --gateway-secret-key REDACTED --mem-cache 1GiB"},
		{"shoal node --gateway-secret-key=s3cr3t", "shoal node --gateway-secret-key=REDACTED"},
		{"shoal node -gateway-secret-key s3cr3t", "shoal node -gateway-secret-key REDACTED"},
		{"shoal node -gateway-secret-key=s3cr3t --gateway-access-key AK", "shoal node -gateway-secret-key=REDACTED --gateway-access-key AK"},
		{"shoal node --gateway-secret-key", "shoal node --gateway-secret-key"},
		{"shoal node --gateway-secret-key-file /k", "shoal node --gateway-secret-key-file /k"},
		{"shoal node -- --gateway-secret-key x", "shoal node -- --gateway-secret-key REDACTED"},
	} {
		got, found := RedactArgs(strings.Fields(tt.in))
		if strings.Join(got, " ") != tt.want {
			t.Errorf("RedactArgs(%q) = %q, want %q", tt.in, strings.Join(got, " "), tt.want)
		}
		if found != strings.Contains(tt.want, "REDACTED") {
			t.Errorf("RedactArgs(%q) found = %v", tt.in, found)
		}
	}
	in := []string{"shoal", "--gateway-secret-key", "x"}
	RedactArgs(in)
	if in[2] != "x" {
		t.Error("RedactArgs modified its input")
	}
}
