package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoal-cache/shoal/origin"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  bool
	}{
		{in: "2GiB", want: 2 << 30},
		{in: "512MiB", want: 512 << 20},
		{in: "4MB", want: 4_000_000},
		{in: "4mb", want: 4_000_000},
		{in: "1048576", want: 1 << 20},
		{in: "1.5GiB", want: 3 << 29},
		{in: "10k", want: 10_000},
		{in: "64KiB", want: 64 << 10},
		{in: " 3 MiB ", want: 3 << 20},
		{in: "0", want: 0},
		{in: "", err: true},
		{in: "GiB", err: true},
		{in: "-1", err: true},
		{in: "-1MiB", err: true},
		{in: "lots", err: true},
		{in: "9999999999TiB", err: true},
		{in: "NaN", err: true},
		{in: "1e400", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadSize) {
					t.Fatalf("ParseSize(%q) = %v, %v; want ErrBadSize", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSizeStringRoundTrip(t *testing.T) {
	for _, s := range []Size{0, 1, 1000, 1 << 10, 4 << 20, 3 << 29, 20 << 30, 1<<40 + 1} {
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("%d -> %q -> %d, %v", s, s.String(), back, err)
		}
	}
	if got := Size(4 << 20).String(); got != "4MiB" {
		t.Errorf("String() = %q, want 4MiB", got)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"2GiB", "4MB", "1", "1.5k", "-3", "1e9GiB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSize(s)
		if err == nil && got < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, got)
		}
	})
}

// load parses args with env and returns the config or the error.
func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shoal.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MemCache != 1<<30 || c.DiskCache != 20<<30 || c.ChunkSize != 4<<20 {
		t.Errorf("sizes = %s %s %s", c.MemCache, c.DiskCache, c.ChunkSize)
	}
	if c.GatewayListen != "127.0.0.1:7070" || c.AdminListen != "127.0.0.1:7071" {
		t.Errorf("listen = %s %s", c.GatewayListen, c.AdminListen)
	}
	if c.Origin != "s3" || c.Hash != "sha2-256" || c.MetadataTTL != 30*time.Second || c.ListTTL != 2*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	if c.S3MaxInflight != 64 || c.LogLevel != "info" || c.LogFormat != "text" {
		t.Errorf("defaults = %+v", c)
	}
	// The documented defaults are the origin's own.
	if c.S3HeaderTimeout != origin.DefaultHeaderTimeout || c.S3MaxRetries != origin.DefaultMaxRetries || c.S3RetryBudget != origin.DefaultRetryBudget {
		t.Errorf("origin timeouts = %s, %d retries, budget %s", c.S3HeaderTimeout, c.S3MaxRetries, c.S3RetryBudget)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "mem-cache: 2GiB\ndisk-cache: 30GiB\nchunk-size: 1MiB\nmetadata-ttl: 1m\nimmutable: [a/x, b]\n")
	env := map[string]string{
		"SHOAL_CONFIG":     file,
		"SHOAL_DISK_CACHE": "40GiB",
		"SHOAL_CHUNK_SIZE": "2MiB",
	}
	c, err := load(t, []string{"--chunk-size", "8MiB", "--immutable=c/p", "--immutable", "d,e/f"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.MemCache != 2<<30 {
		t.Errorf("mem-cache = %s, want 2GiB from file", c.MemCache)
	}
	if c.DiskCache != 40<<30 {
		t.Errorf("disk-cache = %s, want 40GiB from env", c.DiskCache)
	}
	if c.ChunkSize != 8<<20 {
		t.Errorf("chunk-size = %s, want 8MiB from flag", c.ChunkSize)
	}
	if c.MetadataTTL != time.Minute {
		t.Errorf("metadata-ttl = %s, want 1m from file", c.MetadataTTL)
	}
	if got := strings.Join(c.Immutable, " "); got != "c/p d e/f" {
		t.Errorf("immutable = %q, want flags to replace the file's list", got)
	}

	// The file list applies when neither env nor flags set it.
	c, err = load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Immutable, " "); got != "a/x b" {
		t.Errorf("immutable = %q", got)
	}
}

