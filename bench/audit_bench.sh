#!/usr/bin/env bash
# What the audit log costs: reveal throughput under wrk at 64 keep-alive connections for
#   1. the server without an audit log: the binary of BASELINE_COMMIT (the last commit before
#      the audit log), built once from a git worktree into build-bench-baseline/;
#   2. this build, audit records in the database (group commit, one fsync per group);
#   3. this build, database + JSON-lines file sink (a second fdatasync per group).
# All three in one run, same machine, same data. Prints a Markdown table for
# docs/benchmarks.md.
#
# Usage: bench/audit_bench.sh [BUILD_DIR]   (default: build)
# Knobs: DURATION (default 10s), CONNECTIONS (default 64), WRK_THREADS (default 2),
#        SERVER_THREADS (default 4), BASELINE_COMMIT.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
wrk_threads=${WRK_THREADS:-2}
server_threads=${SERVER_THREADS:-4}
baseline_commit=${BASELINE_COMMIT:-c8c0d06}
command -v wrk >/dev/null || { echo "audit_bench: wrk is not installed (make deps installs it)" >&2; exit 1; }
[ -x "$build/bifrost" ] || { echo "audit_bench: $build/bifrost not built; run make build" >&2; exit 1; }

baseline_dir=build-bench-baseline
if [ ! -x "$baseline_dir/build/bifrost" ]; then
  echo "audit_bench: building the baseline ($baseline_commit, no audit log) once..." >&2
  rm -rf "$baseline_dir"
  git worktree prune
  git worktree add --detach "$baseline_dir/src" "$baseline_commit" >/dev/null
  ln -sfn "$(cd .. && pwd)/shared" "$baseline_dir/shared" 2>/dev/null || true
  cmake -S "$baseline_dir/src" -B "$baseline_dir/build" -DCMAKE_BUILD_TYPE=Release \
    -DBIFROST_BUILD_TESTS=OFF >/dev/null
  cmake --build "$baseline_dir/build" -j2 --target bifrost >/dev/null
fi

work=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

cat >"$work/auth.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
LUA

# bench LABEL BINARY [SERVE ARGS...]: a fresh database, 20 secrets, a member token, then wrk
# on one reveal route. Prints one table row.
bench() {
  local label=$1 bin=$2
  shift 2
  local data="$work/data-$RANDOM"
  export BIFROST_SECRET_KEY="bench-secret-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  "$bin" init --data "$data" --format json >"$work/init.json"
  local admin
  admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/init.json")
  : >"$work/stdout"
  "$bin" serve --data "$data" --listen 127.0.0.1:0 --threads "$server_threads" "$@" \
    >"$work/stdout" 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 500); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.02; done
  local addr
  addr=$(sed -n 's/^listening on //p' "$work/stdout" | head -n1)
  [ -n "$addr" ] || { echo "audit_bench: server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
  unset BIFROST_SECRET_KEY
  export BIFROST_ADDR="$addr"
  BIFROST_TOKEN="$admin" "$bin" org create "Bench Org" --format json >"$work/org.json"
  local org
  org=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/org.json")
  for i in $(seq 1 20); do
    printf 'sk_live_bench_%032d' "$i" |
      BIFROST_TOKEN="$admin" "$bin" config set "key_$i" --secret --org "$org" >/dev/null
  done
  BIFROST_TOKEN="$admin" "$bin" token create --role member --org "$org" --name bench --format json >"$work/token.json"
  local member
  member=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/token.json")
  BENCH_TOKEN="$member" wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency \
    -s "$work/auth.lua" "$addr/api/v1/orgs/$org/configs/key_7/reveal" >"$work/wrk.txt"
  local groups="-"
  if [ "$bin" != "$baseline_dir/build/bifrost" ]; then
    groups=$(BENCH_TOKEN="$admin" python3 - "$addr" <<'PY' 2>/dev/null || echo "?"
import json, os, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/api/v1/audit/status",
                             headers={"Authorization": "Bearer " + os.environ["BENCH_TOKEN"]})
s = json.load(urllib.request.urlopen(req))
print(f"{s['records'] / max(s['groups'], 1):.1f}")
PY
)
  fi
  stop_server
  echo "$label|$(python3 bench/wrk_summary.py "$work/wrk.txt" | cut -d'|' -f1-4)|$groups"
}

echo "audit_bench: baseline..." >&2
base=$(bench "no audit log (baseline $baseline_commit)" "$baseline_dir/build/bifrost")
echo "audit_bench: audit to the database..." >&2
db=$(bench "audit: database" "$build/bifrost")
echo "audit_bench: audit to the database and a file..." >&2
file=$(bench "audit: database + --audit-file" "$build/bifrost" --audit-file "$work/audit.jsonl")

echo "wrk ${duration}, ${connections} keep-alive connections, ${wrk_threads} wrk threads; server --threads ${server_threads}; $(nproc) CPUs; member token revealing one secret"
echo
echo "| server | requests/s | vs. no audit | p50 ms | p99 ms | non-2xx | records per group commit |"
echo "|---|---:|---:|---:|---:|---:|---:|"
base_rps=$(echo "$base" | cut -d'|' -f2)
for row in "$base" "$db" "$file"; do
  IFS='|' read -r name rps p50 p99 non2xx groups <<<"$row"
  python3 -c "print(f'| $name | {$rps:,} | {100*$rps/$base_rps:.0f}% | $p50 | $p99 | $non2xx | $groups |')"
done
