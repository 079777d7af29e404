#!/usr/bin/env bash
# A PostgreSQL server of the tests' own, on 127.0.0.1 and a free port (Debian's `postgresql`
# package; no system cluster needed, none touched):
#   export "$(bash scripts/postgres.sh start DIR)"   sets POSTGRES_TEST_SERVER=postgres://…
# (not SEALPOST_…: the daemon refuses an environment setting it does not know)
#   bash scripts/postgres.sh stop DIR
# As root the server runs as the `postgres` user (it refuses to run as root). The tests check
# Sealpost, not the server's durability: fsync is off.
set -euo pipefail
cmd=${1:?start or stop}; dir=${2:?a directory}
initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
[ -n "$initdb" ] || initdb=$(command -v initdb || true)
[ -n "$initdb" ] || { echo "postgres.sh: initdb not found: apt-get install -y --no-install-recommends postgresql (or set POSTGRES_TEST_SERVER to a server of your own)" >&2; exit 1; }
bin=$(dirname "$(readlink -f "$initdb")")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "POSTGRES_TEST_SERVER=postgres://postgres@127.0.0.1:$port"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "postgres.sh: start or stop" >&2; exit 64 ;;
esac
