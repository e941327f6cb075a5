#!/usr/bin/env bash
# Runs the Fernet benchmark and the Python reference in one go and prints a Markdown table
# for docs/benchmarks.md. Usage: bench/run.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
python=${BIFROST_PYTHON:-/usr/bin/python3}
[ -x "$build/fernet_bench" ] || { echo "bench/run.sh: $build/fernet_bench not built; run make build" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "running fernet_bench (C++, one thread)..." >&2
"$build/fernet_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 --benchmark_format=json >"$out/cpp.json"
echo "running the Python cryptography reference (one thread)..." >&2
"$python" bench/python_fernet_bench.py 0.5 >"$out/py.json"

"$python" - "$out/cpp.json" "$out/py.json" <<'PY'
import json, sys
cpp = json.load(open(sys.argv[1]))
py = json.load(open(sys.argv[2]))
rates = {}
for b in cpp["benchmarks"]:
    if b.get("aggregate_name") == "median":
        name = b["run_name"].replace("BM_Fernet", "").replace("32", "").lower()
        rates[name] = b["items_per_second"]
ctx = cpp["context"]
print(f"Machine: {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz; "
      f"Python {py['python']}, cryptography {py['cryptography']}")
print()
print("| operation (32-byte secret, 1 thread) | Bifrost C++ ops/s | Python cryptography ops/s | ratio |")
print("|---|---:|---:|---:|")
for op in ("encrypt", "decrypt"):
    c, p = rates[op], py[op + "_per_s"]
    print(f"| {op} | {c:,.0f} | {p:,.0f} | {c / p:.1f}x |")
PY
