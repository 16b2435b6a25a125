#!/usr/bin/env bash
# Runs a command with DATABASE_URL set. When it is unset, a fresh throwaway cluster is
# started under .local/$PG_CLUSTER (default pg-test; `make bench` and `make load` name
# their own, so they can run beside `make test`) for the command and stopped (by its own
# PID file) afterwards, with a second one beside it for the CRM's database
# (CRM_TEST_DATABASE_URL, unless set).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${DATABASE_URL:-}" ]; then
    exec "$@"
fi

dir="$root/.local/${PG_CLUSTER:-pg-test}"
# The CRM hand-off's tests keep the CRM's database on a cluster of its own, as it is.
crm="$dir-crm"
for cluster in "$dir" "$crm"; do
    "$root/scripts/pg.sh" stop "$cluster" 2>/dev/null || true
    rm -rf "$cluster" "$cluster.initdb.log"
done
DATABASE_URL=$("$root/scripts/pg.sh" start "$dir")
export DATABASE_URL
trap '"$root/scripts/pg.sh" stop "$dir"; "$root/scripts/pg.sh" stop "$crm" 2>/dev/null || true' EXIT
echo "with-db: throwaway PostgreSQL at $DATABASE_URL" >&2
if [ -z "${CRM_TEST_DATABASE_URL:-}" ]; then
    CRM_TEST_DATABASE_URL=$("$root/scripts/pg.sh" start "$crm")
    export CRM_TEST_DATABASE_URL
    echo "with-db: the CRM's throwaway PostgreSQL at $CRM_TEST_DATABASE_URL" >&2
fi
"$@"
