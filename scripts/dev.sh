#!/usr/bin/env bash
# `make dev`: a database, the migrations, and all three functions on their production
# paths at http://127.0.0.1:9000 with development keys.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v cargo-lambda >/dev/null 2>&1; then
    echo "dev: installing cargo-lambda (pip install cargo-lambda)" >&2
    pip install --quiet cargo-lambda
fi

if [ -z "${DATABASE_URL:-}" ]; then
    dir="$root/.local/pg-dev"
    # Kept between runs so rows stay visible; `make clean-db` throws it away.
    "$root/scripts/pg.sh" stop "$dir" 2>/dev/null || true
    DATABASE_URL=$("$root/scripts/pg.sh" start "$dir")
    export DATABASE_URL
    trap '"$root/scripts/pg.sh" stop "$dir"' EXIT
fi

cargo run --quiet -p migrate
cargo build --quiet -p knowlarity -p cardekho -p carwale

cat <<INFO

  Database   $DATABASE_URL
  Functions  POST http://127.0.0.1:9000/admin/mg-digital-leads/source/{knowlarity,cardekho,carwale}
  Dev keys   knowlarity: local-dev-knowlarity-key
             cardekho:   local-dev-cardekho-key
             carwale:    local-dev-carwale-key

  Try:  curl -s http://127.0.0.1:9000/admin/mg-digital-leads/source/cardekho \\
          -H 'X-API-Key: local-dev-cardekho-key' -H 'Content-Type: application/json' \\
          -d '{"name":"Ravi Kumar","phone_number":"9876543210","car_model":"Tata Nexon EV"}'
        psql "$DATABASE_URL" -c 'select id, platform, name, phone_number, status from "mg-digital-leads"'

  Ctrl-C stops the functions and the database.

INFO

# Not exec: the trap above must stop the database when watch ends.
cargo lambda watch -A 127.0.0.1 -P 9000 --env-var "DATABASE_URL=$DATABASE_URL"
