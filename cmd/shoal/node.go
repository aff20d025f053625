package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shoal-cache/shoal/internal/admin"
	"github.com/shoal-cache/shoal/internal/config"
)

// Shutdown budget: in-flight requests get this long to finish after
// SIGINT/SIGTERM before their connections are closed.
const shutdownTimeout = 10 * time.Second

// readHeaderTimeout bounds how long a client may take to send request
// headers (slowloris); bodies are not bounded in time (large uploads).
const readHeaderTimeout = 30 * time.Second

// maxHeaderBytes for the gateway's http.Server: S3 allows 8 KiB of headers
// plus 2 KiB of metadata; presigned URLs add a few KiB. The gateway handler
// enforces its own, stricter bound.
const maxHeaderBytes = 1 << 20

func newLogger(w io.Writer, c *config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// checkListeners refuses configurations that would expose unauthenticated
// APIs beyond this machine.
func checkListeners(c *config.Config, anonymous bool) error {
	if anonymous && !config.IsLoopback(c.GatewayListen) {
		return fmt.Errorf("%w: --gateway-listen %s is not a loopback address and no gateway credentials are configured; "+
			"set --gateway-access-key/--gateway-secret-key or --gateway-credentials-file, or listen on 127.0.0.1",
			errUsage, c.GatewayListen)
	}
	if !c.AdminAllowRemote && !config.IsLoopback(c.AdminListen) {
		return fmt.Errorf("%w: --admin-listen %s is not a loopback address; the admin API has no authentication: "+
			"pass --admin-allow-remote to expose it anyway", errUsage, c.AdminListen)
	}
	return nil
}

// cmdNode runs a node until ctx is cancelled (SIGINT/SIGTERM).
func cmdNode(ctx context.Context, e env, args []string) (err error) {
	c, err := loadConfig(e, "node", args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, c)
	creds, err := gatewayCredentials(c)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	anonymous := len(creds) == 0
	if err := checkListeners(c, anonymous); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	p, err := build(ctx, c, creds, log, reg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.close()) }()

	// Bind both listeners before serving anything, so a port clash fails
	// the start cleanly.
	gwLn, err := net.Listen("tcp", c.GatewayListen)
	if err != nil {
		return fmt.Errorf("gateway listen: %w", err)
	}
	adLn, err := net.Listen("tcp", c.AdminListen)
	if err != nil {
		gwLn.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	adm := admin.New(p.admin, admin.WithLogger(log), admin.WithGatherer(reg))

	gwSrv := &http.Server{
		Handler:           p.gateway,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	adSrv := &http.Server{
		Handler:           withDebug(adm),
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(what string, err error) {
		if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, context.Canceled) {
			return
		}
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		mu.Unlock()
		cancel(err)
	}
	for _, r := range p.runners {
		wg.Go(func() { fail(r.name, r.run(runCtx)) })
	}
	wg.Go(func() { fail("gateway server", gwSrv.Serve(gwLn)) })
	wg.Go(func() { fail("admin server", adSrv.Serve(adLn)) })

	if p.cluster != nil {
		p.cluster.logListening(log)
	}
	log.Info("gateway listening", "addr", gwLn.Addr().String(), "anonymous", anonymous)
	if anonymous {
		log.Warn("no gateway credentials configured: accepting anonymous requests (loopback listener only)")
	}
	log.Info("admin listening", "addr", adLn.Addr().String())
	log.Info("node started", "version", versionString(), "origin", c.Origin, "data_dir", c.DataDir,
		"mem_cache", c.MemCache.String(), "disk_cache", c.DiskCache.String(), "chunk_size", c.ChunkSize.String())
	adm.SetReady(true)

	<-runCtx.Done()
	adm.SetReady(false)
	if cause := context.Cause(runCtx); ctx.Err() != nil {
		log.Info("shutting down", "reason", "signal")
	} else {
		log.Error("shutting down", "reason", cause)
	}
	shCtx, shCancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer shCancel()
	fail("gateway shutdown", gwSrv.Shutdown(shCtx))
	fail("admin shutdown", adSrv.Shutdown(shCtx))
	wg.Wait()
	log.Info("stopped")
	return errors.Join(errs...)
}
