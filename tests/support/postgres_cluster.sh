#!/bin/sh
# A throwaway PostgreSQL cluster for the tests, from Debian's postgresql-15 binaries: its own
# data directory, run by an unprivileged user, listening on a Unix socket in its directory
# (and on a loopback port when asked), stopped and deleted afterwards.
#
#   postgres_cluster.sh start DIR [--port N] [--ssl] [--no-fsync]
#       Creates the cluster in DIR/data (initdb) unless it exists, starts it and prints the
#       URL of its "postgres" database (also kept in DIR/url). DIR must exist and be empty
#       or hold a cluster this script made. With --port the server listens on 127.0.0.1:N
#       too, and the URL names that address; --ssl turns TLS on with a self-signed
#       certificate (DIR/server.crt) for TCP clients. --no-fsync trades crash safety of the
#       whole machine for speed (a killed PostgreSQL still loses nothing it acknowledged).
#   postgres_cluster.sh stop DIR [fast|immediate]     stop it (default fast)
#   postgres_cluster.sh restart DIR                   stop (fast) and start again
#   postgres_cluster.sh destroy DIR                   stop it if running, delete DIR
#   postgres_cluster.sh url DIR                       print the URL again
#
# As root, PostgreSQL refuses to run; the cluster then belongs to the `postgres` user that
# Debian's package creates (or `nobody`), and DIR is handed to that user. The superuser role
# is `bifrost` and local connections are trusted: this cluster only ever exists for a test.
set -eu

BIN="${BIFROST_PG_BIN:-/usr/lib/postgresql/15/bin}"

die() { echo "postgres_cluster.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: postgres_cluster.sh start|stop|restart|destroy|url DIR [options]"
cmd="$1"
dir="$2"
shift 2
[ -x "$BIN/pg_ctl" ] || die "no $BIN/pg_ctl: install the Debian package postgresql-15"
[ -d "$dir" ] || die "no directory $dir"
dir="$(cd "$dir" && pwd)"

if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  owner="$(id -un)"
  as_owner() { "$@"; }
fi

ctl() { as_owner "$BIN/pg_ctl" -D "$dir/data" -w -t 60 "$@"; }

running() { [ -f "$dir/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    port=""
    ssl=0
    fsync=on
    while [ $# -gt 0 ]; do
      case "$1" in
        --port) port="$2"; shift 2 ;;
        --ssl) ssl=1; shift ;;
        --no-fsync) fsync=off; shift ;;
        *) die "unknown option $1" ;;
      esac
    done
    if [ ! -d "$dir/data" ]; then
      [ "$owner" = "$(id -un)" ] || chown "$owner" "$dir"
      chmod 0700 "$dir"
      as_owner "$BIN/initdb" -D "$dir/data" -U bifrost --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
      listen="''"
      [ -n "$port" ] && listen="'127.0.0.1'"
      {
        echo "listen_addresses = $listen"
        echo "port = ${port:-5432}"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 300"
        echo "fsync = $fsync"
        echo "shared_buffers = 32MB"
        echo "logging_collector = off"
        echo "log_min_messages = warning"
      } >>"$dir/data/postgresql.conf"
      if [ "$ssl" -eq 1 ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
          -addext "subjectAltName=IP:127.0.0.1" \
          -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1 || die "openssl failed"
        chmod 0600 "$dir/server.key"
        [ "$owner" = "$(id -un)" ] || chown "$owner" "$dir/server.key" "$dir/server.crt"
        {
          echo "ssl = on"
          echo "ssl_cert_file = '$dir/server.crt'"
          echo "ssl_key_file = '$dir/server.key'"
        } >>"$dir/data/postgresql.conf"
        # TCP clients must use TLS; the socket stays plain.
        {
          echo "local all all trust"
          echo "hostssl all all 127.0.0.1/32 trust"
        } >"$dir/data/pg_hba.conf"
      fi
      if [ -n "$port" ]; then
        echo "postgresql://bifrost@127.0.0.1:$port/postgres" >"$dir/url"
      else
        echo "postgresql://bifrost@/postgres?host=$dir&port=5432" >"$dir/url"
      fi
    fi
    if ! running; then
      ctl -l "$dir/server.log" start >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "start failed"; }
    fi
    cat "$dir/url"
    ;;
  stop)
    mode="${1:-fast}"
    if running; then ctl -m "$mode" stop >/dev/null; fi
    ;;
  restart)
    ctl -m fast -l "$dir/server.log" restart >/dev/null
    ;;
  destroy)
    if [ -d "$dir/data" ] && running; then ctl -m immediate stop >/dev/null || true; fi
    rm -rf "$dir"
    ;;
  url)
    cat "$dir/url"
    ;;
  *)
    die "unknown command $cmd"
    ;;
esac
