#!/usr/bin/env bash
# `make test-sam-local` (run by .ci/run after `make validate`, which runs `sam build`): the
# built arm64 functions under `sam local`, on a machine prepared by `scripts/sam-local.sh
# engine` (Docker engine, qemu, base image):
#   1. no bootstrap needs a glibc symbol newer than AL2023's (2.34);
#   2. `sam local invoke MigrateFunction`, the plain documented command, migrates a database;
#   3. every event file of every source through `sam local start-lambda`, answered as
#      shared/tests/events.rs's table says (the same test, the same table);
#   4. `sam local start-api`: a request on each route (Meta's GET handshake included)
#      answers and stores its row.
# Its PostgreSQL (127.0.0.1 and the docker bridge) and the containers it created are
# stopped and removed on exit, and so is dockerd when this script started it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-ap-south-1}
export SAM_CLI_TELEMETRY=0
export CARGO_INCREMENTAL=0
state="$root/.local/sam-local"
pg_dir="$root/.local/pg-sam-test"
started=$(date +%s)
say() { printf 'sam-local-test: %s\n' "$*" >&2; }

docker_was_running=0
docker info >/dev/null 2>&1 && docker_was_running=1
scripts/sam-local.sh engine

containers_before=$(docker ps -aq | sort)
cleanup() {
    local status=$?
    "$root/scripts/pg.sh" stop "$pg_dir" 2>/dev/null || true
    # Containers SAM left behind (it removes its own on a clean stop).
    local left
    left=$(comm -13 <(echo "$containers_before") <(docker ps -aq | sort) || true)
    if [ -n "$left" ]; then docker rm -f $left >/dev/null 2>&1 || true; fi
    if [ "$docker_was_running" = 0 ] && [ -f "$state/dockerd.pid" ]; then
        local pid
        pid=$(cat "$state/dockerd.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        rm -f "$state/dockerd.pid"
    fi
    say "took $(( $(date +%s) - started )) s"
    exit "$status"
}
trap cleanup EXIT

if [ ! -f .aws-sam/build/template.yaml ]; then
    say "sam build"
    sam build --template-file template.yaml
fi

say "glibc: no bootstrap needs a symbol newer than 2.34 (AL2023's)"
for bootstrap in .aws-sam/build/*/bootstrap; do
    newest=$(readelf --dyn-syms -W "$bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' \
        | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -1)
    if [ "$(printf '%s\n2.34\n' "$newest" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)" != 2.34 ]; then
        say "$bootstrap needs glibc $newest, newer than AL2023's 2.34"
        exit 1
    fi
    printf 'sam-local-test: %-40s newest glibc symbol %s\n' "$bootstrap" "$newest" >&2
done

bridge=$(scripts/sam-local.sh bridge)
"$root/scripts/pg.sh" stop "$pg_dir" 2>/dev/null || true
rm -rf "$pg_dir" "$pg_dir.initdb.log"
DATABASE_URL=$(PG_BRIDGE=$bridge "$root/scripts/pg.sh" start "$pg_dir")
export DATABASE_URL
port=${DATABASE_URL##*:}
port=${port%%/*}
say "PostgreSQL at $DATABASE_URL, and on $bridge for the containers"

say "sam local invoke MigrateFunction"
psql "$DATABASE_URL" -qc 'CREATE DATABASE leads'
env_file=$(mktemp)
printf '{"MigrateFunction":{"DATABASE_URL":"postgres://postgres@host.docker.internal:%s/leads","DB_WRITER_SECRET_ARN":"","DB_READER_SECRET_ARN":"","DB_RELAY_SECRET_ARN":"","DB_DESK_SECRET_ARN":"","DB_CRM_SECRET_ARN":"","EVENT_BUS_NAME":""}}' \
    "$port" >"$env_file"
output=$(sam local invoke MigrateFunction --skip-pull-image --env-vars "$env_file" \
    --add-host host.docker.internal:host-gateway 2>&1) || { echo "$output" >&2; exit 1; }
rm -f "$env_file"
echo "$output" | grep -q '"applied"' || { echo "$output" >&2; say "no migration applied"; exit 1; }
tables=$(psql "${DATABASE_URL%/*}/leads" -tAc 'SELECT count(*) FROM public."mg-digital-leads"')
[ "$tables" = 0 ] || { say "expected an empty, migrated table, got $tables"; exit 1; }

say "every event file through sam local start-lambda; every route through sam local start-api"
SAM_LOCAL_BRIDGE_ADDRESS=${bridge%/*} cargo test -p shared --test events --locked -- \
    --ignored --test-threads 1 sam_local
