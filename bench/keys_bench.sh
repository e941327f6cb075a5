#!/usr/bin/env bash
# What key management costs, measured through the real binary on fresh databases:
#   1. master-key rotation of an installation with 10,000 organizations (10 secrets each):
#      `bifrost keys rotate` re-wraps one data key per scope;
#   2. the reference, in the same run on the same data: what a master-key rotation costs a
#      design without data keys (the Python Bifrost's, where every secret is sealed by the
#      master key), which must re-encrypt every secret: measured as `keys rotate --all`,
#      which re-encrypts all 100,000 secrets;
#   3. data-key rotation of one organization holding 100,000 secrets: values per second.
# The databases are filled with `bifrost import bifrost` from generated Python Bifrost dumps
# (tests/support/make_bifrost_dump.py); the import's own time is printed too.
# Prints a Markdown table for docs/benchmarks.md.
#
# Usage: bench/keys_bench.sh [BUILD_DIR]   (default: build)
# Knobs: ORGS (default 10000), SECRETS_PER_ORG (default 10), ONE_ORG_SECRETS (default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
orgs=${ORGS:-10000}
per_org=${SECRETS_PER_ORG:-10}
one_org=${ONE_ORG_SECRETS:-100000}
bin="$build/bifrost"
[ -x "$bin" ] || { echo "keys_bench: $bin not built; run make build" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
random_key() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
old_key="bench-old-$(random_key)"
new_key="bench-new-$(random_key)"
printf '%s\n' "bench-source-$(random_key)" >"$work/source.key"
chmod 600 "$work/source.key"

now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }
rate() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):,.0f}")' "$1" "$2"; }

# setup NAME ORGS PER_ORG: a database NAME filled by importing a generated dump.
setup() {
  local name=$1 n_orgs=$2 n_per=$3
  python3 tests/support/make_bifrost_dump.py --out "$work/dump-$name" \
    --secret-key-file "$work/source.key" --orgs "$n_orgs" --configs-per-org "$n_per" \
    --global-configs 0 --integration-rows 0 --types secret --simple-values >/dev/null
  BIFROST_SECRET_KEY=$old_key "$bin" init --data "$work/$name" --format json >/dev/null
  local t0 t1
  t0=$(now)
  BIFROST_SECRET_KEY=$old_key "$bin" import bifrost --data "$work/$name" \
    --organizations "$work/dump-$name/organizations.csv" \
    --configs "$work/dump-$name/configs.csv" --source-key-file "$work/source.key" >/dev/null
  t1=$(now)
  echo "keys_bench: imported $n_orgs organizations x $n_per secrets in $(elapsed "$t0" "$t1") s" >&2
}

echo "keys_bench: generating and importing $orgs organizations x $per_org secrets..." >&2
setup many "$orgs" "$per_org"
t0=$(now)
BIFROST_SECRET_KEY=$new_key BIFROST_SECRET_KEY_PREVIOUS=$old_key \
  "$bin" keys rotate --data "$work/many" --format json >"$work/master.json" 2>"$work/master.err"
t1=$(now)
master_s=$(elapsed "$t0" "$t1")
rewrapped=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rewrapped"])' "$work/master.json")
t0=$(now)
BIFROST_SECRET_KEY=$new_key "$bin" keys rotate --all --data "$work/many" >/dev/null 2>"$work/all.err"
t1=$(now)
all_s=$(elapsed "$t0" "$t1")
total_secrets=$((orgs * per_org))

echo "keys_bench: generating and importing 1 organization x $one_org secrets..." >&2
setup one 1 "$one_org"
org_name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["organizations"][0]["name"])' \
  "$work/dump-one/expected.json")
t0=$(now)
BIFROST_SECRET_KEY=$old_key "$bin" keys rotate --org "$org_name" --data "$work/one" \
  >/dev/null 2>"$work/one.err"
t1=$(now)
one_s=$(elapsed "$t0" "$t1")

echo
echo "| operation | items | seconds | items/s |"
echo "|---|---:|---:|---:|"
echo "| master-key rotation, envelope encryption (re-wrap one data key per scope) | $rewrapped data keys | $master_s | $(rate "$rewrapped" "$master_s") |"
echo "| reference: re-encrypt every secret, as a design without data keys must | $total_secrets secrets | $all_s | $(rate "$total_secrets" "$all_s") |"
echo "| data-key rotation of one organization | $one_org secrets | $one_s | $(rate "$one_org" "$one_s") |"
