#!/usr/bin/env bash
# `make load`: ten times the partners' soft limit for a sustained minute through
# `cargo lambda watch`, then a check that every accepted lead is stored exactly once.
#
# 1. a throwaway PostgreSQL under .local/pg-load when DATABASE_URL is unset (stopped by
#    its own PID file at the end), migrated with the `migrate` tool;
# 2. the release builds of the three functions, copied to .local/load/bin so another
#    build in the shared target/ cannot swap a binary in the middle of the run;
# 3. `cargo lambda watch --only-lambda-apis` on a free port of 127.0.0.1: the partner
#    routes of Cargo.toml (HTTP request -> API Gateway event -> Runtime API), and
#    LOAD_INSTANCES (5, the template's ReservedConcurrencyPerSource) instances of each
#    function polling it, each with one database connection like a Lambda container;
# 4. the `load` binary (`cargo run -p load -- --help`); extra arguments go to it:
#    `make load LOAD_ARGS='--duration 120 --multiplier 5'`.
#
# Every process it starts is stopped by its own process group at the end. The table and
# a JSON copy land in .local/load/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ -z "${DATABASE_URL:-}" ]; then
    PG_CLUSTER=pg-load exec scripts/with-db.sh "$root/scripts/load.sh" "$@"
fi

instances=${LOAD_INSTANCES:-5}
sources=(knowlarity cardekho carwale)
out=.local/load
mkdir -p "$out"

. "$(dirname "$0")/python-tools.sh"
python_tools cargo-lambda=cargo-lambda

pgids=()
cleanup() {
    local pid
    for pid in "${pgids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM


target=${CARGO_TARGET_DIR:-$root/target}
echo "load: building the release functions, migrate and load" >&2
# Apart, so the functions are built with their own features, as deployed, not the load
# tool's.
cargo build --release --locked -p knowlarity -p cardekho -p carwale -p migrate
cargo build --release --locked -p load
bin="$out/bin"
rm -rf "$bin"
mkdir -p "$bin"
for name in "${sources[@]}" migrate load; do cp "$target/release/$name" "$bin/"; done
"$bin/migrate" >"$out/migrate.log" 2>&1 || { cat "$out/migrate.log" >&2; exit 1; }

port=
for candidate in $(seq 9100 9199); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "load: no free port in 9100-9199" >&2; exit 1; }

# setsid: each background process leads its own process group, stopped as a whole.
setsid cargo lambda watch --only-lambda-apis --ignore-changes -A 127.0.0.1 -P "$port" \
    >"$out/watch.log" 2>&1 &
pgids+=($!)
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "${pgids[0]}" 2>/dev/null; then
        cat "$out/watch.log" >&2
        echo "load: cargo lambda watch stopped" >&2
        exit 1
    fi
    sleep 0.2
done

: >"$out/functions.log"
for source in "${sources[@]}"; do
    for _ in $(seq 1 "$instances"); do
        AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt/$source" \
            AWS_LAMBDA_FUNCTION_NAME="$source" AWS_LAMBDA_FUNCTION_VERSION=1 \
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
            API_KEYS="local-dev-$source-key" DATABASE_URL="$DATABASE_URL" \
            setsid "$bin/$source" >>"$out/functions.log" 2>&1 &
        pgids+=($!)
    done
done

echo "load: cargo lambda watch on 127.0.0.1:$port, $instances release instances per function" >&2
note="cargo lambda watch $(cargo lambda --version 2>/dev/null | awk '{print $2}') --only-lambda-apis on 127.0.0.1:$port; $instances release instances per function, 1 DB connection each"
"$bin/load" --url "http://127.0.0.1:$port" --out "$out" --note "$note" "$@"
