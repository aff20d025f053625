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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shoal-cache/shoal/fusefs"
	"github.com/shoal-cache/shoal/internal/admin"
	"github.com/shoal-cache/shoal/internal/config"
	"github.com/shoal-cache/shoal/internal/httpserve"
)

// Shutdown budget: in-flight requests get this long to finish after
// SIGINT/SIGTERM before their connections are closed.
const shutdownTimeout = 10 * time.Second

// readHeaderTimeout bounds how long a client may take to send request
// headers (slowloris); bodies get --http-body-timeout per read instead.
const readHeaderTimeout = 30 * time.Second

// maxHeaderBytes for the gateway's http.Server: S3 allows 8 KiB of headers
// plus 2 KiB of metadata; presigned URLs add a few KiB. The gateway handler
// enforces its own, stricter bound.
const maxHeaderBytes = 1 << 20

// adminReservedConns are admin connections beyond --admin-max-conns that
// serve only the health endpoints: a liveness probe keeps its answer while
// long-running pins hold every ordinary connection. Four covers a kubelet's
// liveness and readiness probes and a load balancer's check at once.
const adminReservedConns = 4

// healthPaths are what reserved admin connections serve.
var healthPaths = []string{"/healthz", "/readyz"}

// fileLimit returns the process's soft limit on open file descriptors
// (Go raises it to the hard limit at start-up), or 0 if unknown.
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}

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

// registry is where a node's metrics are registered and what /metrics
// gathers (docs/METRICS.md lists every series).
type registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// registerRuntime registers the Go runtime's and the process's collectors
// (go_*, process_*).
func registerRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// httpServers are a node's two HTTP servers and the admin API.
type httpServers struct {
	gateway, admin *httpserve.Server
	api            *admin.Server
	gatewayMax     int // the gateway's connection cap
}

// newHTTPServers builds the gateway and admin servers over their bound
// listeners; on error it closes both listeners.
func newHTTPServers(c *config.Config, p *parts, gwLn, adLn net.Listener, log *slog.Logger, reg registry) (_ *httpServers, err error) {
	defer func() {
		if err != nil {
			gwLn.Close()
			adLn.Close()
		}
	}()
	admOpts := []admin.Option{admin.WithLogger(log), admin.WithGatherer(reg)}
	if c.Pprof {
		admOpts = append(admOpts, admin.WithHandler("/debug/pprof/", debugHandler()))
	}
	api, err := admin.New(admin.Config{AllowedHosts: c.AllowedHosts}, p.admin, admOpts...)
	if err != nil {
		return nil, err
	}
	out := &httpServers{api: api, gatewayMax: c.GatewayConnLimit(fileLimit())}
	opts := []httpserve.Option{httpserve.WithLogger(log), httpserve.WithRegisterer(reg)}
	out.gateway, err = httpserve.New(gwLn, p.gateway, httpserve.Config{
		Name:              "gateway",
		MaxConns:          out.gatewayMax,
		IdleTimeout:       c.HTTPIdleTimeout,
		BodyTimeout:       c.HTTPBodyTimeout,
		ReadHeaderTimeout: readHeaderTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}, opts...)
	if err != nil {
		return nil, err
	}
	out.admin, err = httpserve.New(adLn, api, httpserve.Config{
		Name:              "admin",
		MaxConns:          c.AdminMaxConns,
		ReservedConns:     adminReservedConns,
		ReservedPaths:     healthPaths,
		IdleTimeout:       c.HTTPIdleTimeout,
		BodyTimeout:       c.HTTPBodyTimeout,
		ReadHeaderTimeout: readHeaderTimeout,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// cmdNode runs a node until ctx is cancelled (SIGINT/SIGTERM).
func cmdNode(ctx context.Context, e env, args []string) (err error) {
	c, err := loadConfig(e, "node", args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, c)
	if _, onArgv := config.RedactArgs(args); onArgv {
		log.Warn("a secret is on the command line, where every local user can read it (ps, /proc/PID/cmdline): " +
			"prefer --gateway-secret-key-file or SHOAL_GATEWAY_SECRET_KEY")
	}
	creds, err := gatewayCredentials(c)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	anonymous := len(creds) == 0
	if err := checkListeners(c, anonymous); err != nil {
		return err
	}
	if c.Mount != "" {
		// Before anything starts: a mount point that cannot be used is
		// a configuration error.
		if err := fusefs.CheckMountpoint(c.Mount); err != nil {
			return fmt.Errorf("%w: --mount: %w", errUsage, err)
		}
	}

	reg := prometheus.NewRegistry()
	registerRuntime(reg)

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
	srv, err := newHTTPServers(c, p, gwLn, adLn, log, reg)
	if err != nil {
		return err
	}
	gwSrv, adSrv, adm := srv.gateway, srv.admin, srv.api
	if ab, ok := p.admin.(adminBackend); ok && ab.info != nil {
		ab.info.GatewayAddr, ab.info.Anonymous = gwLn.Addr().String(), anonymous
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
	wg.Go(func() { fail("gateway server", gwSrv.Serve()) })
	wg.Go(func() { fail("admin server", adSrv.Serve()) })

	if p.cluster != nil {
		p.cluster.logListening(log)
	}
	log.Info("gateway listening", "addr", gwLn.Addr().String(), "anonymous", anonymous, "max_conns", srv.gatewayMax)
	if anonymous {
		log.Warn("no gateway credentials configured: accepting anonymous requests (loopback listener only)")
	}
	log.Info("admin listening", "addr", adLn.Addr().String(), "max_conns", c.AdminMaxConns, "pprof", c.Pprof)
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
