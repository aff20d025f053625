#!/usr/bin/env bash
# run-local.sh: runs the Shoal Testground plan on this machine with the
# exec:go builder and the local:exec runner, prints the results, and stops
# everything it started.
#
#   testground/run-local.sh                 # swarm-read, 6 instances, 64 MiB
#   CASE=provide-find N=8 testground/run-local.sh
#   CASE=prefetch-then-read N=4 PARAMS="objects=8 object_size=4MiB" testground/run-local.sh
#
# Environment: CASE (swarm-read), N (6), PARAMS (extra test params,
# "name=value" separated by spaces; swarm-read defaults to
# "object_size=64MiB chunk_size=4MiB"), TG_PORT (daemon port, 8042).
# The sync service always listens on port 5050 (fixed by Testground).
#
# local:exec has no sidecar: the bandwidth parameter is NOT applied (no
# traffic shaping); all instances share this machine's cores and loopback.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CASE=${CASE:-swarm-read}
N=${N:-6}
TG_PORT=${TG_PORT:-8042}
if [ -z "${PARAMS+x}" ]; then
	case "$CASE" in
	swarm-read) PARAMS="object_size=64MiB chunk_size=4MiB" ;;
	*) PARAMS="" ;;
	esac
fi
PARAMS="timeout=5m $PARAMS"

tools="$here/.tools/bin"
export TESTGROUND_HOME="$here/.home"
mkdir -p "$tools" "$TESTGROUND_HOME"

log() { printf '\n>>> %s\n' "$*"; }

# (a) Build Testground and its sync service at pinned versions. `go install
# mod@version` asks the module proxy for the module's version list (to check
# for a deprecation notice), which the proxy refuses for these modules;
# downloading the version first and putting the module cache in front of the
# configured proxy answers that question locally.
TG_VERSION=v0.6.0
SYNC_VERSION=v0.1.0
goproxy="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)"
install_tool() { # module version package binary
	if [ -x "$tools/$4" ] && [ "$(cat "$tools/$4.version" 2>/dev/null)" = "$1@$2" ]; then
		return
	fi
	log "building $3@$2"
	(cd "${TMPDIR:-/tmp}" && GOFLAGS= go mod download "$1@$2")
	GOFLAGS= GOPROXY="$goproxy" GOBIN="$tools" go install "$3@$2"
	if [ "$(basename "$3")" != "$4" ]; then mv "$tools/$(basename "$3")" "$tools/$4"; fi
	echo "$1@$2" >"$tools/$4.version"
}
install_tool github.com/testground/testground $TG_VERSION github.com/testground/testground testground
install_tool github.com/testground/sync-service $SYNC_VERSION github.com/testground/sync-service/cmd sync-service
tg="$tools/testground"

# (b) Start the sync service and the daemon; stop them on exit.
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port name
	for _ in $(seq 1 100); do
		port_open "$1" && return 0
		sleep 0.2
	done
	echo "$2 did not start listening on port $1; see $TESTGROUND_HOME/$2.log" >&2
	exit 1
}
for p in 5050 "$TG_PORT"; do
	if port_open "$p"; then
		echo "port $p is already in use (another sync service or daemon?); stop it first" >&2
		exit 1
	fi
done

cat >"$TESTGROUND_HOME/.env.toml" <<EOF
[daemon]
listen = "127.0.0.1:$TG_PORT"

[client]
endpoint = "http://127.0.0.1:$TG_PORT"
EOF

log "starting the sync service (port 5050) and the testground daemon (port $TG_PORT)"
"$tools/sync-service" >"$TESTGROUND_HOME/sync-service.log" 2>&1 &
pids+=($!)
wait_port 5050 sync-service
# The exec:go builder runs `go mod tidy` and `go build` in the daemon's
# environment: give it the same module proxy setting.
GOPROXY="$goproxy" "$tg" daemon >"$TESTGROUND_HOME/daemon.log" 2>&1 &
pids+=($!)
wait_port "$TG_PORT" daemon

# (c) Stage the plan (with the Shoal source), import it, run it.
log "staging and importing the plan"
"$here/stage.sh" "$TESTGROUND_HOME/stage"
# The same snapshot, built here: it fails fast on a broken tree, and its
# `summarize` mode prints the results below.
(cd "$TESTGROUND_HOME/stage/shoal" && GOFLAGS= GOPROXY="$goproxy" go build -o "$TESTGROUND_HOME/shoal-plan" .)
rm -rf "$TESTGROUND_HOME/plans/shoal"
"$tg" plan import --from "$TESTGROUND_HOME/stage/shoal" --name shoal

tps=()
for kv in $PARAMS; do tps+=(--tp "$kv"); done
log "running $CASE with $N instances: $PARAMS"
runlog="$TESTGROUND_HOME/run-$CASE.log"
set +e
"$tg" run single --plan shoal --testcase "$CASE" --builder exec:go --runner local:exec \
	--instances "$N" --wait "${tps[@]}" 2>&1 | tee "$runlog"
rc=${PIPESTATUS[0]}
set -e

# (d) Print the collected results (each instance's summary.json).
runid=$(grep -oE 'run (is queued )?with ID: [0-9a-z]+' "$runlog" | tail -1 | awk '{print $NF}')
outdir="$TESTGROUND_HOME/data/outputs/local_exec/shoal/$runid"
if [ -z "$runid" ] || [ ! -d "$outdir" ]; then
	echo "no outputs found for the run (exit code $rc); see $runlog" >&2
	exit 1
fi
log "results of run $runid ($outdir)"
set +e
"$TESTGROUND_HOME/shoal-plan" summarize "$outdir" | tee "$TESTGROUND_HOME/results-$CASE-$runid.txt"
src=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
	echo "testground run exited with $rc" >&2
	exit "$rc"
fi
exit "$src"
