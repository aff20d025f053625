package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/shoal-cache/shoal/fusefs"
	"github.com/shoal-cache/shoal/internal/admin"
)

// mountUsage is `shoal mount --help`.
const mountUsage = `Usage: shoal mount DIR [--admin ADDR] [--bucket BUCKET] [--allow-other]

Mounts the buckets of a running node, read-only, on the empty directory DIR
(FUSE), beside the node: this process asks the node's admin API where its
S3 gateway listens and reads through the gateway over HTTP (ranged GETs
pinned to each open file's version), so every byte comes from the node's
cache, its peers, or the origin through the node. Unmounted on SIGINT or
SIGTERM, or with fusermount3 -u DIR. (shoal node --mount DIR mounts inside
the node, without HTTP.)

  --admin ADDR          admin API address of the node (env SHOAL_ADMIN, default 127.0.0.1:7071)
  --bucket BUCKET       only this bucket, at the mount's root
  --allow-other         let other users read the mount (needs user_allow_other in /etc/fuse.conf unless root)
  --access-key KEY      gateway access key, when the node requires signed requests
                        (the secret from env SHOAL_GATEWAY_SECRET_KEY or --secret-key-file)
  --secret-key-file F   file holding the gateway secret key
  --log-level LEVEL     debug, info, warn or error (default info)
`

// cmdMount runs `shoal mount` until ctx ends.
func cmdMount(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("mount", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := defaultAdmin
	if v, ok := e.lookupEnv(adminEnv); ok && v != "" {
		def = v
	}
	addr := fs.String("admin", def, "")
	bucket := fs.String("bucket", "", "")
	allowOther := fs.Bool("allow-other", false, "")
	accessKey := fs.String("access-key", "", "")
	secretFile := fs.String("secret-key-file", "", "")
	level := fs.String("log-level", "info", "")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, mountUsage)
			return errHelp
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: mount takes exactly one directory (see shoal mount --help)", errUsage)
	}
	dir := rest[0]
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	if err := fusefs.CheckMountpoint(dir); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	secret := ""
	if *accessKey != "" {
		if *secretFile != "" {
			if secret, err = readSecretFile(*secretFile); err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
		} else if v, ok := e.lookupEnv("SHOAL_GATEWAY_SECRET_KEY"); ok {
			secret = v
		} else {
			return fmt.Errorf("%w: --access-key needs the secret in SHOAL_GATEWAY_SECRET_KEY or --secret-key-file", errUsage)
		}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))

	ac, err := admin.NewClient(*addr, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	info, err := nodeInfoOf(ctx, ac)
	if err != nil {
		return err
	}
	remote, err := fusefs.NewRemote(fusefs.RemoteConfig{Endpoint: "http://" + info.GatewayAddr, Region: info.Region,
		AccessKey: *accessKey, SecretKey: secret})
	if err != nil {
		return err
	}
	defer remote.Close()
	var ttls [3]time.Duration
	for i, v := range []string{info.MetadataTTL, info.ListTTL, info.OriginWait} {
		if ttls[i], err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("node status: duration %q: %w", v, err)
		}
	}
	m, err := fusefs.New(mountConfig(dir, *bucket, *allowOther, ttls[0], info.Immutable, ttls[1], ttls[2]), remote, fusefs.WithLogger(log))
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	log.Info("reading through the node's gateway", "gateway", info.GatewayAddr, "admin", *addr)
	return m.Run(ctx, nil)
}

// nodeInfoOf asks a running node where its gateway listens.
func nodeInfoOf(ctx context.Context, ac *admin.Client) (nodeInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := ac.Status(ctx)
	if err != nil {
		return nodeInfo{}, fmt.Errorf("asking the node where its gateway is: %w", err)
	}
	var st struct{ Node *nodeInfo }
	if err := json.Unmarshal(raw, &st); err != nil {
		return nodeInfo{}, fmt.Errorf("node status: %w", err)
	}
	if st.Node == nil || st.Node.GatewayAddr == "" {
		return nodeInfo{}, errors.New("node status names no gateway address (a node older than shoal mount?)")
	}
	return *st.Node, nil
}
