#!/usr/bin/env bash
# What running workflows costs, through the real binary, in one run:
#   1. executions per second of a trivial Python workflow (returns a constant), of the same
#      as an executable (a shell script: the runtime's own overhead without Python), and of a
#      Python workflow that reads one secret with config.get; each run started and awaited
#      over the API by 8 concurrent clients, the server at its default concurrency (4);
#   2. the reference for (1): starting the interpreter and importing the SDK in a new
#      process, at the same parallelism, with no server at all (the floor of any design that
#      isolates each execution in its own process, as this one does);
#   3. the latency of config.get from the Python SDK (sync twin, sequential, kept-alive),
#      next to a bare kept-alive HTTP GET of the same reveal endpoint.
# Prints a Markdown table for docs/benchmarks.md.
#
# Usage: bench/workflow_bench.sh [BUILD_DIR]   (default: build)
# Knobs: RUNS (default 200), GETS (default 2000), CLIENTS (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bifrost"
[ -x "$bin" ] || { echo "workflow_bench: $bin not built; run make build" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -m 755 "$work/workflows"
cat >"$work/workflows/bench.py" <<'PY'
from bifrost import config, workflow

@workflow(name="noop_python")
def noop_python(context):
    return {"ok": True}

@workflow(name="get_secret")
async def get_secret(context):
    value = await config.get("bench_secret")
    return {"length": len(value)}
PY
cat >"$work/workflows/noop_exe" <<'SH'
#!/bin/sh
if [ "$1" = --bifrost-describe ]; then echo '{"name": "noop_exe"}'; exit 0; fi
cat >/dev/null
echo '{"status": "success", "result": {"ok": true}}' >&3
SH
chmod 644 "$work/workflows/bench.py"
chmod 755 "$work/workflows/noop_exe"

export BIFROST_SECRET_KEY="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
token=$("$bin" init --data "$work/data" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" serve --data "$work/data" --listen 127.0.0.1:0 --workflows "$work/workflows" \
  >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/serve.out" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/serve.out")
[ -n "$addr" ] || { echo "workflow_bench: the server did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
org=$(BIFROST_ADDR=$addr BIFROST_TOKEN=$token "$bin" org create bench --format json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

echo "workflow_bench: measuring (RUNS=${RUNS:-200}, GETS=${GETS:-2000})..." >&2
/usr/bin/python3 bench/workflow_bench.py "$addr" "$token" "$org" "$PWD/sdk/python" >"$work/result.json"

python3 - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def run(name, row):
    return f"| {name} | {row['per_second']:,.1f} | {row['p50_ms']:,.0f} | {row['p99_ms']:,.0f} |"
print("| workflow (8 clients, concurrency 4) | executions/s | p50 ms | p99 ms |")
print("|---|---:|---:|---:|")
print(run("Python, returns a constant", r["python"]))
print(run("Python, one `config.get` of a secret", r["python_get"]))
print(run("executable (shell script)", r["executable"]))
print(f"| reference: `python3 -c 'import bifrost'` alone, no server | {r['spawn_floor_per_second']:,.1f} | – | – |")
print()
g = r["config_get"]
print(f"| `config.get` ({g['gets']:,} sequential) | mean µs | p50 µs | p99 µs |")
print("|---|---:|---:|---:|")
for name, key in (("Python SDK `config.get_sync`", "sdk"), ("reference: bare kept-alive HTTP GET of the reveal", "raw_http")):
    s = g[key]
    print(f"| {name} | {s['mean_us']:,.0f} | {s['p50_us']:,.0f} | {s['p99_us']:,.0f} |")
PY
