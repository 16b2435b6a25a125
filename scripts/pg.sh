#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for local runs and tests, on 127.0.0.1 only.
#
#   scripts/pg.sh start DIR   initdb DIR if needed, start it, print its DATABASE_URL
#   scripts/pg.sh stop DIR    stop the cluster of DIR (pg_ctl reads its own postmaster.pid)
#
# PG_DURABLE=1 starts it committing durably, as production does (fsync, synchronous_commit
# and full_page_writes on): `make bench` measures against that. Otherwise it runs with
# them off, for fast tests (the data is throwaway by design).
#
# PG_PORT=N listens on that port instead of a free one from 54320. PG_BRIDGE=ADDR/BITS (e.g.
# 172.17.0.1/16, the docker bridge) also listens on ADDR and lets that subnet in, so `sam
# local` containers reach it; it stays off every other interface.
#
# Needs PostgreSQL's server binaries (initdb, pg_ctl, postgres). On Debian/Ubuntu:
#   apt-get install postgresql   (they land in /usr/lib/postgresql/<major>/bin)
# PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` user.
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop DIR}
dir=${2:?usage: pg.sh start|stop DIR}

find_bin() {
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
    local candidate
    for candidate in /usr/lib/postgresql/*/bin/"$1" /usr/local/pgsql/bin/"$1"; do
        if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
    echo "pg.sh: $1 not found; install PostgreSQL's server binaries (e.g. apt-get install postgresql)" >&2
    exit 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            echo "pg.sh: running as root needs a 'postgres' user (useradd --system postgres)" >&2
            exit 1
        fi
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local port
    for port in $(seq 54320 54420); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    echo "pg.sh: no free port in 54320-54420" >&2
    exit 1
}

case "$cmd" in
start)
    initdb=$(find_bin initdb)
    pg_ctl=$(find_bin pg_ctl)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_owner "$initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir.initdb.log" 2>&1 \
            || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    port=${PG_PORT:-$(free_port)}
    listen=127.0.0.1
    if [ -n "${PG_BRIDGE:-}" ]; then
        listen="127.0.0.1,${PG_BRIDGE%/*}"
        # The bridge's subnet, not the address: containers connect from their own.
        subnet=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_interface(sys.argv[1]).network)' "$PG_BRIDGE")
        grep -qF "host all all $subnet trust" "$dir/pg_hba.conf" \
            || echo "host all all $subnet trust" | as_owner tee -a "$dir/pg_hba.conf" >/dev/null
    fi
    if [ "${PG_DURABLE:-0}" = 1 ]; then
        # Named, not left to the defaults, so no configuration elsewhere can turn them off.
        commit="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
    else
        commit="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    # Loopback (and the docker bridge when asked) only, sockets inside the data folder.
    as_owner "$pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=$listen -p $port -k $dir $commit -c max_connections=200" \
        start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    pg_ctl=$(find_bin pg_ctl)
    if [ -f "$dir/postmaster.pid" ]; then
        as_owner "$pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: pg.sh start|stop DIR" >&2
    exit 2
    ;;
esac
