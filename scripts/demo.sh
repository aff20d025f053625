#!/usr/bin/env bash
# Shoal demo: three nodes joined as a cluster on loopback, in front of sample
# data in .demo/origin (a file:// origin). It reads an object through node 1,
# then through nodes 2 and 3, and prints where the bytes came from: the
# origin once, then peers. `make demo` runs it and stays up until Ctrl-C;
# DEMO_ONESHOT=1 also runs the example commands, checks them, and exits (CI
# uses that).
set -euo pipefail
cd "$(dirname "$0")/.."

SHOAL_BIN=${SHOAL_BIN:-bin/shoal}
DEMO=${DEMO_DIR:-.demo}
ONESHOT=${DEMO_ONESHOT:-}

[[ -x "$SHOAL_BIN" ]] || { echo "demo: $SHOAL_BIN not built (run make build)" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo: curl is needed" >&2; exit 1; }

# Listeners: fixed ports for people (printed commands stay valid), free ports
# for the one-shot check (CI may run beside other things).
gw_listen() { if [[ -n "$ONESHOT" ]]; then echo 127.0.0.1:0; else echo "127.0.0.1:$((7070 + 10 * ($1 - 1)))"; fi; }
admin_listen() { if [[ -n "$ONESHOT" ]]; then echo 127.0.0.1:0; else echo "127.0.0.1:$((7071 + 10 * ($1 - 1)))"; fi; }

# --- sample data -----------------------------------------------------------
ORIGIN="$DEMO/origin"
mkdir -p "$ORIGIN/photos/2024/01" "$ORIGIN/photos/2024/02" "$ORIGIN/datasets/csv" "$ORIGIN/datasets/big" "$ORIGIN/models/tiny"
[[ -f "$ORIGIN/datasets/big/sample.bin" ]] || head -c $((10 * 1024 * 1024 + 12345)) /dev/urandom > "$ORIGIN/datasets/big/sample.bin"
for i in 1 2 3; do
  f="$ORIGIN/models/tiny/model-0000$i.safetensors"
  [[ -f "$f" ]] || head -c $((6 * 1024 * 1024 + i * 1000)) /dev/urandom > "$f"
done
printf 'Shoal demo bucket.\nEach top-level folder of .demo/origin is a bucket.\n' > "$ORIGIN/photos/README.txt"
printf 'pretend this is a photo (january)\n' > "$ORIGIN/photos/2024/01/beach.txt"
printf 'pretend this is a photo (february)\n' > "$ORIGIN/photos/2024/02/snow.txt"
{ echo "sepal_length,sepal_width,species"; for i in $(seq 1 50); do echo "5.$((i % 10)),3.$((i % 7)),setosa"; done; } > "$ORIGIN/datasets/csv/iris.csv"
ORIGIN_ABS=$(cd "$ORIGIN" && pwd)
SIZE=$(wc -c < "$ORIGIN/datasets/big/sample.bin" | tr -d ' ')

# --- start three nodes -----------------------------------------------------
[[ -f "$DEMO/swarm.key" ]] || "$SHOAL_BIN" swarm-key > "$DEMO/swarm.key"
PIDS=()
stop_nodes() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap stop_nodes EXIT

GW=() ADMIN=() P2P=()
start_node() { # start_node N [BOOTSTRAP]
  local n=$1 boot=${2:-} log="$DEMO/node$1.log"
  : > "$log"
  local args=(node --origin "file://$ORIGIN_ABS" --data-dir "$DEMO/data$n"
    --gateway-listen "$(gw_listen "$n")" --admin-listen "$(admin_listen "$n")"
    --mem-cache 256MiB --disk-cache 1GiB --chunk-size 1MiB
    --swarm-key "$DEMO/swarm.key" --p2p-listen /ip4/127.0.0.1/tcp/0
    # The demo counts origin bytes exactly: without the 1% spot check of
    # chunks from peers (a re-read from the origin, on by default).
    --spot-check-rate 0)
  [[ -n "$boot" ]] && args+=(--bootstrap "$boot")
  "$SHOAL_BIN" "${args[@]}" 2>>"$log" &
  PIDS+=($!)
  local gw="" admin="" p2p=""
  for _ in $(seq 1 300); do
    gw=$(sed -n 's/.*msg="gateway listening" addr=\([^ ]*\).*/\1/p' "$log" | tail -1)
    admin=$(sed -n 's/.*msg="admin listening" addr=\([^ ]*\).*/\1/p' "$log" | tail -1)
    p2p=$(sed -n 's/.*msg="p2p listening" .*addrs=\([^ ,]*\).*/\1/p' "$log" | tail -1)
    if [[ -n "$gw" && -n "$admin" && -n "$p2p" ]] && curl -fsS "http://$admin/readyz" >/dev/null 2>&1; then break; fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "demo: node $n exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS "http://$admin/readyz" >/dev/null || { echo "demo: node $n not ready" >&2; cat "$log" >&2; exit 1; }
  GW[$n]=$gw ADMIN[$n]=$admin P2P[$n]=$p2p
}
start_node 1
start_node 2 "${P2P[1]}"
start_node 3 "${P2P[1]}"

# Wait until each node sees the two others.
for n in 1 2 3; do
  for _ in $(seq 1 300); do
    [[ $("$SHOAL_BIN" peers --json --admin "${ADMIN[$n]}" | grep -c '"id"') -ge 2 ]] && break
    sleep 0.1
  done
done

# origin_bytes N: chunk bytes node N has read from the origin.
origin_bytes() { "$SHOAL_BIN" status --json --admin "${ADMIN[$1]}" | sed -n 's/^  "OriginBytes": \([0-9]*\),/\1/p'; }
cluster_origin() { echo $(( $(origin_bytes 1) + $(origin_bytes 2) + $(origin_bytes 3) )); }

cat <<MSG

Three Shoal nodes form a cluster on loopback (swarm key $DEMO/swarm.key).
  node 1: S3 gateway http://${GW[1]}  admin ${ADMIN[1]}
  node 2: S3 gateway http://${GW[2]}  admin ${ADMIN[2]}
  node 3: S3 gateway http://${GW[3]}  admin ${ADMIN[3]}
  origin: file://$ORIGIN_ABS (buckets: photos, datasets, models)
  logs  : $DEMO/node1.log, node2.log, node3.log

Reading datasets/big/sample.bin ($SIZE bytes, 1 MiB chunks) through each node in turn:
MSG
TMP=$(mktemp -d)
trap 'stop_nodes; rm -rf "$TMP"' EXIT
printf '  %-28s %s\n' "read through" "bytes read from the origin by the whole cluster so far"
for n in 1 2 3; do
  curl -fsS -o "$TMP/sample$n.bin" "http://${GW[$n]}/datasets/big/sample.bin"
  cmp -s "$TMP/sample$n.bin" "$ORIGIN/datasets/big/sample.bin" || { echo "demo: node $n returned other bytes" >&2; exit 1; }
  printf '  %-28s %s\n' "node $n" "$(cluster_origin)"
done
echo "  (node 1's chunks were read from the origin once, each by its home node; nodes 2 and 3 got theirs from peers)"
echo

EXAMPLES=(
  "curl -s http://${GW[2]}/photos/README.txt"
  "curl -s -r 0-9 http://${GW[3]}/datasets/csv/iris.csv"
  "$SHOAL_BIN warm s3://models/tiny/ --admin ${ADMIN[1]}"
  "$SHOAL_BIN jobs --admin ${ADMIN[3]}"
  "$SHOAL_BIN where s3://models/tiny/model-00001.safetensors --admin ${ADMIN[2]}"
  "$SHOAL_BIN ls --cached s3://datasets/ --admin ${ADMIN[1]}"
  "$SHOAL_BIN peers --admin ${ADMIN[1]}"
  "$SHOAL_BIN status --admin ${ADMIN[2]}"
  "$SHOAL_BIN warm s3://models/tiny/ --pin --replicas 2 --detach --admin ${ADMIN[2]}"
)
echo "Try:"
for e in "${EXAMPLES[@]}"; do echo "  $e"; done
echo

if [[ -z "$ONESHOT" ]]; then
  echo "Ctrl-C stops the nodes."
  trap 'stop_nodes; rm -rf "$TMP"; exit 0' INT TERM
  wait "${PIDS[@]}"
  exit $?
fi

# --- one-shot: run the examples and check them -------------------------------
fail=0
run() { # run DESCRIPTION EXPECTED-SUBSTRING COMMAND...
  local what=$1 want=$2; shift 2
  local out
  if ! out=$("$@" 2>&1); then echo "FAIL $what: $out" >&2; fail=1; return; fi
  if [[ "$out" != *"$want"* ]]; then echo "FAIL $what: output lacks '$want': $out" >&2; fail=1; return; fi
  echo "ok   $what"
}
total=$(cluster_origin)
if [[ "$total" -lt "$SIZE" || "$total" -gt $((SIZE + SIZE / 50)) ]]; then
  echo "FAIL origin once: the cluster read $total bytes from the origin for three reads of $SIZE" >&2; fail=1
else
  echo "ok   origin once: $total bytes from the origin for three reads of $SIZE"
fi
[[ "$(origin_bytes 1)" -lt "$SIZE" ]] && echo "ok   node 1's chunks were spread over their homes" || { echo "FAIL node 1 read everything itself" >&2; fail=1; }
run "GET through node 2"        "Shoal demo bucket" curl -fsS "http://${GW[2]}/photos/README.txt"
run "range through node 3"      "sepal_leng"        curl -fsS -r 0-9 "http://${GW[3]}/datasets/csv/iris.csv"
run "warm job"                  "state          done" "$SHOAL_BIN" warm s3://models/tiny/ --admin "${ADMIN[1]}"
run "jobs from another node"    "done"              "$SHOAL_BIN" jobs --admin "${ADMIN[3]}"
run "where"                     "in the cluster 100%" "$SHOAL_BIN" where s3://models/tiny/model-00001.safetensors --admin "${ADMIN[2]}"
run "ls --cached"               "big/sample.bin"    "$SHOAL_BIN" ls --cached s3://datasets/ --admin "${ADMIN[1]}"
run "peers"                     "/ip4/127.0.0.1/"   "$SHOAL_BIN" peers --admin "${ADMIN[1]}"
run "status"                    "replicas"          "$SHOAL_BIN" status --admin "${ADMIN[2]}"
run "warm --replicas --detach"  ""                  "$SHOAL_BIN" warm s3://models/tiny/ --pin --replicas 2 --detach --admin "${ADMIN[2]}"
run "status --json"             '"Replicas"'        "$SHOAL_BIN" status --json --admin "${ADMIN[2]}"
stop_nodes
if [[ $fail -ne 0 ]]; then echo "demo: some examples failed; node logs in $DEMO" >&2; exit 1; fi
echo "demo: all examples passed"
