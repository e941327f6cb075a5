#!/bin/sh
# The ctest fixture `postgres` (tests/CMakeLists.txt): one throwaway PostgreSQL cluster shared
# by the tests of one build directory, started before the first test that needs it and
# destroyed after the last.
#
#   postgres_fixture.sh start STATE_DIR   start a cluster; STATE_DIR/url holds its URL and
#                                         STATE_DIR/dir its directory (under /tmp, so that the
#                                         cluster's unprivileged user can reach it)
#   postgres_fixture.sh stop STATE_DIR    stop and delete it
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 2 ] || { echo "usage: postgres_fixture.sh start|stop STATE_DIR" >&2; exit 2; }
state="$2"
case "$1" in
  start)
    mkdir -p "$state"
    # A cluster left behind by an interrupted run is removed first.
    if [ -f "$state/dir" ]; then "$here/postgres_cluster.sh" destroy "$(cat "$state/dir")" 2>/dev/null || true; fi
    rm -f "$state/url" "$state/dir"
    dir="$(mktemp -d /tmp/bifrost-test-pg.XXXXXX)"
    echo "$dir" >"$state/dir"
    # fsync off: these databases live for one test run; a PostgreSQL that is killed still
    # loses nothing it acknowledged (only a crash of the whole machine could).
    "$here/postgres_cluster.sh" start "$dir" --no-fsync >"$state/url.tmp"
    mv "$state/url.tmp" "$state/url"
    echo "postgres fixture: cluster in $dir"
    ;;
  stop)
    if [ -f "$state/dir" ]; then
      "$here/postgres_cluster.sh" destroy "$(cat "$state/dir")"
      rm -f "$state/url" "$state/dir"
    fi
    echo "postgres fixture: stopped"
    ;;
  *) echo "unknown command $1" >&2; exit 2 ;;
esac
