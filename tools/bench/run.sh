#!/usr/bin/env bash
# `make bench`: builds what the benchmark measures, then runs it against DATABASE_URL or,
# when that is unset, a throwaway PostgreSQL of its own (.local/pg-bench, so a `make test`
# running at the same time keeps its .local/pg-test) that commits durably, as production
# does (the bench refuses a server that does not). Extra arguments go to the bench binary
# (`make bench BENCH_ARGS='--warm-runs 3'`; `cargo run -p bench -- --help` lists them).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if [ -z "${DATABASE_URL:-}" ]; then
    PG_CLUSTER=pg-bench PG_DURABLE=1 exec scripts/with-db.sh "$root/tools/bench/run.sh" "$@"
fi

target=${CARGO_TARGET_DIR:-$root/target}
out=.local/bench
mkdir -p "$out"

echo "bench: building the release bootstraps" >&2
cargo build --release --locked -p knowlarity -p migrate
# The bench and its no-op bootstrap, in a build of their own: built together with the
# function, Cargo would unify features into the function's dependencies (tokio's
# `process`, hyper's server) and change the binary being measured.
cargo build --release --locked -p bench
"$target/release/migrate"

# The size that ships: Lambda runs the arm64 build. A failed cross-build costs the size
# figure only, with its reason, not the whole benchmark.
log="$out/arm64-build.log"
: >"$log"
if ! command -v cargo-lambda >/dev/null 2>&1; then
    echo "bench: installing cargo-lambda (pip install cargo-lambda; it brings zig, the arm64 linker)" >&2
    pip install --quiet cargo-lambda >>"$log" 2>&1 || true
    # pyenv finds newly installed console scripts after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
fi
rustup target add aarch64-unknown-linux-gnu >>"$log" 2>&1 || true
echo "bench: cargo lambda build --release --arm64 -p knowlarity (log: $log)" >&2
if cargo lambda build --release --arm64 --locked -p knowlarity --lambda-dir "$out/lambda" >>"$log" 2>&1; then
    arm64=(--arm64-bootstrap "$out/lambda/knowlarity/bootstrap")
else
    reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | cut -c1-160)
    echo "bench: the arm64 build failed: $reason" >&2
    arm64=(--arm64-unavailable "arm64 build failed: ${reason:-no output}; see $log")
fi

"$target/release/bench" --bootstrap "$target/release/knowlarity" \
    --baseline "$target/release/bench-baseline" "${arm64[@]}" "$@"
