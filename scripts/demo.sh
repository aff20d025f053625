#!/usr/bin/env bash
# Shoal demo: sample data in .demo/origin served by one node over a file://
# origin on loopback. `make demo` runs it; DEMO_ONESHOT=1 runs the example
# commands itself, checks their output, and exits (CI uses that).
set -euo pipefail
cd "$(dirname "$0")/.."

SHOAL_BIN=${SHOAL_BIN:-bin/shoal}
DEMO=${DEMO_DIR:-.demo}
ONESHOT=${DEMO_ONESHOT:-}
if [[ -n "$ONESHOT" ]]; then
  GW_LISTEN=${DEMO_GATEWAY:-127.0.0.1:0}
  ADMIN_LISTEN=${DEMO_ADMIN:-127.0.0.1:0}
else
  GW_LISTEN=${DEMO_GATEWAY:-127.0.0.1:7070}
  ADMIN_LISTEN=${DEMO_ADMIN:-127.0.0.1:7071}
fi

[[ -x "$SHOAL_BIN" ]] || { echo "demo: $SHOAL_BIN not built (run make build)" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo: curl is needed" >&2; exit 1; }

# --- sample data -----------------------------------------------------------
ORIGIN="$DEMO/origin"
mkdir -p "$ORIGIN/photos/2024/01" "$ORIGIN/photos/2024/02" "$ORIGIN/datasets/csv" "$ORIGIN/datasets/big"
[[ -f "$ORIGIN/datasets/big/sample.bin" ]] || head -c $((10 * 1024 * 1024 + 12345)) /dev/urandom > "$ORIGIN/datasets/big/sample.bin"
printf 'Shoal demo bucket.\nEach top-level folder of .demo/origin is a bucket.\n' > "$ORIGIN/photos/README.txt"
printf 'pretend this is a photo (january)\n' > "$ORIGIN/photos/2024/01/beach.txt"
printf 'pretend this is a photo (february)\n' > "$ORIGIN/photos/2024/02/snow.txt"
{ echo "sepal_length,sepal_width,species"; for i in $(seq 1 50); do echo "5.$((i % 10)),3.$((i % 7)),setosa"; done; } > "$ORIGIN/datasets/csv/iris.csv"
ORIGIN_ABS=$(cd "$ORIGIN" && pwd)

# --- start the node --------------------------------------------------------
LOG="$DEMO/node.log"
: > "$LOG"
"$SHOAL_BIN" node \
  --origin "file://$ORIGIN_ABS" \
  --data-dir "$DEMO/data" \
  --gateway-listen "$GW_LISTEN" \
  --admin-listen "$ADMIN_LISTEN" \
  --mem-cache 256MiB --disk-cache 1GiB --chunk-size 4MiB \
  2>>"$LOG" &
NODE_PID=$!
stop_node() {
  if kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
}
trap stop_node EXIT

GW="" ADMIN=""
for _ in $(seq 1 300); do
  GW=$(sed -n 's/.*msg="gateway listening" addr=\([^ ]*\).*/\1/p' "$LOG" | tail -1)
  ADMIN=$(sed -n 's/.*msg="admin listening" addr=\([^ ]*\).*/\1/p' "$LOG" | tail -1)
  if [[ -n "$GW" && -n "$ADMIN" ]] && curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$NODE_PID" 2>/dev/null || { echo "demo: the node exited:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://$ADMIN/readyz" >/dev/null || { echo "demo: node not ready" >&2; cat "$LOG" >&2; exit 1; }

EP="http://$GW"
AWS="aws --endpoint-url $EP --no-sign-request --region us-east-1"
EXAMPLES=(
  "curl -s $EP/photos/README.txt"
  "curl -s -r 0-9 $EP/datasets/csv/iris.csv"
  "curl -sI $EP/datasets/big/sample.bin"
  "curl -s '$EP/photos?list-type=2&prefix=2024/&delimiter=/'"
  "curl -s -o /tmp/sample.bin $EP/datasets/big/sample.bin && cmp /tmp/sample.bin $ORIGIN/datasets/big/sample.bin && echo identical"
  "$AWS s3 ls s3://photos/ --recursive"
  "$AWS s3 cp s3://datasets/csv/iris.csv -"
  "$SHOAL_BIN status --admin $ADMIN"
  "$SHOAL_BIN pin s3://datasets/big/ --admin $ADMIN"
)

cat <<MSG

Shoal demo node is up.
  S3 gateway : $EP            (anonymous access: loopback only)
  admin API  : http://$ADMIN   (/healthz /readyz /metrics /v1/status)
  origin     : file://$ORIGIN_ABS  (buckets: photos, datasets)
  log        : $LOG

Try:
MSG
for e in "${EXAMPLES[@]}"; do echo "  $e"; done
echo

if [[ -z "$ONESHOT" ]]; then
  echo "Ctrl-C stops the node."
  trap 'stop_node; exit 0' INT TERM
  wait "$NODE_PID"
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
TMP=$(mktemp -d)
trap 'stop_node; rm -rf "$TMP"' EXIT
run "GET object"          "Shoal demo bucket" curl -fsS "$EP/photos/README.txt"
run "GET range"           "sepal_leng"        curl -fsS -r 0-9 "$EP/datasets/csv/iris.csv"
run "HEAD"                "Content-Length: $(wc -c < "$ORIGIN/datasets/big/sample.bin" | tr -d ' ')" curl -fsSI "$EP/datasets/big/sample.bin"
run "ListObjectsV2"       "<Prefix>2024/01/</Prefix>" curl -fsS "$EP/photos?list-type=2&prefix=2024/&delimiter=/"
curl -fsS -o "$TMP/sample.bin" "$EP/datasets/big/sample.bin"
run "multi-chunk GET"     "" cmp "$TMP/sample.bin" "$ORIGIN/datasets/big/sample.bin"
run "status"              "{"                 "$SHOAL_BIN" status --admin "$ADMIN"
run "pin"                 "{"                 "$SHOAL_BIN" pin s3://datasets/big/ --admin "$ADMIN"
if command -v aws >/dev/null; then
  run "aws s3 ls"         "2024/02/snow.txt"  $AWS s3 ls s3://photos/ --recursive
  run "aws s3 cp"         "setosa"            $AWS s3 cp s3://datasets/csv/iris.csv -
else
  echo "skip aws CLI examples (aws not installed)"
fi
stop_node
if [[ $fail -ne 0 ]]; then echo "demo: some examples failed; node log: $LOG" >&2; exit 1; fi
echo "demo: all examples passed"
