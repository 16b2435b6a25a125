#!/usr/bin/env bash
# Runs a command with DATABASE_URL set. When it is unset, a fresh throwaway cluster is
# started under .local/$PG_CLUSTER (default pg-test; `make bench` and `make load` name
# their own, so they can run beside `make test`) for the command and stopped (by its own
# PID file) afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${DATABASE_URL:-}" ]; then
    exec "$@"
fi

dir="$root/.local/${PG_CLUSTER:-pg-test}"
"$root/scripts/pg.sh" stop "$dir" 2>/dev/null || true
rm -rf "$dir" "$dir.initdb.log"
DATABASE_URL=$("$root/scripts/pg.sh" start "$dir")
export DATABASE_URL
trap '"$root/scripts/pg.sh" stop "$dir"' EXIT
echo "with-db: throwaway PostgreSQL at $DATABASE_URL" >&2
"$@"
