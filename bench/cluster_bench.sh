#!/usr/bin/env bash
# Reveal and write throughput of the storage backends and of several nodes, in one run:
#   1. SQLite, one node (`serve --data`);
#   2. PostgreSQL, one node (`serve --database`);
#   3. PostgreSQL, two nodes on the same database, the load split evenly between them (two
#      wrk processes at once, one per node; their requests/s are added);
#   4. for reference, writes of one PostgreSQL node on a cluster with fsync off: what the
#      WAL flush costs each (serialized) write.
# PostgreSQL is a private cluster this script starts (tests/support/postgres_cluster.sh,
# Debian's postgresql-15) with fsync on, as a real installation runs it (and a second one
# with fsync off for the reference), removed at the end. Each configuration gets a fresh database with 20 secrets in one organization, a
# member token (reveals) and an org admin token (writes: PUT of a secret, over 100 keys).
# Tokens reach wrk through its environment, never its command line.
# Prints a Markdown table for docs/benchmarks.md.
#
# Usage: bench/cluster_bench.sh [BUILD_DIR]   (default: build)
# Knobs: DURATION (default 10s), CONNECTIONS (default 32, split between the nodes),
#        SERVER_THREADS (default 4), DATABASE_POOL (serve --database-pool; default: the
#        server's), BIFROST_PG_BIN (default /usr/lib/postgresql/15/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bifrost"
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
server_threads=${SERVER_THREADS:-4}
pool=${DATABASE_POOL:-}
pg_bin=${BIFROST_PG_BIN:-/usr/lib/postgresql/15/bin}
die() { echo "cluster_bench: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed (make deps installs it)"
[ -x "$bin" ] || die "$bin not built; run make build"
[ -x "$pg_bin/pg_ctl" ] || die "no $pg_bin/pg_ctl: install the Debian package postgresql-15"
[ $((connections % 2)) -eq 0 ] || die "CONNECTIONS must be even (split between two nodes)"

work=$(mktemp -d)
pg_dir=$(mktemp -d)
pg_nofsync_dir=$(mktemp -d)
node_pids=()
stop_nodes() {
  local pid
  for pid in "${node_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  node_pids=()
}
cleanup() {
  stop_nodes
  tests/support/postgres_cluster.sh destroy "$pg_dir" >/dev/null 2>&1 || true
  tests/support/postgres_cluster.sh destroy "$pg_nofsync_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

random_hex() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

echo "cluster_bench: starting PostgreSQL (fsync on, and a second cluster with fsync off)..." >&2
pg_url=$(tests/support/postgres_cluster.sh start "$pg_dir")
pg_nofsync_url=$(tests/support/postgres_cluster.sh start "$pg_nofsync_dir" --no-fsync)
pg_version=$("$pg_bin/postgres" --version | sed -n 's/^postgres (PostgreSQL) \([0-9.]*\).*/\1/p')

# new_database CLUSTER_URL NAME: creates database NAME on that cluster; prints its URL.
new_database() {
  "$pg_bin/psql" -q -v ON_ERROR_STOP=1 "$1" -c "CREATE DATABASE $2" >/dev/null
  python3 - "$1" "$2" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
PY
}

# start_node N STORAGE_ARGS...: `bifrost serve` in the background; sets node_addr.
start_node() {
  local n=$1
  shift
  local extra=()
  if [ -n "$pool" ] && [ "$1" = "--database" ]; then extra=(--database-pool "$pool"); fi
  : >"$work/node$n.out"
  BIFROST_SECRET_KEY="$secret_key" "$bin" serve "$@" --listen 127.0.0.1:0 \
    --threads "$server_threads" "${extra[@]}" >"$work/node$n.out" 2>"$work/node$n.log" &
  node_pids+=($!)
  for _ in $(seq 1 500); do grep -q "listening on" "$work/node$n.out" 2>/dev/null && break; sleep 0.02; done
  node_addr=$(sed -n 's/^listening on //p' "$work/node$n.out" | head -n1)
  [ -n "$node_addr" ] || { cat "$work/node$n.log" >&2; die "node $n did not start"; }
}

# setup STORAGE_ARGS...: init, the first node, the data and the tokens. Sets node_addr, org,
# member, writer.
setup() {
  secret_key="bench-secret-key-$(random_hex)"
  BIFROST_SECRET_KEY="$secret_key" "$bin" init "$@" --format json >"$work/init.json"
  local admin
  admin=$(json_field "$work/init.json" token)
  start_node 1 "$@"
  BIFROST_ADDR="$node_addr" BIFROST_TOKEN="$admin" "$bin" org create "Bench Org" --format json >"$work/org.json"
  org=$(json_field "$work/org.json" id)
  for i in $(seq 1 20); do
    printf 'sk_live_bench_%032d' "$i" |
      BIFROST_ADDR="$node_addr" BIFROST_TOKEN="$admin" "$bin" config set "key_$i" --secret --org "$org" >/dev/null
  done
  BIFROST_ADDR="$node_addr" BIFROST_TOKEN="$admin" "$bin" token create --role member --org "$org" \
    --name bench-member --format json >"$work/member.json"
  member=$(json_field "$work/member.json" token)
  BIFROST_ADDR="$node_addr" BIFROST_TOKEN="$admin" "$bin" token create --role admin --org "$org" \
    --name bench-writer --format json >"$work/writer.json"
  writer=$(json_field "$work/writer.json" token)
  rm -f "$work/init.json" "$work/member.json" "$work/writer.json"
}

cat >"$work/reveal.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
LUA
# Each request replaces one of 100 secrets with a new value (no expected_version).
cat >"$work/write.lua" <<'LUA'
local counter = 0
local path = "/api/v1/orgs/" .. os.getenv("BENCH_ORG") .. "/configs/w_"
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  ["Content-Type"] = "application/json",
}
request = function()
  counter = counter + 1
  local body = string.format('{"type":"secret","value":"sk_live_bench_write_%016d"}', counter)
  return wrk.format("PUT", path .. (counter % 100), headers, body)
end
LUA

# load SLUG OP ADDRESS...: wrk against each address at once (the connections split evenly),
# prints "requests/s|p50|p99|non-2xx" (requests/s added; the worst p50 and p99 of the nodes).
load() {
  local slug=$1 op=$2
  shift 2
  local n=$# per_node=$((connections / $#)) threads=$((2 / $#)) i=0 target token
  [ "$threads" -ge 1 ] || threads=1
  local wrk_pids=()
  for addr in "$@"; do
    i=$((i + 1))
    if [ "$op" = reveal ]; then
      target="$addr/api/v1/orgs/$org/configs/key_7/reveal"
      token=$member
    else
      target="$addr/"
      token=$writer
    fi
    BENCH_TOKEN="$token" BENCH_ORG="$org" wrk -t"$threads" -c"$per_node" -d"$duration" --latency \
      -s "$work/$op.lua" "$target" >"$work/$slug-$op-$i.txt" &
    wrk_pids+=($!)
  done
  for pid in "${wrk_pids[@]}"; do wait "$pid"; done
  for i in $(seq 1 "$n"); do python3 bench/wrk_summary.py "$work/$slug-$op-$i.txt"; done | python3 -c '
import sys
rows = [line.strip().split("|") for line in sys.stdin if line.strip()]
rps = sum(float(r[0]) for r in rows)
p50 = max(float(r[1]) for r in rows)
p99 = max(float(r[2]) for r in rows)
non2xx = sum(int(r[3]) for r in rows)
errors = "; ".join(r[4] for r in rows if r[4])
print(f"{rps:.0f}|{p50:.2f}|{p99:.2f}|{non2xx}|{errors}")'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
# bench LABEL SLUG NODES OPS STORAGE_ARGS...   (OPS: "reveal write" or a subset)
bench() {
  local label=$1 slug=$2 nodes=$3 ops=$4
  shift 4
  echo "cluster_bench: $label..." >&2
  setup "$@"
  local addrs=("$node_addr")
  if [ "$nodes" -eq 2 ]; then
    start_node 2 "$@"
    addrs+=("$node_addr")
  fi
  local op result
  for op in $ops; do
    result=$(load "$slug" "$op" "${addrs[@]}")
    rows+=("$label|$op|$result")
  done
  stop_nodes
}

bench "SQLite, 1 node" sqlite 1 "reveal write" --data "$work/sqlite"
bench "PostgreSQL, 1 node" pg1 1 "reveal write" --database "$(new_database "$pg_url" bench_pg1)"
bench "PostgreSQL, 2 nodes" pg2 2 "reveal write" --database "$(new_database "$pg_url" bench_pg2)"
bench "reference: PostgreSQL with fsync off, 1 node" nofsync 1 write \
  --database "$(new_database "$pg_nofsync_url" bench_nofsync)"

echo "wrk ${duration}, ${connections} keep-alive connections in all (split between the nodes), server --threads ${server_threads}${pool:+, --database-pool $pool}; PostgreSQL ${pg_version} (fsync on unless said, synchronous_commit on) on the same machine; $(nproc) CPUs; load average before: ${load_before}"
echo
echo "| storage, nodes | request | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
  IFS='|' read -r label op rps p50 p99 non2xx errors <<<"$row"
  case "$op" in
    reveal) what="reveal one secret (member)" ;;
    write) what="replace a secret (PUT, org admin)" ;;
  esac
  python3 -c "print(f'| $label | $what | {$rps:,} | $p50 | $p99 | $non2xx |')"
  [ -z "$errors" ] || echo "<!-- $label $op socket errors: $errors -->"
done
