#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL 15 for the benchmarks (tests/bench/).
#
#   scripts/bench_postgres.sh start DIR PORT   initdb into DIR/data (DIR must not hold one yet), run as
#                                              the postgres OS user on 127.0.0.1:PORT, unix socket in DIR
#   scripts/bench_postgres.sh stop DIR         fast shutdown (the folder stays; the caller removes it)
#
# Connect with: psql -h DIR -p PORT -U postgres postgres (trust auth, local only).
# fsync and synchronous_commit stay on (the defaults). Settings below give PostgreSQL a fair share
# of this 2-core / 24 GiB machine (a team would tune these for a bulk-loading workload); set
# BENCH_PG_DEFAULTS=1 to run with initdb's defaults instead.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
fi

as_postgres() {
  if [[ "$(id -un)" == postgres ]]; then
    "$@"
  else
    runuser -u postgres -- "$@"
  fi
}

case "$cmd" in
  start)
    port=${3:?PORT missing}
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [[ "$(id -u)" == 0 ]]; then chown postgres:postgres "$dir"; fi
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "fsync = on"
      echo "synchronous_commit = on"
      if [[ "${BENCH_PG_DEFAULTS:-0}" != 1 ]]; then
        echo "shared_buffers = 1GB"
        echo "work_mem = 64MB"
        echo "maintenance_work_mem = 512MB"
        echo "max_wal_size = 8GB"
        echo "checkpoint_timeout = 30min"
        echo "effective_cache_size = 8GB"
      fi
    } >>"$dir/data/postgresql.conf"
    as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
