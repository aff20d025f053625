#!/usr/bin/env bash
# Two-node cost measurement (docs/PERFORMANCE.md): node A holds an object of
# SIZE (default 512MiB) read once through its gateway; node B (cold, default
# 1 GiB memory tier) reads it through its gateway, from A. Prints B's and A's
# CPU-seconds per GiB (utime+stime from /proc/PID/stat around B's read),
# B's rate and where B's bytes came from; with PROFILE=1 saves a 10 s CPU
# profile of B and of A taken during B's read (B.cpu.pprof, A.cpu.pprof in
# the work directory, kept with KEEP=1).
# Run from the repository root after `make build`. Linux only.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL_BIN=${SHOAL_BIN:-bin/shoal}
SIZE_MIB=${SIZE_MIB:-512}
WORK=${WORK:-$(mktemp -d)}
KEEP=${KEEP:-}
B_ARGS=${B_ARGS:-}       # extra flags for B, e.g. "--mem-cache 128MiB"
NODE_ARGS=${NODE_ARGS:-} # extra flags for both, e.g. "--hash blake3"
[[ -x "$SHOAL_BIN" ]] || { echo "twonode: $SHOAL_BIN not built (make build)" >&2; exit 1; }
mkdir -p "$WORK/origin/bench"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/origin/bench/object"
"$SHOAL_BIN" swarm-key > "$WORK/swarm.key"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "$KEEP" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck disable=SC2086
start() { # start NAME EXTRA-ARGS...
  local name=$1; shift
  : > "$WORK/$name.log"
  "$SHOAL_BIN" node --origin "file://$WORK/origin" --data-dir "$WORK/$name" \
    --gateway-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --pprof \
    --p2p-listen /ip4/127.0.0.1/tcp/0 --swarm-key "$WORK/swarm.key" $NODE_ARGS "$@" 2>>"$WORK/$name.log" &
  PIDS+=($!)
  eval "${name}_PID=$!"
  local gw="" adm=""
  for _ in $(seq 1 300); do
    gw=$(sed -n 's/.*msg="gateway listening" addr=\([^ ]*\).*/\1/p' "$WORK/$name.log" | tail -1)
    adm=$(sed -n 's/.*msg="admin listening" addr=\([^ ]*\).*/\1/p' "$WORK/$name.log" | tail -1)
    if [[ -n "$gw" && -n "$adm" ]] && curl -fsS "http://$adm/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "http://$adm/readyz" >/dev/null || { echo "twonode: $name not ready" >&2; cat "$WORK/$name.log" >&2; exit 1; }
  eval "${name}_GW=$gw; ${name}_ADMIN=$adm"
}
cpu() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; } # ticks after ')': utime=12, stime=13

start A
curl -fsS -o /dev/null "http://$A_GW/bench/object"
ADDR=$(sed -n 's/.*msg="p2p listening" peer=[^ ]* addrs=\([^ ,]*\).*/\1/p' "$WORK/A.log" | head -1)
# shellcheck disable=SC2086
start B --bootstrap "$ADDR" $B_ARGS
for _ in $(seq 1 100); do # until B counts A among its members
  curl -fsS "http://$B_ADMIN/v1/status" | grep -q '"Members":\[{' && break
  sleep 0.1
done
sleep 1 # let A's announcements land
if [[ -n "${PROFILE:-}" ]]; then
  curl -fsS -o "$WORK/B.cpu.pprof" "http://$B_ADMIN/debug/pprof/profile?seconds=10" &
  PROF=$!
  curl -fsS -o "$WORK/A.cpu.pprof" "http://$A_ADMIN/debug/pprof/profile?seconds=10" &
  PROF_A=$!
fi
a0=$(cpu "$A_PID"); b0=$(cpu "$B_PID"); t0=$(date +%s.%N)
curl -fsS -o /dev/null "http://$B_GW/bench/object"
t1=$(date +%s.%N); a1=$(cpu "$A_PID"); b1=$(cpu "$B_PID")
[[ -z "${PROFILE:-}" ]] || wait "$PROF" "$PROF_A"
awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v s="$SIZE_MIB" -v t0="$t0" -v t1="$t1" 'BEGIN {
  gib = s / 1024; printf "B read %d MiB at %.0f MB/s; CPU-s/GiB: B (receive+verify+store+serve) %.2f, A (send) %.2f\n",
    s, s * 1048576 / (t1 - t0) / 1e6, b / 100 / gib, a / 100 / gib }'
curl -fsS "http://$B_ADMIN/metrics" | grep -E '^shoal_(transfer_bytes|origin_bytes|node_chunk_source)[a-z_]*' | head -12 || true
[[ -z "${PROFILE:-}" ]] || echo "profiles: $WORK/B.cpu.pprof $WORK/A.cpu.pprof"