func TestBoolFlag(t *testing.T) {
	c, err := load(t, []string{"--s3-path-style"}, nil)
	if err != nil || !c.S3PathStyle {
		t.Fatalf("--s3-path-style: %v %v", c, err)
	}
	c, err = load(t, []string{"--s3-path-style=false"}, map[string]string{"SHOAL_S3_PATH_STYLE": "true"})
	if err != nil || c.S3PathStyle {
		t.Fatalf("--s3-path-style=false over env: %v %v", c, err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{name: "bad size flag", args: []string{"--mem-cache", "lots"}, want: "mem-cache"},
		{name: "bad duration env", env: map[string]string{"SHOAL_METADATA_TTL": "30"}, want: "SHOAL_METADATA_TTL"},
		{name: "unknown flag", args: []string{"--mem-cash", "1GiB"}, want: "mem-cash"},
		{name: "unknown yaml key", file: "mem-cash: 1GiB\n", want: `unknown key "mem-cash"`},
		{name: "repeated yaml key", file: "hash: blake3\nhash: sha2-256\n", want: "repeated"},
		{name: "yaml not a mapping", file: "- a\n- b\n", want: "mapping"},
		{name: "yaml nested", file: "origin:\n  s3: x\n", want: "single value"},
		{name: "yaml syntax", file: "origin: [\n", want: "config file"},
		{name: "bad origin", args: []string{"--origin", "ftp://x"}, want: "origin"},
		{name: "relative file origin", args: []string{"--origin", "file://rel/dir"}, want: "origin"},
		{name: "bad hash", args: []string{"--hash", "md5"}, want: "hash"},
		{name: "tiny chunk", args: []string{"--chunk-size", "1KiB"}, want: "chunk-size"},
		{name: "mem below chunk", args: []string{"--mem-cache", "1MiB"}, want: "mem-cache"},
		{name: "half gateway keys", args: []string{"--gateway-access-key", "k"}, want: "gateway-access-key"},
		{name: "bad listen", args: []string{"--gateway-listen", "nonsense"}, want: "gateway-listen"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: "log-level"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: "log-format"},
		{name: "bad endpoint", args: []string{"--s3-endpoint", "localhost:9000"}, want: "s3-endpoint"},
		{name: "negative ttl", args: []string{"--list-ttl", "-1s"}, want: "list-ttl"},
		{name: "zero header timeout", args: []string{"--s3-header-timeout", "0s"}, want: "s3-header-timeout"},
		{name: "negative retries", env: map[string]string{"SHOAL_S3_MAX_RETRIES": "-1"}, want: "s3-max-retries"},
		{name: "zero retry budget", file: "s3-retry-budget: 0s\n", want: "s3-retry-budget"},
		{name: "bad immutable", args: []string{"--immutable", "s3://b/p"}, want: "immutable"},
		{name: "missing file", args: []string{"--config", "/nonexistent/shoal.yaml"}, want: "config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			_, err := load(t, args, tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	_, err := load(t, []string{"--hash", "md5", "--log-format", "xml"}, nil)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "hash") || !strings.Contains(err.Error(), "log-format") {
		t.Fatalf("err = %v, want both problems", err)
	}
}

func TestFileOrigin(t *testing.T) {
	c, err := load(t, []string{"--origin", "file:///srv/data"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OriginDir() != "/srv/data" {
		t.Fatalf("OriginDir = %q", c.OriginDir())
	}
}

func TestWriteYAMLRoundTrip(t *testing.T) {
	c, err := load(t, []string{"--mem-cache", "3GiB", "--immutable", "a/b", "--metadata-ttl", "90s",
		"--gateway-access-key", "AK", "--gateway-secret-key", "very-secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteYAML(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "very-secret") {
		t.Fatalf("secret printed:\n%s", buf.String())
	}
	// Every printed key is accepted back as a config file.
	var keys map[string]any
	if err := yaml.Unmarshal(buf.Bytes(), &keys); err != nil {
		t.Fatal(err)
	}
	back, err := load(t, []string{"--config", writeFile(t, buf.String())}, nil)
	if err != nil {
		t.Fatalf("printed config does not load back: %v\n%s", err, buf.String())
	}
	if back.MemCache != 3<<30 || back.MetadataTTL != 90*time.Second || strings.Join(back.Immutable, ",") != "a/b" {
		t.Fatalf("round trip: %+v", back)
	}
	if len(keys) != len(Options()) {
		t.Fatalf("printed %d keys, have %d options", len(keys), len(Options()))
	}
}

func TestPrintOptionsMentionsEverything(t *testing.T) {
	var buf bytes.Buffer
	PrintOptions(&buf)
	for _, o := range Options() {
		if !strings.Contains(buf.String(), "--"+o.Name) || !strings.Contains(buf.String(), o.Env()) {
			t.Errorf("help lacks %s / %s", o.Name, o.Env())
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "[::1]:0": true, "localhost:1": true, "127.9.9.9:5": true,
		"0.0.0.0:7070": false, ":7070": false, "10.0.0.1:80": false, "example.com:80": false, "junk": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// docs/CONFIG.md is the user's reference: it must list every option with
// its environment variable and default.
func TestConfigDocListsEveryOption(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range Options() {
		def := o.Default
		if def == "" {
			def = "none"
		}
		row := fmt.Sprintf("`%s` | `%s` | %s |", o.Env(), o.Name, def)
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/CONFIG.md lacks the row for --%s (%q)", o.Name, row)
		}
	}
}
