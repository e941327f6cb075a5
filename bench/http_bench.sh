#!/usr/bin/env bash
# HTTP throughput and latency of a running `bifrost serve` under wrk, over keep-alive
# connections: the reveal endpoint (what SDKs and workflows call) and the config listing.
# Prints a Markdown table for docs/benchmarks.md.
#
# Usage: bench/http_bench.sh [BUILD_DIR]   (default: build)
# Knobs: DURATION (default 10s), CONNECTIONS (default 32), WRK_THREADS (default 2),
#        SERVER_THREADS (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bifrost"
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
wrk_threads=${WRK_THREADS:-2}
server_threads=${SERVER_THREADS:-4}
command -v wrk >/dev/null || { echo "http_bench: wrk is not installed (make deps installs it)" >&2; exit 1; }
[ -x "$bin" ] || { echo "http_bench: $bin not built; run make build" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

export BIFROST_SECRET_KEY="bench-secret-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$bin" init --data "$work/data" --format json >"$work/init.json"
admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/init.json")
"$bin" serve --data "$work/data" --listen 127.0.0.1:0 --threads "$server_threads" \
  >"$work/stdout" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 500); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.02; done
addr=$(sed -n 's/^listening on //p' "$work/stdout" | head -n1)
[ -n "$addr" ] || { echo "http_bench: server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
unset BIFROST_SECRET_KEY

export BIFROST_ADDR="$addr"
BIFROST_TOKEN="$admin" "$bin" org create "Bench Org" --format json >"$work/org.json"
org=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/org.json")
for i in $(seq 1 20); do
  printf 'sk_live_bench_%032d' "$i" | BIFROST_TOKEN="$admin" "$bin" config set "key_$i" --secret --org "$org" >/dev/null
done
BIFROST_TOKEN="$admin" "$bin" token create --role member --org "$org" --name bench --format json >"$work/token.json"
member=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/token.json")

# The token reaches wrk through the environment, not its command line.
cat >"$work/auth.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
LUA

run() {  # slug label path
  BENCH_TOKEN="$member" wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency \
    -s "$work/auth.lua" "$addr$3" >"$work/$1.txt"
  IFS='|' read -r rps p50 p99 non2xx errors < <(python3 bench/wrk_summary.py "$work/$1.txt")
  python3 -c "print(f'| $2 | {$rps:,} | $p50 | $p99 | $non2xx |')"
  [ -z "$errors" ] || echo "<!-- socket errors: $errors -->"
}

echo "wrk ${duration}, ${connections} keep-alive connections, ${wrk_threads} wrk threads; server --threads ${server_threads}; $(nproc) CPUs"
echo
echo "| request (member token) | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---:|---:|---:|---:|"
run reveal "reveal one secret (GET .../configs/key_7/reveal)" "/api/v1/orgs/$org/configs/key_7/reveal"
run list "list 20 entries (GET .../configs)" "/api/v1/orgs/$org/configs"
