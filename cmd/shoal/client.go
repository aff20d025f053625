package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/shoal-cache/shoal/internal/admin"
)

// adminEnv names the environment variable with the admin API address.
const adminEnv = "SHOAL_ADMIN"

const defaultAdmin = "127.0.0.1:7071"

// clientFlags parses --admin, --json and the command's own flags (extra
// registers them and returns their help text).
func clientFlags(e env, name, argHelp string, args []string, extra func(fs *flag.FlagSet) string) (*admin.Client, []string, bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := defaultAdmin
	if v, ok := e.lookupEnv(adminEnv); ok && v != "" {
		def = v
	}
	addr := fs.String("admin", def, "admin API address of the node (env "+adminEnv+")")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	var help string
	if extra != nil {
		help = extra(fs)
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "Usage: shoal %s [--admin ADDR] [--json] %s\n\n  --admin ADDR\n        admin API address of the node (env %s, default %s)\n  --json\n        print JSON (for scripts) instead of text\n%s",
				name, argHelp, adminEnv, defaultAdmin, help)
			return nil, nil, false, errHelp
		}
		return nil, nil, false, fmt.Errorf("%w: %w", errUsage, err)
	}
	c, err := admin.NewClient(*addr, nil)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, rest, *asJSON, nil
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments ("shoal pin s3://b/p --admin X"); "--" ends flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func cmdStatus(ctx context.Context, e env, args []string) error {
	c, rest, asJSON, err := clientFlags(e, "status", "", args, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: status takes no arguments", errUsage)
	}
	res, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, res)
	}
	return printStatus(e.stdout, res)
}

func cmdPrefix(ctx context.Context, e env, name string, args []string) error {
	c, rest, asJSON, err := clientFlags(e, name, "s3://bucket/prefix", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: %s takes exactly one s3://bucket/prefix", errUsage, name)
	}
	bucket, prefix, err := admin.ParseS3URL(rest[0])
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	op := map[string]func(context.Context, string, string) (json.RawMessage, error){
		"pin": c.Pin, "unpin": c.Unpin, "prefetch": c.Prefetch,
	}[name]
	res, err := op(ctx, bucket, prefix)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, res)
	}
	return printPinResult(e.stdout, name, rest[0], res)
}

// decodeOrPrint prints raw (an admin API answer) indented with --json
// and reports done; otherwise it decodes raw as T for the text output.
func decodeOrPrint[T any](e env, raw json.RawMessage, asJSON bool) (T, bool, error) {
	var v T
	if asJSON {
		return v, true, printJSON(e.stdout, raw)
	}
	return v, false, json.Unmarshal(raw, &v)
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}
