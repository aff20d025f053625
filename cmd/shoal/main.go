// Command shoal runs and administers a Shoal node: a peer-to-peer cache in
// front of S3 with an S3-compatible gateway.
//
//	shoal node [options]                  run a node
//	shoal status                          print a running node's status
//	shoal pin|unpin|prefetch s3://b/p     manage cached prefixes
//	shoal mount DIR [--admin ADDR]        mount a running node's buckets (FUSE)
//	shoal warm s3://b/p [--pin ...]       warm a prefix as a cluster job
//	shoal jobs [JOB] [--watch], cancel    follow and cancel jobs
//	shoal where|ls --cached|peers         what is where, asked live
//	shoal config [options]                print the effective configuration
//	shoal swarm-key                       write a new cluster key to stdout
//	shoal id [--data-dir DIR]             print the node's peer ID
//	shoal version                         print the version
//
// This package only wires: flags + environment + config file -> construct
// the parts -> Run(ctx). Exit codes: 0 ok, 1 error, 2 usage or configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Exit codes. The Go runtime exits 2 on a crash too (a panic, with its
// stack on stderr); data damage in --data-dir is repaired at start, never
// a crash.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it is derived from the build info.
var version = ""

// errUsage marks errors that exit with exitUsage.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// env is the process environment, injected for tests.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	e := env{stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "node":
		err = cmdNode(ctx, e, rest)
	case "mount":
		err = cmdMount(ctx, e, rest)
	case "config":
		err = cmdConfig(e, rest)
	case "swarm-key":
		err = cmdSwarmKey(e, rest)
	case "id":
		err = cmdID(e, rest)
	case "status":
		err = cmdStatus(ctx, e, rest)
	case "pin", "unpin", "prefetch":
		err = cmdPrefix(ctx, e, cmd, rest)
	case "warm":
		err = cmdWarm(ctx, e, rest)
	case "jobs":
		err = cmdJobs(ctx, e, rest)
	case "cancel":
		err = cmdCancel(ctx, e, rest)
	case "where":
		err = cmdWhere(ctx, e, rest)
	case "ls":
		err = cmdLs(ctx, e, rest)
	case "peers":
		err = cmdPeers(ctx, e, rest)
	case "version", "--version", "-version":
		if len(rest) == 1 && rest[0] == "--json" {
			fmt.Fprintf(stdout, "{\"version\": %q}\n", versionString())
			return exitOK
		}
		fmt.Fprintln(stdout, "shoal", versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "shoal: unknown command %q\n\n", cmd)
		usage(stderr)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "shoal:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "shoal:", err)
		return exitError
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Shoal: a peer-to-peer cache in front of S3, with an S3-compatible gateway.

Usage:
  shoal node [options]              run a node (see 'shoal node --help' for every option)
  shoal mount DIR [--admin ADDR]    mount a running node's buckets read-only on DIR (FUSE; see 'shoal mount --help')
  shoal config [options]            print the effective configuration as YAML
  shoal swarm-key                   write a new cluster swarm key to stdout (once per cluster)
  shoal id [--data-dir DIR]         print the node's peer ID (creating its identity if needed)
  shoal status                      print a running node's status (jobs, replica deficit)
  shoal warm s3://bucket/prefix     warm a prefix into the cluster as a job (progress, resume)
        [--local] [--pin] [--replicas N] [--detach]
  shoal jobs [JOB] [--watch]        every member's jobs, or one job (followed with --watch)
  shoal cancel JOB                  cancel a job on every node
  shoal where s3://bucket/key       which nodes hold each chunk of an object (asked live)
  shoal ls --cached s3://b/prefix   cached objects with % held here and in the cluster
  shoal peers                       the cluster's members: address, RTT, throughput, penalties
  shoal pin s3://bucket/prefix      fetch and pin every object under the prefix on this node
  shoal unpin s3://bucket/prefix    release a pin (on every member)
  shoal prefetch s3://bucket/prefix fetch every object under the prefix (no pin)
  shoal version                     print the version

The client commands talk to the node's admin API (--admin, env SHOAL_ADMIN,
default 127.0.0.1:7071) and print text, or JSON with --json.

Exit codes: 0 ok, 1 error, 2 usage or configuration error.
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return fmt.Sprintf("%s (%s%s, %s)", v, rev, modified, bi.GoVersion)
	}
	return fmt.Sprintf("%s (%s)", v, bi.GoVersion)
}
